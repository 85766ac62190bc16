/**
 * Two LANs joined by a wire between one port of each (what a relay is for them: frames
 * out of one port enter the other), each with its own router: the joining side's probe
 * finds the other router and its own steps down; a router already leasing stays; two
 * machines joining at once keep exactly one router between them.
 */
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../machine/clock.ts';
import { EthernetSwitch, type SwitchPort } from './switch.ts';
import { UserNetwork } from './user-net.ts';
import { routerSwitch } from './broadcast-lan.ts';
import { RouterProbe } from './router-probe.ts';
import { BROADCAST_MAC } from './ethernet.ts';
import { decodeFrame, udpFrame } from './packets.ts';
import { DHCPDISCOVER, DHCPOFFER, DHCPREQUEST, encodeDhcp, ipOption, OPT_MESSAGE_TYPE, OPT_REQUESTED_IP, OPT_SERVER_ID, parseDhcp } from './dhcp.ts';

function side(clock: VirtualClock, name: string) {
  const sw = new EthernetSwitch(clock, name);
  const router = new UserNetwork(clock, null, { restrict: true });
  const rp = sw.addPort('router', router);
  router.transmit = (f) => rp.send(f);
  const got: Uint8Array[] = [];
  const station = sw.addPort('nic', { receive: (f) => got.push(f) });
  return { sw, router, got, station };
}

/** A relay between switches: a frame out of one's "relay" port enters every other's. */
function hub(...switches: EthernetSwitch[]): SwitchPort[] {
  const ports: SwitchPort[] = [];
  switches.forEach((sw, i) => {
    ports.push(sw.addPort('relay', { receive: (f) => ports.forEach((p, j) => { if (j !== i) p.send(f); }) }));
  });
  return ports;
}

/** Join two switches: each one's "relay" port delivers into the other's. */
function wire(a: EthernetSwitch, b: EthernetSwitch): { a: SwitchPort; b: SwitchPort } {
  const ports = {} as { a: SwitchPort; b: SwitchPort };
  ports.a = a.addPort('relay', { receive: (f) => ports.b.send(f) });
  ports.b = b.addPort('relay', { receive: (f) => ports.a.send(f) });
  return ports;
}

function dhcp(mac: Uint8Array, type: number, extra: [number, Uint8Array][] = []): Uint8Array {
  const chaddr = new Uint8Array(16);
  chaddr.set(mac);
  const payload = encodeDhcp({
    op: 1, htype: 1, hlen: 6, xid: 9, secs: 0, flags: 0, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0, chaddr, sname: '', file: '',
    options: new Map([[OPT_MESSAGE_TYPE, Uint8Array.of(type)], ...extra]),
  });
  return udpFrame({ srcMac: mac, dstMac: BROADCAST_MAC, srcIp: 0, dstIp: 0xffffffff, srcPort: 68, dstPort: 67, payload });
}

const offers = (got: Uint8Array[]) => got.map((f) => decodeFrame(f)).filter((d) => d?.udp?.dstPort === 68)
  .map((d) => parseDhcp(d!.udp!.payload)!).filter((m) => m.options.get(OPT_MESSAGE_TYPE)?.[0] === DHCPOFFER);

const leasesOf = (r: UserNetwork) => () => r.stats.dhcp.bound;

describe('RouterProbe', () => {
  it('a machine joining a segment that has a router turns its own off; its station leases from the other', () => {
    const clock = new VirtualClock();
    const first = side(clock, 'first');
    const joining = side(clock, 'joining');
    const link = wire(first.sw, joining.sw);
    const nicMac = Uint8Array.of(0x52, 0x54, 0, 0xaa, 0xbb, 0xcc);
    const events: string[] = [];
    const probe = new RouterProbe(link.b, { mac: joining.router.mac, hostIp: joining.router.hostIp, leases: leasesOf(joining.router) }, routerSwitch(joining.sw, joining.router), nicMac, clock, (m) => events.push(m));
    probe.probe();
    clock.advanceTo(1e9);
    expect(probe.serving).toBe(false);
    expect(joining.sw.port('router')).toBeUndefined();
    expect(events.join()).toMatch(/stepped down/);
    expect(joining.router.stats.framesIn).toBe(0); // its own router never saw the probe
    expect(first.router.stats.arpRequestsIn).toBe(1);

    joining.station.send(dhcp(nicMac, DHCPDISCOVER));
    clock.advanceTo(2e9);
    const o = offers(joining.got);
    expect(o).toHaveLength(1);
    expect(first.router.stats.dhcp.offer).toBe(1);
    expect(joining.router.stats.dhcp.discover).toBe(0);
    probe.close();
  });

  it('a router that has leased addresses keeps serving when another one shows up, and says so once', () => {
    const clock = new VirtualClock();
    const a = side(clock, 'a');
    const b = side(clock, 'b');
    const mac = Uint8Array.of(0x52, 0x54, 0, 1, 2, 3);
    a.station.send(dhcp(mac, DHCPDISCOVER));
    clock.advanceTo(1e9);
    const offered = offers(a.got)[0].yiaddr;
    a.station.send(dhcp(mac, DHCPREQUEST, [[OPT_REQUESTED_IP, ipOption(offered)], [OPT_SERVER_ID, ipOption(a.router.hostIp)]]));
    clock.advanceTo(2e9);
    expect(a.router.stats.dhcp.bound).toBe(1);

    const link = wire(a.sw, b.sw);
    const events: string[] = [];
    const probe = new RouterProbe(link.a, { mac: a.router.mac, hostIp: a.router.hostIp, leases: leasesOf(a.router) }, routerSwitch(a.sw, a.router), mac, clock, (m) => events.push(m));
    probe.probe();
    probe.probe();
    clock.advanceTo(3e9);
    expect(probe.othersHeard).toBe(2);
    expect(probe.serving).toBe(true);
    expect(a.sw.port('router')).toBeDefined();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatch(/keeps serving/);
  });

  it('frames from no router change nothing', () => {
    const clock = new VirtualClock();
    const a = side(clock, 'a');
    const b = new EthernetSwitch(clock, 'empty');
    const link = wire(a.sw, b);
    const probe = new RouterProbe(link.a, { mac: a.router.mac, hostIp: a.router.hostIp, leases: leasesOf(a.router) }, routerSwitch(a.sw, a.router), Uint8Array.of(2, 0, 0, 0, 0, 1), clock);
    probe.probe();
    link.a.send(dhcp(Uint8Array.of(0x52, 0x54, 0, 9, 9, 9), DHCPDISCOVER)); // a station beyond the relay
    clock.advanceTo(1e9);
    expect(probe.serving).toBe(true);
    expect(probe.othersHeard).toBe(0);
    expect(a.router.stats.dhcp.discover).toBe(1); // and it serves the segment's stations
  });

  it('two machines joining at the same moment keep one router: the lower NIC address\'s; both stations lease from it', () => {
    const clock = new VirtualClock();
    const a = side(clock, 'a');
    const b = side(clock, 'b');
    const [pa, pb] = hub(a.sw, b.sw);
    const macA = Uint8Array.of(0x52, 0x54, 0, 0, 0, 0x0a);
    const macB = Uint8Array.of(0x52, 0x54, 0, 0, 0, 0x0b);
    const probeA = new RouterProbe(pa, { mac: a.router.mac, hostIp: a.router.hostIp, leases: leasesOf(a.router) }, routerSwitch(a.sw, a.router), macA, clock);
    const probeB = new RouterProbe(pb, { mac: b.router.mac, hostIp: b.router.hostIp, leases: leasesOf(b.router) }, routerSwitch(b.sw, b.router), macB, clock);
    // Both probes out before either router hears anything back (the switches deliver on the clock).
    probeB.probe();
    probeA.probe();
    clock.advanceTo(2e9);
    expect(probeA.serving).toBe(true);
    expect(probeB.serving).toBe(false);
    // A asked again after the tie, and no router answered that time.
    expect(probeA.probesSent).toBe(2);
    a.station.send(dhcp(macA, DHCPDISCOVER));
    b.station.send(dhcp(macB, DHCPDISCOVER));
    clock.advanceTo(3e9);
    // Each station's offer (a broadcast reaches both) comes from A's router.
    const mine = (got: Uint8Array[], mac: Uint8Array) => offers(got).filter((o) => o.chaddr.subarray(0, 6).every((v, i) => v === mac[i]));
    expect(mine(a.got, macA)).toHaveLength(1);
    expect(mine(b.got, macB)).toHaveLength(1);
    expect(a.router.stats.dhcp.offer).toBe(2);
    expect(b.router.stats.dhcp.discover).toBe(0);
    probeA.close();
    probeB.close();
  });

  it('two machines joining at once where a router already serves: both step down for it', () => {
    const clock = new VirtualClock();
    const c = side(clock, 'c');
    const a = side(clock, 'a');
    const b = side(clock, 'b');
    // C's router is in use: it has leased an address.
    const macC = Uint8Array.of(0x52, 0x54, 0, 0, 0, 0x0c);
    c.station.send(dhcp(macC, DHCPDISCOVER));
    clock.advanceTo(1e9);
    c.station.send(dhcp(macC, DHCPREQUEST, [[OPT_REQUESTED_IP, ipOption(offers(c.got)[0].yiaddr)], [OPT_SERVER_ID, ipOption(c.router.hostIp)]]));
    clock.advanceTo(2e9);
    expect(c.router.stats.dhcp.bound).toBe(1);
    const [pc, pa, pb] = hub(c.sw, a.sw, b.sw);
    const probeC = new RouterProbe(pc, { mac: c.router.mac, hostIp: c.router.hostIp, leases: leasesOf(c.router) }, routerSwitch(c.sw, c.router), macC, clock);
    const probeA = new RouterProbe(pa, { mac: a.router.mac, hostIp: a.router.hostIp, leases: leasesOf(a.router) }, routerSwitch(a.sw, a.router), Uint8Array.of(0x52, 0x54, 0, 0, 0, 0x0a), clock);
    const probeB = new RouterProbe(pb, { mac: b.router.mac, hostIp: b.router.hostIp, leases: leasesOf(b.router) }, routerSwitch(b.sw, b.router), Uint8Array.of(0x52, 0x54, 0, 0, 0, 0x0b), clock);
    probeA.probe();
    probeB.probe();
    clock.advanceTo(4e9);
    expect(probeC.serving).toBe(true);
    expect(probeA.serving).toBe(false);
    expect(probeB.serving).toBe(false);
    for (const p of [probeA, probeB, probeC]) p.close();
  });
});
