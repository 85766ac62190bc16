import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../machine/clock.ts';
import { ETHERTYPE_IPV6, defaultMac } from './ethernet.ts';
import { ICMP_DEST_UNREACHABLE, ICMP_PORT_UNREACHABLE } from './icmp.ts';
import { ipFromString, IPPROTO_TCP } from './ipv4.ts';
import { ethernetFrame } from './packets.ts';
import { encodeTcpSegment, parseTcpSegment, TCP_RST, TCP_SYN } from './tcp.ts';
import { makeNet, TestGuest } from './test-guest.ts';
import { TestHost } from './test-host.ts';
import { UserNetwork } from './user-net.ts';

const ip = (s: string) => ipFromString(s)!;

describe('UserNetwork', () => {
  it('takes QEMU\'s addresses by default and rejects options that are not addresses in its network', () => {
    const net = new UserNetwork(new VirtualClock(), null);
    expect([net.hostIp, net.dnsIp, net.defaultGuestIp]).toEqual([ip('10.0.2.2'), ip('10.0.2.3'), ip('10.0.2.15')]);
    expect([...net.mac]).toEqual([0x52, 0x55, 0x0a, 0x00, 0x02, 0x02]);
    expect(() => new UserNetwork(new VirtualClock(), null, { net: '10.0.2.0/40' })).toThrow(/net=10.0.2.0\/40/);
    expect(() => new UserNetwork(new VirtualClock(), null, { host: '192.168.0.1' })).toThrow(/host=192.168.0.1 is not an address in 10.0.2.0\/24/);
    expect(() => new UserNetwork(new VirtualClock(), null, { hosts: { a: 'b' } })).toThrow(/hosts entry a=b/);
    const other = new UserNetwork(new VirtualClock(), null, { net: '192.168.76.0/24', host: '192.168.76.1', dns: '192.168.76.53', dhcpStart: '192.168.76.100' });
    expect(other.defaultGuestIp).toBe(ip('192.168.76.100'));
  });

  it('counts what it ignores: frames for other MACs, IPv6, unknown EtherTypes, short frames', () => {
    const { net, guest } = makeNet();
    guest.sendFrame(ethernetFrame(defaultMac(5), guest.mac, 0x0800, new Uint8Array(40)));
    guest.sendFrame(ethernetFrame(Uint8Array.of(0x33, 0x33, 0, 0, 0, 1), guest.mac, ETHERTYPE_IPV6, new Uint8Array(40)));
    guest.sendFrame(ethernetFrame(net.mac, guest.mac, 0x88cc, new Uint8Array(40)));
    guest.sendFrame(new Uint8Array(10));
    expect(guest.take()).toEqual([]);
    expect(net.stats.drops).toEqual({ 'not-for-us': 1, ipv6: 1, ethertype: 1, 'frame-short': 1 });
    expect(net.stats.framesIn).toBe(4);
  });

  it('without a host network: UDP to 10.0.2.2 gets port unreachable and TCP gets RST', () => {
    const { net, guest } = makeNet({ restrict: false }, null);
    guest.ip = ip('10.0.2.15');
    guest.sendUdp(ip('10.0.2.2'), 1234, 80, Uint8Array.of(1));
    expect(guest.take()[0].icmp).toMatchObject({ type: ICMP_DEST_UNREACHABLE, code: ICMP_PORT_UNREACHABLE });
    const syn = { srcPort: 1234, dstPort: 80, seq: 1, ack: 0, flags: TCP_SYN, window: 100, payload: new Uint8Array(0) };
    guest.sendIp({ dst: ip('10.0.2.2'), protocol: IPPROTO_TCP, payload: encodeTcpSegment(syn, guest.ip, ip('10.0.2.2')) });
    const [r] = guest.take();
    const seg = parseTcpSegment(r.ip!.payload, r.ip!.src, r.ip!.dst)!;
    expect(seg.flags & TCP_RST).toBe(TCP_RST);
    expect(net.stats.tcp.prohibited).toBe(1);
  });

  it('rejects start() with hostfwd and no host network', async () => {
    const net = new UserNetwork(new VirtualClock(), null, { hostfwd: [{ protocol: 'tcp', hostAddress: '', hostPort: 1, guestPort: 2 }] });
    await expect(net.start()).rejects.toThrow(/hostfwd needs a host network/);
  });

  it('after close() answers nothing and holds no host socket', async () => {
    const host = new TestHost();
    const { net, guest } = makeNet({ hostfwd: [{ protocol: 'udp', hostAddress: '127.0.0.1', hostPort: 9, guestPort: 9 }] }, host);
    await net.start();
    guest.ip = ip('10.0.2.15');
    guest.sendUdp(ip('10.0.2.2'), 1, 2, Uint8Array.of(1));
    net.close();
    expect(host.udpSockets.every((s) => s.closed)).toBe(true);
    expect(host.udpListeners.every((s) => s.closed)).toBe(true);
    guest.arpFor(ip('10.0.2.2'));
    expect(guest.take()).toEqual([]);
    expect(net.stats.drops['closed']).toBe(1);
  });

  it('is deterministic: the same frames in give the same frames out', () => {
    const run = () => {
      const host = new TestHost();
      const clock = new VirtualClock();
      const net = new UserNetwork(clock, host, { restrict: true, hosts: { 'a.test': '10.0.2.2' } });
      const guest = new TestGuest(net, defaultMac(0), ip('10.0.2.15'));
      const out: number[] = [];
      guest.arpFor(ip('10.0.2.2'));
      guest.sendUdp(ip('10.0.2.3'), 5000, 53, Uint8Array.of(0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0x61, 4, 0x74, 0x65, 0x73, 0x74, 0, 0, 1, 0, 1));
      const syn = { srcPort: 1234, dstPort: 80, seq: 1, ack: 0, flags: TCP_SYN, window: 65535, mss: 1460, payload: new Uint8Array(0) };
      guest.sendIp({ dst: ip('10.0.2.2'), protocol: IPPROTO_TCP, payload: encodeTcpSegment(syn, guest.ip, ip('10.0.2.2')) });
      host.connections[0].onConnect();
      for (const f of guest.takeRaw()) out.push(...f);
      return out;
    };
    const a = run();
    expect(a.length).toBeGreaterThan(150);
    expect(run()).toEqual(a);
  });
});
