/**
 * UDP (RFC 768): datagram parse and build with the IPv4 pseudo-header checksum.
 */
import { internetChecksum, pseudoHeaderSum } from './checksum.ts';
import { IPPROTO_UDP, readU16, writeU16 } from './ipv4.ts';

export const UDP_HEADER = 8;

export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

export type UdpDropReason = 'udp-short' | 'udp-length' | 'udp-checksum';

/**
 * Parse a UDP datagram (an IPv4 payload). A zero checksum means the sender did not
 * compute one (RFC 768 "Checksum"), which IPv4 allows.
 */
export function parseUdp(b: Uint8Array, srcIp: number, dstIp: number): UdpDatagram | UdpDropReason {
  if (b.length < UDP_HEADER) return 'udp-short';
  const length = readU16(b, 4);
  if (length < UDP_HEADER || length > b.length) return 'udp-length';
  if (readU16(b, 6) !== 0 && internetChecksum(b, 0, length, pseudoHeaderSum(srcIp, dstIp, IPPROTO_UDP, length)) !== 0) {
    return 'udp-checksum';
  }
  return { srcPort: readU16(b, 0), dstPort: readU16(b, 2), payload: b.subarray(UDP_HEADER, length) };
}

export function encodeUdp(d: UdpDatagram, srcIp: number, dstIp: number): Uint8Array {
  const length = UDP_HEADER + d.payload.length;
  const b = new Uint8Array(length);
  writeU16(b, 0, d.srcPort);
  writeU16(b, 2, d.dstPort);
  writeU16(b, 4, length);
  b.set(d.payload, UDP_HEADER);
  let sum = internetChecksum(b, 0, length, pseudoHeaderSum(srcIp, dstIp, IPPROTO_UDP, length));
  // A computed zero is sent as all ones: zero means "no checksum" (RFC 768).
  if (sum === 0) sum = 0xffff;
  writeU16(b, 6, sum);
  return b;
}
