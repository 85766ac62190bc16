import { describe, expect, it } from 'vitest';
import { ipFromString, readU16, readU32, writeU16 } from './ipv4.ts';
import { parseDnsQuery, QTYPE_A, QTYPE_AAAA, RCODE_FORMERR, RCODE_NOERROR, RCODE_NXDOMAIN, RCODE_SERVFAIL } from './dns.ts';
import { makeNet, type TestGuest } from './test-guest.ts';
import { TestHost } from './test-host.ts';
import type { DecodedFrame } from './packets.ts';

const ip = (s: string) => ipFromString(s)!;

/** A query as a stub resolver sends it: RD set, one question. */
function query(id: number, name: string, qtype = QTYPE_A): Uint8Array {
  const labels = name.split('.').flatMap((l) => [l.length, ...[...l].map((c) => c.charCodeAt(0))]);
  const b = new Uint8Array(12 + labels.length + 1 + 4);
  writeU16(b, 0, id);
  writeU16(b, 2, 0x0100);
  writeU16(b, 4, 1);
  b.set(labels, 12);
  writeU16(b, b.length - 4, qtype);
  writeU16(b, b.length - 2, 1);
  return b;
}

interface Answer {
  id: number;
  rcode: number;
  qd: number;
  an: number;
  addresses: number[];
  flags: number;
}

function answer(f: DecodedFrame): Answer {
  const b = f.udp!.payload;
  const an = readU16(b, 6);
  // Skip the question: name, type, class.
  let o = 12;
  if (readU16(b, 4) === 1) {
    while (b[o] !== 0) o += b[o] + 1;
    o += 5;
  }
  const addresses: number[] = [];
  for (let i = 0; i < an; i++) {
    expect(readU16(b, o)).toBe(0xc00c);
    expect(readU16(b, o + 10)).toBe(4);
    addresses.push(readU32(b, o + 12));
    o += 16;
  }
  return { id: readU16(b, 0), flags: readU16(b, 2), rcode: b[3] & 0xf, qd: readU16(b, 4), an, addresses };
}

function ask(guest: TestGuest, q: Uint8Array): DecodedFrame[] {
  guest.sendUdp(ip('10.0.2.3'), 33000, 53, q);
  return guest.take();
}

describe('DNS forwarder', () => {
  it('answers a name in the table with an A record, from 10.0.2.3:53, any case', () => {
    const { guest } = makeNet({ hosts: { 'files.test': '10.0.2.2' } });
    guest.ip = ip('10.0.2.15');
    const [f] = ask(guest, query(0xbeef, 'Files.TEST'));
    expect(f.ip!.src).toBe(ip('10.0.2.3'));
    expect(f.udp!.srcPort).toBe(53);
    expect(f.udp!.dstPort).toBe(33000);
    const a = answer(f);
    expect(a.id).toBe(0xbeef);
    expect(a.flags & 0x8000).toBe(0x8000); // QR
    expect(a.flags & 0x0100).toBe(0x0100); // RD echoed
    expect(a.rcode).toBe(RCODE_NOERROR);
    expect(a.qd).toBe(1);
    expect(a.addresses).toEqual([ip('10.0.2.2')]);
  });

  it('answers AAAA with NOERROR and no records', () => {
    const { guest } = makeNet({ hosts: { 'files.test': '10.0.2.2' } });
    guest.ip = ip('10.0.2.15');
    const a = answer(ask(guest, query(2, 'files.test', QTYPE_AAAA))[0]);
    expect(a.rcode).toBe(RCODE_NOERROR);
    expect(a.an).toBe(0);
  });

  it('restricted: names outside the table are NXDOMAIN, and the host resolver is never asked', () => {
    const host = new TestHost();
    host.names.set('example.com', ['93.184.216.34']);
    const { net, guest } = makeNet({ restrict: true }, host);
    guest.ip = ip('10.0.2.15');
    const a = answer(ask(guest, query(3, 'example.com'))[0]);
    expect(a.rcode).toBe(RCODE_NXDOMAIN);
    expect(a.an).toBe(0);
    expect(net.stats.dns.nxdomain).toBe(1);
    expect(net.stats.dns.forwarded).toBe(0);
  });

  it('not restricted: asks the host resolver, NXDOMAIN for unknown names', async () => {
    const host = new TestHost();
    host.names.set('example.com', ['93.184.216.34', '93.184.216.35']);
    const { guest } = makeNet({ restrict: false }, host);
    guest.ip = ip('10.0.2.15');
    expect(ask(guest, query(4, 'example.com'))).toEqual([]); // the answer comes later
    await Promise.resolve();
    await Promise.resolve();
    const a = answer(guest.take()[0]);
    expect(a.id).toBe(4);
    expect(a.addresses).toEqual([ip('93.184.216.34'), ip('93.184.216.35')]);
    ask(guest, query(5, 'nothing.invalid'));
    await new Promise((r) => setTimeout(r, 0));
    expect(answer(guest.take()[0]).rcode).toBe(RCODE_NXDOMAIN);
  });

  it('answers SERVFAIL when the host resolver fails for another reason', async () => {
    const host = new TestHost();
    host.resolve4 = async () => {
      throw Object.assign(new Error('queryA ECONNREFUSED'), { code: 'ECONNREFUSED' });
    };
    const { guest } = makeNet({ restrict: false }, host);
    guest.ip = ip('10.0.2.15');
    ask(guest, query(6, 'example.com'));
    await new Promise((r) => setTimeout(r, 0));
    expect(answer(guest.take()[0]).rcode).toBe(RCODE_SERVFAIL);
  });

  it('answers FORMERR to a malformed question and drops what has no header, counted', () => {
    const { net, guest } = makeNet({ hosts: { 'files.test': '10.0.2.2' } });
    guest.ip = ip('10.0.2.15');
    const q = query(7, 'files.test');
    const truncated = q.slice(0, q.length - 3);
    const a = answer(ask(guest, truncated)[0]);
    expect(a.id).toBe(7);
    expect(a.rcode).toBe(RCODE_FORMERR);
    const twoQuestions = q.slice();
    writeU16(twoQuestions, 4, 2);
    expect(answer(ask(guest, twoQuestions)[0]).rcode).toBe(RCODE_FORMERR);
    const pointer = q.slice();
    pointer[12] = 0xc0;
    expect(answer(ask(guest, pointer)[0]).rcode).toBe(RCODE_FORMERR);
    expect(ask(guest, Uint8Array.of(1, 2, 3))).toEqual([]);
    const response = q.slice();
    response[2] |= 0x80;
    expect(ask(guest, response)).toEqual([]);
    expect(net.stats.dns.formerr).toBe(3);
    expect(net.stats.dns.dropped).toBe(2);
  });

  it('parses a query into name, type and class', () => {
    const q = parseDnsQuery(query(9, 'a.b.example'));
    expect('error' in q).toBe(false);
    if (!('error' in q)) expect(q.question).toEqual({ name: 'a.b.example', qtype: 1, qclass: 1 });
  });
});
