import { describe, expect, it } from 'vitest';
import { ipFromString, readU16 } from './ipv4.ts';
import { makeNet, type TestGuest } from './test-guest.ts';
import {
  DEFAULT_TIMEOUT_NS, encodeTftpAck, encodeTftpRequest, RETRIES, TFTP_DATA, TFTP_ERR_ACCESS, TFTP_ERR_NOT_FOUND, TFTP_ERR_UNKNOWN_TID, TFTP_ERROR,
  TFTP_OACK, TFTP_RRQ, TFTP_WRQ, type TftpFiles,
} from './tftp.ts';

const ip = (s: string) => ipFromString(s)!;
const ROUTER = ip('10.0.2.2');

function filesOf(entries: Record<string, Uint8Array>): TftpFiles & { asked: string[] } {
  const asked: string[] = [];
  return { asked, read: (p) => (asked.push(p), entries[p] ?? null) };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function pattern(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 9)) & 0xff;
  return b;
}

function oackOptions(p: Uint8Array): Record<string, string> {
  const parts = String.fromCharCode(...p.subarray(2)).split('\0');
  const o: Record<string, string> = {};
  for (let i = 0; i + 1 < parts.length; i += 2) o[parts[i]] = parts[i + 1];
  return o;
}

/** Run a whole read as a client does: ACK every block until a short one; returns the bytes and the blocks' wire numbers. */
function download(guest: TestGuest, clientPort: number, serverPort: number, first: Uint8Array, blksize: number): { data: Uint8Array; wire: number[] } {
  const chunks: Uint8Array[] = [];
  const wire: number[] = [];
  let p = first;
  for (;;) {
    expect(readU16(p, 0)).toBe(TFTP_DATA);
    const block = readU16(p, 2);
    wire.push(block);
    chunks.push(p.slice(4));
    guest.sendUdp(ROUTER, clientPort, serverPort, encodeTftpAck(block));
    if (p.length - 4 < blksize) break;
    const [f] = guest.take();
    p = f.udp!.payload;
  }
  expect(guest.take()).toEqual([]);
  const n = chunks.reduce((a, c) => a + c.length, 0);
  const data = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    data.set(c, o);
    o += c.length;
  }
  return { data, wire };
}

describe('TFTP', () => {
  it('serves a read with blksize and tsize as iPXE asks: OACK, ACK 0, DATA blocks, done', () => {
    const file = pattern(5000);
    const files = filesOf({ 'boot/kernel': file });
    const { net, guest } = makeNet({ tftp: files });
    guest.ip = ip('10.0.2.15');
    guest.sendUdp(ROUTER, 2000, 69, encodeTftpRequest(TFTP_RRQ, '/boot/kernel', 'octet', { blksize: 1432, tsize: 0 }));
    expect(files.asked).toEqual(['boot/kernel']);
    const [oack] = guest.take();
    expect(oack.ip!.src).toBe(ROUTER);
    expect(oack.udp!.dstPort).toBe(2000);
    const tid = oack.udp!.srcPort;
    expect(tid).not.toBe(69);
    expect(readU16(oack.udp!.payload, 0)).toBe(TFTP_OACK);
    expect(oackOptions(oack.udp!.payload)).toEqual({ blksize: '1432', tsize: '5000' });
    guest.sendUdp(ROUTER, 2000, tid, encodeTftpAck(0));
    const [d1] = guest.take();
    const { data, wire } = download(guest, 2000, tid, d1.udp!.payload, 1432);
    expect(wire).toEqual([1, 2, 3, 4]);
    expect(sameBytes(data, file)).toBe(true);
    expect(net.stats.tftp.completed).toBe(1);
    expect(net.describe().tftp).toEqual([]);
  });

  it('without options sends DATA 1 at once in 512-byte blocks; an exact multiple ends with an empty block', () => {
    const file = pattern(1024);
    const { guest } = makeNet({ tftp: filesOf({ f: file }) });
    guest.ip = ip('10.0.2.15');
    guest.sendUdp(ROUTER, 2001, 69, encodeTftpRequest(TFTP_RRQ, 'f', 'octet'));
    const [d1] = guest.take();
    const { data, wire } = download(guest, 2001, d1.udp!.srcPort, d1.udp!.payload, 512);
    expect(wire).toEqual([1, 2, 3]);
    expect(sameBytes(data, file)).toBe(true);
  });

  it('caps blksize at what fits the MTU', () => {
    const { guest } = makeNet({ tftp: filesOf({ f: pattern(10) }) });
    guest.ip = ip('10.0.2.15');
    guest.sendUdp(ROUTER, 2002, 69, encodeTftpRequest(TFTP_RRQ, 'f', 'octet', { blksize: 65464 }));
    expect(oackOptions(guest.take()[0].udp!.payload)).toEqual({ blksize: '1468' });
  });

  it('answers error 1 for a missing file and error 2 for a write request', () => {
    const { net, guest } = makeNet({ tftp: filesOf({}) });
    guest.ip = ip('10.0.2.15');
    guest.sendUdp(ROUTER, 2003, 69, encodeTftpRequest(TFTP_RRQ, 'nope', 'octet'));
    const [e1] = guest.take();
    expect(readU16(e1.udp!.payload, 0)).toBe(TFTP_ERROR);
    expect(readU16(e1.udp!.payload, 2)).toBe(TFTP_ERR_NOT_FOUND);
    guest.sendUdp(ROUTER, 2003, 69, encodeTftpRequest(TFTP_WRQ, 'x', 'octet'));
    const [e2] = guest.take();
    expect(readU16(e2.udp!.payload, 2)).toBe(TFTP_ERR_ACCESS);
    expect(net.stats.tftp.notFound).toBe(1);
    expect(net.stats.tftp.writeRefused).toBe(1);
  });

  it('retransmits an unacknowledged block on the clock, ignores duplicate ACKs, and gives up after its retries', () => {
    const { clock, net, guest } = makeNet({ tftp: filesOf({ f: pattern(2000) }) });
    guest.ip = ip('10.0.2.15');
    guest.sendUdp(ROUTER, 2004, 69, encodeTftpRequest(TFTP_RRQ, 'f', 'octet'));
    const [d1] = guest.take();
    const tid = d1.udp!.srcPort;
    guest.sendUdp(ROUTER, 2004, tid, encodeTftpAck(1));
    const [d2] = guest.take();
    expect(readU16(d2.udp!.payload, 2)).toBe(2);
    // A duplicate ACK 1 (the Sorcerer's Apprentice): nothing resent.
    guest.sendUdp(ROUTER, 2004, tid, encodeTftpAck(1));
    expect(guest.take()).toEqual([]);
    clock.advanceTo(DEFAULT_TIMEOUT_NS);
    const [again] = guest.take();
    expect([...again.udp!.payload]).toEqual([...d2.udp!.payload]);
    // A stranger's packet to the transfer's port gets error 5; the transfer goes on.
    guest.sendUdp(ROUTER, 2999, tid, encodeTftpAck(2));
    const [stranger] = guest.take();
    expect(readU16(stranger.udp!.payload, 2)).toBe(TFTP_ERR_UNKNOWN_TID);
    expect(stranger.udp!.dstPort).toBe(2999);
    clock.advanceTo(DEFAULT_TIMEOUT_NS * (RETRIES + 2));
    expect(guest.take().length).toBe(RETRIES - 1);
    expect(net.stats.tftp.timeouts).toBe(1);
    expect(net.describe().tftp).toEqual([]);
    // The port is closed now: ICMP port unreachable.
    guest.sendUdp(ROUTER, 2004, tid, encodeTftpAck(2));
    expect(guest.take()[0].icmp).toMatchObject({ type: 3, code: 3 });
  });

  it('wraps the block number past 65535 on a large file with 512-byte blocks', () => {
    const size = 65537 * 512 + 100;
    const file = pattern(size);
    const { guest } = makeNet({ tftp: filesOf({ big: file }) });
    guest.ip = ip('10.0.2.15');
    guest.sendUdp(ROUTER, 2005, 69, encodeTftpRequest(TFTP_RRQ, 'big', 'octet', { tsize: 0 }));
    const [oack] = guest.take();
    expect(oackOptions(oack.udp!.payload)).toEqual({ tsize: String(size) });
    const tid = oack.udp!.srcPort;
    guest.sendUdp(ROUTER, 2005, tid, encodeTftpAck(0));
    const { data, wire } = download(guest, 2005, tid, guest.take()[0].udp!.payload, 512);
    expect(wire.length).toBe(65538);
    expect(wire.slice(65533, 65538)).toEqual([65534, 65535, 0, 1, 2]);
    expect(data.length).toBe(size);
    expect(sameBytes(data, file)).toBe(true);
  });

  it('ignores what is not TFTP, counted, and never throws', () => {
    const { net, guest } = makeNet({ tftp: filesOf({ f: pattern(1) }) });
    guest.ip = ip('10.0.2.15');
    guest.sendUdp(ROUTER, 2006, 69, Uint8Array.of(0));
    guest.sendUdp(ROUTER, 2006, 69, Uint8Array.of(0, 1, 0x66)); // name not terminated
    guest.sendUdp(ROUTER, 2006, 69, Uint8Array.of(0, 1, 0x66, 0, 0x6d, 0x61, 0x69, 0x6c, 0)); // mode "mail"
    const replies = guest.take();
    expect(replies.length).toBe(2);
    expect(replies.every((r) => readU16(r.udp!.payload, 0) === TFTP_ERROR)).toBe(true);
    expect(net.stats.tftp.malformed).toBe(2);
  });
});
