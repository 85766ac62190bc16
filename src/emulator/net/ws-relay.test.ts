/**
 * The WebSocket relay uplink: LANs joined through the test relay (a hub on loopback, over
 * `ws`). In this process: a station on one LAN pings the router of another across the
 * relay, and what the relay sends that is not a frame is counted and dropped. With the
 * CLI: tiny-linux joined with `-nic websocket,url=` gets its lease from the router on
 * this test's LAN across the relay, pings it, and answers a ping from a station here.
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startRelayServer, type RelayServer } from '../../cli/testing/ws-relay-server.ts';
import { startTrapdoor, type TestProcess } from '../../cli/testing/process.ts';
import { nodeWebSocketFactory } from '../../cli/ws-factory.ts';
import { PUBLISH_DIR } from '../../../images/paths.ts';
import { VirtualClock } from '../machine/clock.ts';
import { ARP_REPLY, ARP_REQUEST, encodeArp } from './arp.ts';
import { defaultMac, ETHERTYPE_ARP, ETHERTYPE_IPV4 } from './ethernet.ts';
import { encodeIcmp, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST } from './icmp.ts';
import { ipFromString, IPPROTO_ICMP } from './ipv4.ts';
import { arpRequestFrame, decodeFrame, ethernetFrame, ipv4Frame, type DecodedFrame } from './packets.ts';
import { EthernetSwitch, type SwitchPort } from './switch.ts';
import { UserNetwork } from './user-net.ts';
import { MAX_FRAME, WebSocketRelayUplink } from './ws-relay.ts';

const ip = (s: string) => ipFromString(s)!;
const relays: RelayServer[] = [];
const cleanups: (() => void)[] = [];

afterAll(async () => {
  for (const c of cleanups) c();
  for (const r of relays) await r.close();
});

/** A LAN whose virtual time follows real time (its relay's WebSocket is real). */
function realTimeLan(name: string) {
  const clock = new VirtualClock();
  const sw = new EthernetSwitch(clock, name);
  const start = Date.now();
  const timer = setInterval(() => clock.advanceTo((Date.now() - start) * 1e6), 1);
  cleanups.push(() => clearInterval(timer));
  return { clock, sw };
}

/** A station with a static address that answers ARP and collects what it receives. */
function station(sw: EthernetSwitch, mac: Uint8Array, addr: number) {
  const got: DecodedFrame[] = [];
  const port: SwitchPort = sw.addPort(`station-${addr}`, {
    receive: (f) => {
      const d = decodeFrame(f);
      if (!d) return;
      if (d.etherType === ETHERTYPE_ARP && d.arp?.oper === ARP_REQUEST && d.arp.tpa === addr) {
        port.send(ethernetFrame(d.arp.sha, mac, ETHERTYPE_ARP, encodeArp({ oper: ARP_REPLY, sha: mac, spa: addr, tha: d.arp.sha, tpa: d.arp.spa })));
      }
      got.push(d);
    },
  });
  const macOf = (target: number) => got.find((d) => d.arp?.oper === ARP_REPLY && d.arp.spa === target)?.arp?.sha;
  const ping = (dstMac: Uint8Array, dst: number, seq: number) =>
    port.send(ipv4Frame(dstMac, mac, { src: addr, dst, protocol: IPPROTO_ICMP, payload: encodeIcmp({ type: ICMP_ECHO_REQUEST, code: 0, rest: (0x1234 << 16) | seq, data: new Uint8Array(32).fill(seq) }) }));
  const replies = () => got.filter((d) => d.ip?.protocol === IPPROTO_ICMP && d.icmp?.type === ICMP_ECHO_REPLY);
  return { port, got, macOf, ping, replies, arp: (target: number) => port.send(arpRequestFrame(mac, addr, target)) };
}

async function waitFor<T>(f: () => T | undefined | null | false, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const r = f();
    if (r) return r;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 5));
  }
}

describe('WebSocket relay uplink (one frame per message, through a hub on loopback)', () => {
  it('joins two LANs: a station on one reaches the router on the other; non-frames are counted and dropped', async () => {
    const relay = await startRelayServer();
    relays.push(relay);
    const a = realTimeLan('a');
    const router = new UserNetwork(a.clock, null, { restrict: true });
    const rp = a.sw.addPort('router', router);
    router.transmit = (f) => rp.send(f);
    const upA = new WebSocketRelayUplink(a.sw, { url: relay.url, createWebSocket: nodeWebSocketFactory, clock: a.clock });
    const b = realTimeLan('b');
    const upB = new WebSocketRelayUplink(b.sw, { url: relay.url, createWebSocket: nodeWebSocketFactory, clock: b.clock });
    const events: string[] = [];
    const upC = new WebSocketRelayUplink(new EthernetSwitch(new VirtualClock()), { url: relay.url, createWebSocket: nodeWebSocketFactory, clock: new VirtualClock(), onEvent: (e) => events.push(e.message) });
    cleanups.push(() => [upA, upB, upC].forEach((u) => u.close()), () => router.close());
    await Promise.all([upA.ready, upB.ready, upC.ready]);
    expect(upA.state).toBe('open');

    const s = station(b.sw, defaultMac(5), ip('10.0.2.30'));
    s.arp(ip('10.0.2.2'));
    const routerMac = await waitFor(() => s.macOf(ip('10.0.2.2')), 5000, 'the router\'s ARP reply across the relay');
    expect(Array.from(routerMac)).toEqual(Array.from(router.mac));
    for (let i = 1; i <= 3; i++) s.ping(routerMac, ip('10.0.2.2'), i);
    await waitFor(() => s.replies().length >= 3, 5000, 'three echo replies');
    expect(upB.counters.framesOut).toBeGreaterThanOrEqual(4);
    expect(upB.counters.framesIn).toBeGreaterThanOrEqual(4);

    // The relay misbehaves: text, a runt, an oversized blob; the frames after them still pass.
    relay.sendToAll('hello, I am not a frame');
    relay.sendToAll(new Uint8Array(10));
    relay.sendToAll(new Uint8Array(MAX_FRAME + 1));
    s.ping(routerMac, ip('10.0.2.2'), 4);
    await waitFor(() => s.replies().length >= 4 && upC.counters.dropOversize === 1, 5000, 'a reply after the garbage');
    for (const u of [upA, upB, upC]) expect(u.counters).toMatchObject({ dropText: 1, dropRunt: 1, dropOversize: 1 });
    expect(events.join('\n')).toMatch(/text message, not a frame/);
    expect(router.stats.icmpEchoReplies).toBe(4);
  });

  it('a relay that is not there: frames are counted as dropped, it tries again, and joins when the relay comes up', async () => {
    const probe = await startRelayServer();
    const port = probe.port;
    await probe.close();
    const a = realTimeLan('c');
    const up = new WebSocketRelayUplink(a.sw, { url: `ws://127.0.0.1:${port}/`, createWebSocket: nodeWebSocketFactory, clock: a.clock });
    cleanups.push(() => up.close());
    await waitFor(() => up.state === 'waiting', 5000, 'the first failure');
    expect(up.lastError).toMatch(/failed|closed/);
    const p = a.sw.addPort('nic', { receive: () => {} });
    p.send(new Uint8Array(60).fill(0xff));
    await waitFor(() => up.counters.dropNotOpen === 1, 2000, 'the drop');
    const relay = await startRelayServer({ port });
    relays.push(relay);
    await waitFor(() => up.state === 'open', 10_000, 'the reconnect');
    expect(up.counters.connects).toBe(1);
  });
});

const TINY = path.join(PUBLISH_DIR, 'tiny-linux');
const haveTiny = fs.existsSync(path.join(TINY, 'bzImage'));

describe.skipIf(!haveTiny)('the CLI on a relay (-nic websocket,url=)', { retry: 1 }, () => {
  it('tiny-linux gets a lease from the router on the other side of the relay, pings it, and answers a ping', { timeout: 240_000 }, async () => {
    const relay = await startRelayServer();
    relays.push(relay);
    const lan = realTimeLan('test-side');
    const router = new UserNetwork(lan.clock, null, { restrict: true });
    const rp = lan.sw.addPort('router', router);
    router.transmit = (f) => rp.send(f);
    const up = new WebSocketRelayUplink(lan.sw, { url: relay.url, createWebSocket: nodeWebSocketFactory, clock: lan.clock });
    cleanups.push(() => up.close(), () => router.close());
    await up.ready;
    // No --until/--send script: the CLI ends when its script does; the test types at the shell instead.
    const p: TestProcess = startTrapdoor(['--image', 'tiny-linux', '-nic', `websocket,url=${relay.url}`, '--timeout', '220']);
    cleanups.push(() => p.kill());
    await p.waitFor(/TRAPDOOR GUEST READY/, 150_000);
    p.send('udhcpc -i eth0 -q && ping -c 3 10.0.2.2 && echo PINGED-$((40+2))\n');
    await p.waitFor(/PINGED-42/, 60_000);
    expect(p.output()).toMatch(/lease of 10\.0\.2\.15 obtained/);
    expect(p.output()).toMatch(/3 packets transmitted, 3 packets received/);
    expect(router.describe().leases[0]).toMatchObject({ ip: '10.0.2.15', state: 'bound' });
    // A station on this side pings the guest across the relay.
    const s = station(lan.sw, defaultMac(7), ip('10.0.2.40'));
    s.arp(ip('10.0.2.15'));
    const guestMac = await waitFor(() => s.macOf(ip('10.0.2.15')), 20_000, 'the guest\'s ARP reply');
    for (let i = 1; i <= 3; i++) s.ping(guestMac, ip('10.0.2.15'), i);
    await waitFor(() => s.replies().length >= 3, 20_000, 'the guest\'s echo replies');
    expect(s.replies().every((d) => d.ip!.src === ip('10.0.2.15'))).toBe(true);
    expect(s.got.some((d) => d.etherType === ETHERTYPE_IPV4)).toBe(true);
  });
});
