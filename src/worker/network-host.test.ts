/**
 * The worker's network wiring, driven through the page's protocol: a machine (SeaBIOS, no
 * guest OS needed) on the tab LAN serves DHCP to another station on the BroadcastChannel;
 * the `network` message shows the LAN, the router serving with a lease, the NIC's random
 * MAC, and the packets the NIC's port saw; `pcap` gives a file that reads back. A second
 * machine joining the same LAN steps its router down. An uplink that cannot work is said
 * in words and the machine runs anyway.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MachineHost } from './machine-host.ts';
import type { FromWorker, ToWorker } from './protocol.ts';
import type { UplinkSetting } from './network-protocol.ts';
import { PUBLISH_DIR } from '../../images/paths.ts';
import { udpFrame, decodeFrame } from '../emulator/net/packets.ts';
import { BROADCAST_MAC } from '../emulator/net/ethernet.ts';
import { DHCPDISCOVER, DHCPOFFER, encodeDhcp, OPT_MESSAGE_TYPE, parseDhcp } from '../emulator/net/dhcp.ts';
import { readPcap } from '../emulator/net/pcap.ts';
import { summarizeFrame } from '../emulator/net/summary.ts';

const file = (rel: string) => {
  const b = fs.readFileSync(path.join(PUBLISH_DIR, rel));
  return { name: path.basename(rel), bytes: b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer };
};
const haveFirmware = fs.existsSync(path.join(PUBLISH_DIR, 'firmware', 'bios.bin'));

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

function machine(network: UplinkSetting) {
  const messages: FromWorker[] = [];
  const host = new MachineHost((m) => messages.push(m), { deviceModel: null });
  const send = (m: ToWorker) => host.handle(m);
  cleanup.push(() => send({ type: 'power-off' }));
  const next = async <T extends FromWorker['type']>(type: T, ms = 30_000, from = messages.length): Promise<Extract<FromWorker, { type: T }>> => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const m = messages.slice(from).find((x) => x.type === type);
      if (m) return m as Extract<FromWorker, { type: T }>;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`no ${type} message within ${ms} ms`);
  };
  send({ type: 'boot', request: { label: 'bios', bios: file('firmware/bios.bin'), vgaBios: file('firmware/vgabios-stdvga.bin'), deterministic: false, network } });
  const view = async () => {
    const p = next('network');
    send({ type: 'network' });
    return p;
  };
  return { messages, send, next, view };
}

function discover(mac: Uint8Array): Uint8Array {
  const chaddr = new Uint8Array(16);
  chaddr.set(mac);
  const payload = encodeDhcp({
    op: 1, htype: 1, hlen: 6, xid: 7, secs: 0, flags: 0, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0, chaddr, sname: '', file: '',
    options: new Map([[OPT_MESSAGE_TYPE, Uint8Array.of(DHCPDISCOVER)]]),
  });
  return udpFrame({ srcMac: mac, dstMac: BROADCAST_MAC, srcIp: 0, dstIp: 0xffffffff, srcPort: 68, dstPort: 67, payload });
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!haveFirmware)('the worker\'s network', () => {
  it('a machine on the tab LAN serves DHCP to a station on the channel; the panel\'s view, packets and pcap', { timeout: 60_000 }, async () => {
    const channel = `host-test-${process.pid}-${Date.now()}`;
    const a = machine({ kind: 'tab-lan', channel });
    await a.next('ready', 30_000, 0);
    const station = new BroadcastChannel(channel);
    cleanup.push(() => station.close());
    const heard: Uint8Array[] = [];
    station.onmessage = (e: MessageEvent) => {
      if (e.data instanceof Uint8Array) heard.push(e.data);
    };
    await wait(50);
    const mac = Uint8Array.of(0x52, 0x54, 0x00, 0xee, 0x00, 0x01);
    station.postMessage(discover(mac));
    let offer: ReturnType<typeof parseDhcp> = null;
    for (let i = 0; i < 200 && !offer; i++) {
      await wait(20);
      for (const f of heard) {
        const d = decodeFrame(f);
        const m = d?.udp?.dstPort === 68 ? parseDhcp(d.udp.payload) : null;
        if (m?.options.get(OPT_MESSAGE_TYPE)?.[0] === DHCPOFFER) offer = m;
      }
    }
    expect(offer, 'the machine\'s router offers a lease through the channel').not.toBeNull();

    const { view, packets } = await a.view();
    expect(view?.uplink).toEqual({ kind: 'tab-lan', channel });
    expect(view?.state).toBe('open');
    expect(view?.stateText).toMatch(/this tab's router serves it/);
    expect(view?.mac).toMatch(/^52:54:00:/);
    expect(view?.mac).not.toBe('52:54:00:12:34:56');
    expect(view?.router?.serving).toBe(true);
    expect(view?.ports.map((p) => p.name)).toEqual(expect.arrayContaining(['router', 'ne2k', `tab-lan:${channel}`]));
    expect(view?.uplinkCounters.framesIn).toBeGreaterThanOrEqual(1);
    // The NIC's port saw the DISCOVER flooded to it (the guest, SeaBIOS, never listens).
    const lines: string[] = [];
    for (let i = 0, off = 0; i < packets!.meta.length / 4; i++) {
      const kept = packets!.meta[i * 4];
      lines.push(summarizeFrame(packets!.bytes.subarray(off, off + kept), packets!.meta[i * 4 + 1]).text);
      off += kept;
    }
    expect(lines.join('\n')).toMatch(/BOOTP\/DHCP, Request from 52:54:00:ee:00:01.*DHCP Discover/);

    const pcapAnswer = a.next('pcap');
    a.send({ type: 'pcap' });
    const pcap = await pcapAnswer;
    expect(pcap.packets).toBeGreaterThanOrEqual(1);
    const read = readPcap(pcap.file!);
    expect(read.packets.length).toBe(pcap.packets);
    expect(read.packets.some((p) => /DHCP Discover/.test(summarizeFrame(p.frame).text))).toBe(true);

    // A second machine on the LAN: its router steps down for the first one's.
    const b = machine({ kind: 'tab-lan', channel });
    await b.next('ready', 30_000, 0);
    await wait(200);
    const vb = (await b.view()).view;
    expect(vb?.router?.serving).toBe(false);
    expect(vb?.stateText).toMatch(/another tab's router serves it/);
    expect(vb?.ports.map((p) => p.name)).not.toContain('router');
    expect((await a.view()).view?.stateText).toMatch(/with 1 other machine;/) // the bare station never said hello;
  });

  it('an uplink that cannot work is said in words; the machine runs', { timeout: 60_000 }, async () => {
    // Node has no global WebSocket (20) or no page origin for fetch: the worker says which.
    const m = machine({ kind: 'fetch' });
    await m.next('ready', 30_000, 0);
    const v = (await m.view()).view;
    expect(v?.state).toBe('error');
    expect(v?.stateText).toMatch(/fetch uplink cannot work: this host has no fetch or no origin/);
    expect(v?.events.map((e) => e.message).join()).toMatch(/cannot start/);
    await m.next('status', 30_000, 0);
    const none = machine({ kind: 'none' });
    await none.next('ready', 30_000, 0);
    const vn = (await none.view()).view;
    expect(vn?.mac).toBeNull();
    expect(vn?.ports).toEqual([]);
  });
});
