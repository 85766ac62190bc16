import { describe, expect, it } from 'vitest';
import { internetChecksum } from './checksum.ts';
import { ETHERTYPE_IPV4 } from './ethernet.ts';
import { encodeIpv4, ipFromString, ipToString, IPPROTO_UDP, parseCidr, parseIpv4 } from './ipv4.ts';
import { ethernetFrame } from './packets.ts';
import { makeNet } from './test-guest.ts';

const ip = (s: string) => ipFromString(s)!;

describe('IPv4', () => {
  it('converts addresses both ways and rejects malformed ones', () => {
    expect(ip('10.0.2.2')).toBe(0x0a000202);
    expect(ipToString(0xc0a80101)).toBe('192.168.1.1');
    expect(ip('255.255.255.255')).toBe(0xffffffff);
    expect(ipFromString('256.1.1.1')).toBeNull();
    expect(ipFromString('1.2.3')).toBeNull();
    expect(parseCidr('10.0.2.0/24')).toEqual({ network: 0x0a000200, mask: 0xffffff00, prefix: 24 });
    expect(parseCidr('10.0.2.0/33')).toBeNull();
  });

  it('builds a header with a valid checksum, DF set, and parses it back without link padding', () => {
    const d = encodeIpv4({ src: ip('10.0.2.2'), dst: ip('10.0.2.15'), protocol: IPPROTO_UDP, payload: Uint8Array.of(1, 2, 3), id: 7, ttl: 64 });
    expect(d.length).toBe(23);
    expect(internetChecksum(d, 0, 20)).toBe(0);
    const padded = new Uint8Array(46);
    padded.set(d);
    const p = parseIpv4(padded);
    if (typeof p === 'string') throw new Error(p);
    expect(p.payload.length).toBe(3);
    expect(p.dontFragment).toBe(true);
    expect(p.id).toBe(7);
    expect(p.ttl).toBe(64);
    expect(p.src).toBe(ip('10.0.2.2'));
  });

  it('names what is wrong with a bad header', () => {
    const d = encodeIpv4({ src: 1, dst: 2, protocol: IPPROTO_UDP, payload: new Uint8Array(8) });
    expect(parseIpv4(d.subarray(0, 19))).toBe('ip-short');
    const v6 = d.slice();
    v6[0] = 0x65;
    expect(parseIpv4(v6)).toBe('ip-version');
    const ihl = d.slice();
    ihl[0] = 0x44;
    expect(parseIpv4(ihl)).toBe('ip-header-length');
    const total = d.slice();
    total[3] = 200;
    expect(parseIpv4(total)).toBe('ip-total-length');
    const sum = d.slice();
    sum[10] ^= 0xff;
    expect(parseIpv4(sum)).toBe('ip-checksum');
  });

  it('drops fragments (MF set, or an offset) and counts them', () => {
    const { net, guest } = makeNet();
    const d = encodeIpv4({ src: ip('10.0.2.15'), dst: ip('10.0.2.2'), protocol: IPPROTO_UDP, payload: new Uint8Array(16) });
    const mf = d.slice();
    mf[6] = 0x20; // MF
    mf[10] = mf[11] = 0;
    mf.set([internetChecksum(mf, 0, 20) >> 8, internetChecksum(mf, 0, 20) & 0xff], 10);
    expect(parseIpv4(mf)).toBe('ip-fragment');
    guest.sendFrame(ethernetFrame(net.mac, guest.mac, ETHERTYPE_IPV4, mf));
    expect(guest.take()).toEqual([]);
    expect(net.stats.drops['ip-fragment']).toBe(1);
  });

  it('survives garbage frames of every length without throwing, counting each', () => {
    const { net } = makeNet();
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
    for (let n = 0; n < 2000; n++) {
      const len = rnd() % 120;
      const f = new Uint8Array(len);
      for (let i = 0; i < len; i++) f[i] = rnd() & 0xff;
      if (len >= 14) {
        f.set(net.mac, 0);
        f[12] = 0x08;
        f[13] = n % 2 ? 0x00 : 0x06;
        if (n % 2 && len > 14) f[14] = 0x45;
      }
      expect(() => net.receive(f)).not.toThrow();
    }
    const dropped = Object.values(net.stats.drops).reduce((a, b) => a + b, 0);
    expect(dropped).toBeGreaterThan(1900);
    expect(net.stats.drops['internal-error']).toBeUndefined();
  });
});
