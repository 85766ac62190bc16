import { describe, expect, it } from 'vitest';
import { ICMP_ADMIN_PROHIBITED, ICMP_DEST_UNREACHABLE } from './icmp.ts';
import { ipFromString } from './ipv4.ts';
import { makeNet } from './test-guest.ts';
import { TestHost } from './test-host.ts';
import { encodeUdp, parseUdp } from './udp.ts';
import { UDP_IDLE_NS } from './udp-nat.ts';
import { ARP_REPLY, ARP_REQUEST, encodeArp } from './arp.ts';
import { ETHERTYPE_ARP } from './ethernet.ts';
import { ethernetFrame, udpFrame } from './packets.ts';

const ip = (s: string) => ipFromString(s)!;

describe('UDP', () => {
  it('round-trips a datagram with its pseudo-header checksum; zero means none; a bad one is named', () => {
    const d = encodeUdp({ srcPort: 1, dstPort: 2, payload: Uint8Array.of(9, 8, 7) }, ip('10.0.2.15'), ip('10.0.2.2'));
    const p = parseUdp(d, ip('10.0.2.15'), ip('10.0.2.2'));
    expect(p).toMatchObject({ srcPort: 1, dstPort: 2 });
    expect(parseUdp(d, ip('10.0.2.15'), ip('10.0.2.3'))).toBe('udp-checksum');
    const none = d.slice();
    none[6] = none[7] = 0;
    expect(parseUdp(none, ip('1.1.1.1'), ip('2.2.2.2'))).toMatchObject({ srcPort: 1 });
    expect(parseUdp(d.subarray(0, 7), 0, 0)).toBe('udp-short');
    const long = d.slice();
    long[5] = 200;
    expect(parseUdp(long, 0, 0)).toBe('udp-length');
  });

  it('relays guest UDP to 10.0.2.2 through a host socket to the loopback, and the reply back from 10.0.2.2', () => {
    const host = new TestHost();
    const { net, guest } = makeNet({ restrict: true }, host);
    guest.ip = ip('10.0.2.15');
    guest.sendUdp(ip('10.0.2.2'), 40000, 7777, Uint8Array.of(1, 2, 3));
    expect(host.udpSockets.length).toBe(1);
    const s = host.udpSockets[0];
    expect(s.sent).toEqual([{ data: Uint8Array.of(1, 2, 3), address: '127.0.0.1', port: 7777 }]);
    // The same flow reuses its socket.
    guest.sendUdp(ip('10.0.2.2'), 40000, 7777, Uint8Array.of(4));
    expect(host.udpSockets.length).toBe(1);
    s.onMessage(Uint8Array.of(5, 6), '127.0.0.1', 7777);
    const [r] = guest.take();
    expect(r.ip!.src).toBe(ip('10.0.2.2'));
    expect(r.ip!.dst).toBe(ip('10.0.2.15'));
    expect(r.udp).toMatchObject({ srcPort: 7777, dstPort: 40000 });
    expect([...r.udp!.payload]).toEqual([5, 6]);
    expect(net.stats.udpNat.packetsOut).toBe(2);
    expect(net.stats.udpNat.packetsIn).toBe(1);
  });

  it('closes an idle flow on the virtual clock', () => {
    const host = new TestHost();
    const { clock, net, guest } = makeNet({ restrict: true }, host);
    guest.ip = ip('10.0.2.15');
    guest.sendUdp(ip('10.0.2.2'), 40000, 7777, Uint8Array.of(1));
    clock.advanceTo(UDP_IDLE_NS / 2);
    guest.sendUdp(ip('10.0.2.2'), 40000, 7777, Uint8Array.of(2));
    clock.advanceTo(UDP_IDLE_NS + 1);
    expect(host.udpSockets[0].closed).toBe(false);
    clock.advanceTo(UDP_IDLE_NS * 2);
    expect(host.udpSockets[0].closed).toBe(true);
    expect(net.stats.udpNat.flowsExpired).toBe(1);
  });

  it('restricted: UDP to another address is refused with ICMP admin-prohibited and no host socket', () => {
    const host = new TestHost();
    const { net, guest } = makeNet({ restrict: true }, host);
    guest.ip = ip('10.0.2.15');
    guest.sendUdp(ip('1.2.3.4'), 40000, 53, Uint8Array.of(1));
    const [r] = guest.take();
    expect(r.icmp).toMatchObject({ type: ICMP_DEST_UNREACHABLE, code: ICMP_ADMIN_PROHIBITED });
    expect(host.udpSockets.length).toBe(0);
    expect(net.stats.drops['restricted']).toBe(1);
  });

  it('not restricted: UDP to another address goes to that address; replies come from it', () => {
    const host = new TestHost();
    const { guest } = makeNet({ restrict: false }, host);
    guest.ip = ip('10.0.2.15');
    guest.sendUdp(ip('192.0.2.7'), 40001, 123, Uint8Array.of(1));
    const s = host.udpSockets[0];
    expect(s.sent[0]).toMatchObject({ address: '192.0.2.7', port: 123 });
    s.onMessage(Uint8Array.of(2), '192.0.2.7', 123);
    const [r] = guest.take();
    expect(r.ip!.src).toBe(ip('192.0.2.7'));
    expect(r.udp).toMatchObject({ srcPort: 123, dstPort: 40001 });
  });

  it('closes every socket on close()', () => {
    const host = new TestHost();
    const { net, guest } = makeNet({ restrict: true }, host);
    guest.ip = ip('10.0.2.15');
    guest.sendUdp(ip('10.0.2.2'), 1, 2, Uint8Array.of(1));
    guest.sendUdp(ip('10.0.2.2'), 3, 4, Uint8Array.of(1));
    net.close();
    expect(host.udpSockets.map((s) => s.closed)).toEqual([true, true]);
  });

  it('hostfwd=udp: a host datagram reaches the guest from 10.0.2.2 (after ARP), the reply goes back to the host peer; idle peers are forgotten', async () => {
    const host = new TestHost();
    const { clock, net, guest } = makeNet({ restrict: true, hostfwd: [{ protocol: 'udp', hostAddress: '127.0.0.1', hostPort: 5353, guestPort: 53 }] }, host);
    const GUEST = ip('10.0.2.15');
    const ROUTER = ip('10.0.2.2');
    await net.start();
    const sock = host.udpListeners[0];
    expect([sock.boundAddress, sock.boundPort]).toEqual(['127.0.0.1', 5353]);
    sock.onMessage(Uint8Array.of(7), '127.0.0.1', 61000);
    // ARP first (the guest is unknown), then the datagram once it answers.
    const [arp] = guest.take();
    expect(arp.arp?.oper).toBe(ARP_REQUEST);
    net.receive(ethernetFrame(net.mac, guest.mac, ETHERTYPE_ARP, encodeArp({ oper: ARP_REPLY, sha: guest.mac, spa: GUEST, tha: net.mac, tpa: ROUTER })));
    const [d] = guest.take();
    expect(d.ip!.src).toBe(ROUTER);
    expect(d.ip!.dst).toBe(GUEST);
    expect(d.udp).toMatchObject({ dstPort: 53 });
    const routerPort = d.udp!.srcPort;
    net.receive(udpFrame({ srcMac: guest.mac, dstMac: net.mac, srcIp: GUEST, dstIp: ROUTER, srcPort: 53, dstPort: routerPort, payload: Uint8Array.of(8) }));
    expect(sock.sent).toEqual([{ data: Uint8Array.of(8), address: '127.0.0.1', port: 61000 }]);
    expect(net.stats.udpHostfwd).toMatchObject({ active: 1, packetsIn: 1, packetsOut: 1 });
    clock.advanceTo(UDP_IDLE_NS * 2);
    expect(net.stats.udpHostfwd.active).toBe(0);
    // The peer is forgotten: 10.0.2.2:port is again just the host's loopback (UDP NAT), not the peer.
    net.receive(udpFrame({ srcMac: guest.mac, dstMac: net.mac, srcIp: GUEST, dstIp: ROUTER, srcPort: 53, dstPort: routerPort, payload: Uint8Array.of(9) }));
    expect(sock.sent.length).toBe(1);
    expect(host.udpSockets[0].sent).toEqual([{ data: Uint8Array.of(9), address: '127.0.0.1', port: routerPort }]);
    net.close();
    expect(sock.closed).toBe(true);
  });
});
