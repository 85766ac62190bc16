/**
 * The tab LAN over Node's own BroadcastChannel (as in the page: two objects of one name
 * in one thread hear each other, never themselves). Each "tab" is a switch with its own
 * virtual clock, its user-mode router and a station speaking DHCP through the real
 * router; nothing is faked.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../machine/clock.ts';
import { BroadcastLan, routerSwitch } from './broadcast-lan.ts';
import { BROADCAST_MAC } from './ethernet.ts';
import { EthernetSwitch } from './switch.ts';
import { UserNetwork } from './user-net.ts';
import { decodeFrame, udpFrame } from './packets.ts';
import { DHCPACK, DHCPDISCOVER, DHCPOFFER, DHCPREQUEST, encodeDhcp, ipOption, OPT_MESSAGE_TYPE, OPT_REQUESTED_IP, OPT_SERVER_ID, parseDhcp } from './dhcp.ts';
import { ipToString } from './ipv4.ts';

const open: BroadcastLan[] = [];
const raw: BroadcastChannel[] = [];
afterEach(() => {
  for (const l of open.splice(0)) l.close();
  for (const c of raw.splice(0)) c.close();
});

let channelNo = 0;
const freshChannel = () => `test-lan-${process.pid}-${++channelNo}`;

/** Let the channel deliver what was posted, and each tab's clock move on. */
async function settle(tabs: Tab[], rounds = 4): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await new Promise((r) => setTimeout(r, 5));
    for (const t of tabs) t.clock.advanceTo(t.clock.now() + 10e6);
  }
}

interface Tab {
  clock: VirtualClock;
  sw: EthernetSwitch;
  router: UserNetwork;
  lan: BroadcastLan;
  got: Uint8Array[];
  mac: Uint8Array;
  send(frame: Uint8Array): void;
  events: string[];
}

function tab(channel: string, id: string, since: number, macLast: number, withRouter = true): Tab {
  const clock = new VirtualClock();
  const sw = new EthernetSwitch(clock);
  const router = new UserNetwork(clock, null, { restrict: true });
  const rp = sw.addPort('router', router);
  router.transmit = (f) => rp.send(f);
  const got: Uint8Array[] = [];
  const mac = Uint8Array.of(0x52, 0x54, 0x00, 0xab, 0xcd, macLast);
  const station = sw.addPort('nic', { receive: (f) => got.push(f) });
  const events: string[] = [];
  const lan = new BroadcastLan(sw, {
    channel, id, since, router: withRouter ? routerSwitch(sw, router) : undefined, onEvent: (m) => events.push(m),
  });
  if (!withRouter) routerSwitch(sw, router).disable();
  open.push(lan);
  return { clock, sw, router, lan, got, mac, send: (f) => station.send(f), events };
}

function dhcp(mac: Uint8Array, type: number, extra: [number, Uint8Array][] = []): Uint8Array {
  const chaddr = new Uint8Array(16);
  chaddr.set(mac);
  const payload = encodeDhcp({
    op: 1, htype: 1, hlen: 6, xid: mac[5], secs: 0, flags: 0, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0, chaddr, sname: '', file: '',
    options: new Map([[OPT_MESSAGE_TYPE, Uint8Array.of(type)], ...extra]),
  });
  return udpFrame({ srcMac: mac, dstMac: BROADCAST_MAC, srcIp: 0, dstIp: 0xffffffff, srcPort: 68, dstPort: 67, payload });
}

/** The DHCP replies a station received (to its MAC or broadcast with its chaddr). */
function dhcpReplies(t: Tab): { type: number; yiaddr: string; server: string }[] {
  const out: { type: number; yiaddr: string; server: string }[] = [];
  for (const f of t.got.splice(0)) {
    const d = decodeFrame(f);
    if (!d?.udp || d.udp.dstPort !== 68) continue;
    const m = parseDhcp(d.udp.payload);
    if (!m || m.chaddr[5] !== t.mac[5]) continue;
    out.push({ type: m.options.get(OPT_MESSAGE_TYPE)![0], yiaddr: ipToString(m.yiaddr), server: ipToString(d.ip!.src) });
  }
  return out;
}

/** DISCOVER, OFFER, REQUEST, ACK: the lease a station ends with. */
async function lease(t: Tab, tabs: Tab[]): Promise<string> {
  t.send(dhcp(t.mac, DHCPDISCOVER));
  await settle(tabs);
  const offers = dhcpReplies(t).filter((r) => r.type === DHCPOFFER);
  expect(offers, 'one router answers, not two').toHaveLength(1);
  const offered = offers[0].yiaddr;
  const [a, b, c, d] = offered.split('.').map(Number);
  t.send(dhcp(t.mac, DHCPREQUEST, [[OPT_REQUESTED_IP, Uint8Array.of(a, b, c, d)], [OPT_SERVER_ID, ipOption(0x0a000202)]]));
  await settle(tabs);
  const acks = dhcpReplies(t).filter((r) => r.type === DHCPACK);
  expect(acks).toHaveLength(1);
  return acks[0].yiaddr;
}

describe('BroadcastLan', () => {
  it('a tab that joins a LAN with a router turns its own off; each station gets its own lease from the first', async () => {
    const ch = freshChannel();
    const a = tab(ch, 'a', 100, 1);
    await settle([a]);
    const b = tab(ch, 'b', 200, 2);
    await settle([a, b]);
    expect(a.lan.routerServing).toBe(true);
    expect(b.lan.routerServing).toBe(false);
    expect(b.sw.port('router')).toBeUndefined();
    expect(b.lan.routerMember).toBe('a');
    expect(b.events.join()).toMatch(/stepped down/);
    expect(a.lan.memberCount).toBe(1);

    expect(await lease(b, [a, b])).toBe('10.0.2.15');
    expect(await lease(a, [a, b])).toBe('10.0.2.16');
    // The leases are the first tab's router's; the second's never saw a DISCOVER.
    expect(a.router.stats.dhcp).toMatchObject({ discover: 2 });
    expect(b.router.stats.framesIn).toBe(0);
    expect(b.lan.counters.framesOut).toBeGreaterThan(0);
    expect(b.lan.counters.framesIn).toBeGreaterThan(0);
    expect(a.lan.counters.framesIn).toBe(b.lan.counters.framesOut);
  });

  it('two tabs that start together keep exactly one router, the better claim', async () => {
    const ch = freshChannel();
    const x = tab(ch, 'x', 500, 3);
    const y = tab(ch, 'y', 500, 4); // same time: the smaller id wins
    const z = tab(ch, 'z', 400, 5, false); // a member without a router counts for nothing
    await settle([x, y, z]);
    expect([x.lan.routerServing, y.lan.routerServing, z.lan.routerServing]).toEqual([true, false, false]);
    expect(z.lan.routerMember).toBe('x');
    expect(await lease(z, [x, y, z])).toBe('10.0.2.15');
  });

  it("when the router's tab leaves, another tab's router takes the LAN over", async () => {
    const ch = freshChannel();
    const a = tab(ch, 'a', 1, 6);
    await settle([a]);
    const b = tab(ch, 'b', 2, 7);
    const c = tab(ch, 'c', 3, 8);
    await settle([a, b, c]);
    expect([a.lan.routerServing, b.lan.routerServing, c.lan.routerServing]).toEqual([true, false, false]);
    a.lan.close();
    await settle([b, c]);
    expect([b.lan.routerServing, c.lan.routerServing]).toEqual([true, false]);
    expect(b.sw.port('router')).toBeDefined();
    expect(c.lan.routerMember).toBe('b');
    expect(await lease(c, [b, c])).toBe('10.0.2.15');
    expect(a.lan.state).toBe('closed');
  });

  it('counts and drops what is not a frame, and goes on carrying frames', async () => {
    const ch = freshChannel();
    const a = tab(ch, 'a', 1, 9);
    const rogue = new BroadcastChannel(ch);
    raw.push(rogue);
    rogue.postMessage('hello');
    rogue.postMessage({ t: 'trapdoor-lan', kind: 'router', id: 'r' }); // no claim: not a control message
    rogue.postMessage(new Uint8Array(5));
    rogue.postMessage(new Uint8Array(4000));
    rogue.postMessage(new ArrayBuffer(60));
    rogue.postMessage(null);
    await settle([a]);
    expect(a.lan.counters).toMatchObject({ dropNotFrame: 4, dropShort: 1, dropOversized: 1, framesIn: 0 });
    expect(a.lan.routerServing).toBe(true);
    // A real frame from the channel still reaches the router: it answers the DISCOVER.
    const seen: unknown[] = [];
    rogue.onmessage = (e) => seen.push(e.data);
    rogue.postMessage(dhcp(Uint8Array.of(0x52, 0x54, 0, 1, 2, 3), DHCPDISCOVER));
    await settle([a]);
    expect(a.lan.counters.framesIn).toBe(1);
    expect(a.router.stats.dhcp).toMatchObject({ discover: 1 });
    expect(seen.some((m) => m instanceof Uint8Array && decodeFrame(m)?.udp?.dstPort === 68)).toBe(true);
  });
});
