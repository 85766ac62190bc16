import { describe, expect, it } from 'vitest';
import { internetChecksum } from './checksum.ts';
import { encodeIcmp, ICMP_DEST_UNREACHABLE, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_PORT_UNREACHABLE } from './icmp.ts';
import { ipFromString, IPPROTO_ICMP } from './ipv4.ts';
import { makeNet } from './test-guest.ts';

const ip = (s: string) => ipFromString(s)!;

function ping(id: number, seq: number, data: Uint8Array): Uint8Array {
  return encodeIcmp({ type: ICMP_ECHO_REQUEST, code: 0, rest: (id << 16) | seq, data });
}

describe('ICMP', () => {
  it('answers echo for 10.0.2.2 and 10.0.2.3 with the same id, sequence and data and a correct checksum', () => {
    const { net, guest } = makeNet();
    guest.ip = ip('10.0.2.15');
    const data = Uint8Array.from({ length: 56 }, (_, i) => i);
    for (const dst of ['10.0.2.2', '10.0.2.3']) {
      guest.sendIp({ dst: ip(dst), protocol: IPPROTO_ICMP, payload: ping(0x1234, 7, data) });
      const [r] = guest.take();
      expect(r.ip!.src).toBe(ip(dst));
      expect(r.ip!.dst).toBe(ip('10.0.2.15'));
      expect(internetChecksum(r.ip!.payload)).toBe(0);
      expect(r.icmp!.type).toBe(ICMP_ECHO_REPLY);
      expect(r.icmp!.rest).toBe((0x1234 << 16) | 7);
      expect([...r.icmp!.data]).toEqual([...data]);
    }
    expect(net.stats.icmpEchoReplies).toBe(2);
  });

  it('says nothing for 8.8.8.8 or another guest address (no faked replies), counted', () => {
    const { net, guest } = makeNet();
    guest.ip = ip('10.0.2.15');
    guest.sendIp({ dst: ip('8.8.8.8'), protocol: IPPROTO_ICMP, payload: ping(1, 1, new Uint8Array(8)) });
    guest.sendIp({ dst: ip('10.0.2.16'), protocol: IPPROTO_ICMP, payload: ping(1, 2, new Uint8Array(8)) });
    expect(guest.take()).toEqual([]);
    expect(net.stats.drops['icmp-not-relayed']).toBe(2);
  });

  it('drops an echo with a bad checksum', () => {
    const { net, guest } = makeNet();
    guest.ip = ip('10.0.2.15');
    const p = ping(1, 1, new Uint8Array(8));
    p[2] ^= 1;
    guest.sendIp({ dst: ip('10.0.2.2'), protocol: IPPROTO_ICMP, payload: p });
    expect(guest.take()).toEqual([]);
    expect(net.stats.drops['icmp-malformed']).toBe(1);
  });

  it('answers UDP to a router port nobody serves with port unreachable quoting the datagram', () => {
    const { guest } = makeNet();
    guest.ip = ip('10.0.2.15');
    guest.sendUdp(ip('10.0.2.3'), 4000, 9999, Uint8Array.of(1, 2, 3));
    const [r] = guest.take();
    expect(r.icmp!.type).toBe(ICMP_DEST_UNREACHABLE);
    expect(r.icmp!.code).toBe(ICMP_PORT_UNREACHABLE);
    expect(r.ip!.src).toBe(ip('10.0.2.3'));
    // The quote: the original IPv4 header (20 bytes) and 8 bytes of UDP header.
    expect(r.icmp!.data.length).toBe(28);
    expect(r.icmp!.data[9]).toBe(17);
    expect((r.icmp!.data[22] << 8) | r.icmp!.data[23]).toBe(9999);
  });
});
