import { describe, expect, it } from 'vitest';
import { ARP_REPLY, ARP_REQUEST, ARP_TIMEOUT_NS, encodeArp, parseArp } from './arp.ts';
import { BROADCAST_MAC, ETHERTYPE_ARP, macToString } from './ethernet.ts';
import { ipFromString } from './ipv4.ts';
import { ethernetFrame, udpFrame } from './packets.ts';
import { makeNet } from './test-guest.ts';

const ip = (s: string) => ipFromString(s)!;
/** A DNS query for "x.test", type A. */
const QUERY = Uint8Array.of(0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0x78, 4, 0x74, 0x65, 0x73, 0x74, 0, 0, 1, 0, 1);

describe('ARP', () => {
  it('encodes and parses the RFC 826 layout', () => {
    const sha = Uint8Array.of(1, 2, 3, 4, 5, 6);
    const b = encodeArp({ oper: ARP_REQUEST, sha, spa: ip('10.0.2.15'), tha: new Uint8Array(6), tpa: ip('10.0.2.2') });
    expect([...b.subarray(0, 8)]).toEqual([0, 1, 8, 0, 6, 4, 0, 1]);
    const p = parseArp(b)!;
    expect(p.spa).toBe(ip('10.0.2.15'));
    expect(p.tpa).toBe(ip('10.0.2.2'));
    expect([...p.sha]).toEqual([...sha]);
    expect(parseArp(b.subarray(0, 27))).toBeNull();
  });

  it('answers requests for 10.0.2.2 and 10.0.2.3 with the router MAC, and not for other addresses', () => {
    const { net, guest } = makeNet();
    guest.ip = ip('10.0.2.15');
    for (const target of ['10.0.2.2', '10.0.2.3']) {
      guest.arpFor(ip(target));
      const [r] = guest.take();
      expect(r.etherType).toBe(ETHERTYPE_ARP);
      expect(macToString(r.dst)).toBe(macToString(guest.mac));
      expect(r.arp!.oper).toBe(ARP_REPLY);
      expect(macToString(r.arp!.sha)).toBe('52:55:0a:00:02:02');
      expect(r.arp!.spa).toBe(ip(target));
      expect(r.arp!.tpa).toBe(ip('10.0.2.15'));
      expect(macToString(r.arp!.tha)).toBe(macToString(guest.mac));
    }
    guest.arpFor(ip('10.0.2.99'));
    guest.arpFor(ip('8.8.8.8'));
    expect(guest.take()).toEqual([]);
    expect(net.stats.arpRepliesOut).toBe(2);
    expect(net.stats.arpRequestsIn).toBe(4);
  });

  it('asks for a guest it has not heard from, holds the datagram, and sends it when the reply comes', () => {
    const { net, guest } = makeNet({ hosts: { 'x.test': '10.0.2.2' } });
    // A query whose frame has a group source MAC: nothing to learn from, so the router must ARP to answer.
    guest.sendFrame(udpFrame({ srcMac: Uint8Array.of(1, 0, 0x5e, 0, 0, 1), dstMac: net.mac, srcIp: ip('10.0.2.20'), dstIp: ip('10.0.2.3'), srcPort: 1000, dstPort: 53, payload: QUERY }));
    const [req] = guest.take();
    expect(req.etherType).toBe(ETHERTYPE_ARP);
    expect(macToString(req.dst)).toBe(macToString(BROADCAST_MAC));
    expect(req.arp!.oper).toBe(ARP_REQUEST);
    expect(req.arp!.tpa).toBe(ip('10.0.2.20'));
    expect(req.arp!.spa).toBe(ip('10.0.2.2'));
    // The guest answers: the held DNS reply goes out to its MAC.
    const replyMac = Uint8Array.of(0x52, 0x54, 0, 0, 0, 0x20);
    guest.sendFrame(ethernetFrame(net.mac, replyMac, ETHERTYPE_ARP, encodeArp({ oper: ARP_REPLY, sha: replyMac, spa: ip('10.0.2.20'), tha: net.mac, tpa: ip('10.0.2.2') })));
    const [dns] = guest.take();
    expect(macToString(dns.dst)).toBe(macToString(replyMac));
    expect(dns.udp!.srcPort).toBe(53);
    expect(dns.udp!.dstPort).toBe(1000);
  });

  it('repeats the request, then drops the held datagram and counts it when nobody answers', () => {
    const { clock, net, guest } = makeNet({ hosts: { 'x.test': '10.0.2.2' } });
    guest.sendFrame(udpFrame({ srcMac: Uint8Array.of(1, 0, 0x5e, 0, 0, 1), dstMac: net.mac, srcIp: ip('10.0.2.30'), dstIp: ip('10.0.2.3'), srcPort: 7, dstPort: 53, payload: QUERY }));
    expect(guest.take().length).toBe(1);
    clock.advanceTo(ARP_TIMEOUT_NS + 1);
    const retries = guest.take();
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(retries.every((f) => f.arp?.oper === ARP_REQUEST)).toBe(true);
    expect(net.stats.drops['arp-timeout']).toBe(1);
  });

  it('counts malformed ARP and never throws', () => {
    const { net, guest } = makeNet();
    guest.sendFrame(ethernetFrame(BROADCAST_MAC, guest.mac, ETHERTYPE_ARP, Uint8Array.of(0, 1, 8, 0)));
    guest.sendFrame(ethernetFrame(BROADCAST_MAC, guest.mac, ETHERTYPE_ARP, new Uint8Array(28).fill(0xff)));
    expect(net.stats.drops['arp-malformed']).toBe(2);
  });
});
