import { describe, expect, it } from 'vitest';
import { FetchHostNetwork } from './http-fetch.ts';
import type { NetEvent } from './host.ts';
import { defaultChoice, isPlausibleName, messageBytes, SyntheticNames, UPSTREAM_LOOPBACK, UpstreamSelector } from './upstream.ts';
import { TestHost } from './test-host.ts';

describe('SyntheticNames', () => {
  it('gives each name its own address in 198.18.0.0/15, the same one again, case-insensitively, and finds the name back', () => {
    const n = new SyntheticNames();
    const a = n.addressFor('example.com');
    const b = n.addressFor('other.example');
    expect(a).toBe('198.18.0.1');
    expect(b).toBe('198.18.0.2');
    expect(n.addressFor('EXAMPLE.com.')).toBe(a);
    expect(n.nameOf(a)).toBe('example.com');
    expect(n.nameOf('198.18.0.99')).toBeNull();
    expect(n.isSynthetic('198.19.255.254')).toBe(true);
    expect(n.isSynthetic('198.20.0.1')).toBe(false);
    expect(n.nameOf('not an address')).toBeNull();
  });

  it('skips .0 and .255, and a full pool takes the oldest address back', () => {
    const n = new SyntheticNames(0xc6120000, 512);
    const seen = new Set<string>();
    for (let i = 0; i < 600; i++) {
      const a = n.addressFor(`h${i}.test`);
      expect(a).not.toMatch(/\.(0|255)$/);
      seen.add(a);
    }
    // 510 usable addresses minus the last: after wrapping, the first names lost theirs.
    expect(seen.size).toBeLessThanOrEqual(510);
    expect(n.nameOf(n.addressFor('h599.test'))).toBe('h599.test');
    expect(n.count).toBeLessThanOrEqual(510);
  });
});

describe('UpstreamSelector', () => {
  it('chooses per connection: the own origin through fetch, the rest through Wisp; without Wisp only port 80', () => {
    const fetch = new TestHost();
    const wisp = new TestHost();
    const ups = { fetch, wisp };
    const req = (port: number, loopback: boolean, protocol: 'tcp' | 'udp' = 'tcp') => ({ protocol, address: loopback ? UPSTREAM_LOOPBACK : '198.18.0.1', port, name: null, loopback });
    expect(defaultChoice(req(80, true), ups)).toBe(fetch);
    expect(defaultChoice(req(80, false), ups)).toBe(wisp);
    expect(defaultChoice(req(8080, true), ups)).toBe(wisp);
    expect(defaultChoice(req(53, false, 'udp'), ups)).toBe(wisp);
    expect(defaultChoice(req(80, false), { fetch, wisp: null })).toBe(fetch);
    expect(defaultChoice(req(443, false), { fetch, wisp: null })).toBeNull();
    expect(defaultChoice(req(53, false, 'udp'), { fetch, wisp: null })).toBeNull();
  });

  it('refuses what no upstream carries with an event, answers DNS with synthetic addresses, cannot listen', async () => {
    const names = new SyntheticNames();
    const up = new FetchHostNetwork({ fetch: () => Promise.reject(new TypeError('unused')), ownOrigin: 'http://origin.test', names });
    const s = new UpstreamSelector({ names, fetch: up });
    const events: NetEvent[] = [];
    s.onEvent = (e) => events.push(e);
    expect(() => s.connectTcp('198.18.0.7', 22)).toThrow(/no upstream/);
    expect(events[0].message).toMatch(/port 22/);
    const sock = s.openUdp();
    const errors: string[] = [];
    sock.onError = (e) => errors.push(e);
    sock.send(new Uint8Array(4), '192.0.2.1', 53);
    expect(errors[0]).toMatch(/no upstream/);
    expect(events[1].message).toMatch(/UDP to 192\.0\.2\.1 port 53/);
    expect(await s.resolve4('www.example.com')).toEqual([names.addressFor('www.example.com')]);
    await expect(s.resolve4('bad name!')).rejects.toThrow(/not a host name/);
    await expect(s.listenTcp()).rejects.toThrow(/cannot listen/);
  });

  it('builds fetch URLs: the own origin with its path prefix, a name with its port, a literal address by Host', () => {
    const names = new SyntheticNames();
    const up = new FetchHostNetwork({ fetch: () => Promise.reject(new TypeError('unused')), ownOrigin: 'https://page.test/app/', names });
    const head = (target: string, host?: string) => ({ method: 'GET', target, version: 'HTTP/1.1', headers: host ? [['host', host]] as [string, string][] : [], keepAlive: true });
    expect(up.urlFor(UPSTREAM_LOOPBACK, 80, head('/images/x?y=1'))).toBe('https://page.test/app/images/x?y=1');
    expect(up.urlFor(UPSTREAM_LOOPBACK, 80, head('http://10.0.2.2/abs'))).toBe('https://page.test/app/abs');
    const a = names.addressFor('files.test');
    expect(up.urlFor(a, 80, head('/f', 'ignored.test'))).toBe('http://files.test/f');
    expect(up.urlFor(a, 8080, head('/f'))).toBe('http://files.test:8080/f');
    expect(up.urlFor('203.0.113.5', 80, head('/f', 'by-host.test'))).toBe('http://by-host.test/f');
    expect(up.urlFor('203.0.113.5', 81, head('/f'))).toBe('http://203.0.113.5:81/f');
    expect(up.guestUrl('https://page.test/app/next')).toBe('http://10.0.2.2/next');
    expect(up.guestUrl('https://elsewhere.test/next')).toBe('https://elsewhere.test/next');
  });

  it('reads messages as bytes: ArrayBuffer, views, Node fragments; text is not bytes', () => {
    expect(messageBytes(Uint8Array.of(1, 2).buffer)).toEqual(Uint8Array.of(1, 2));
    expect(messageBytes(Uint8Array.of(0, 1, 2, 3).subarray(1, 3))).toEqual(Uint8Array.of(1, 2));
    expect(messageBytes([Uint8Array.of(1), Uint8Array.of(2, 3)])).toEqual(Uint8Array.of(1, 2, 3));
    expect(messageBytes('text')).toBeNull();
    expect(isPlausibleName('a-b.c_d.example')).toBe(true);
    expect(isPlausibleName('-bad.example')).toBe(false);
  });
});
