/**
 * ICMP (RFC 792) as the router speaks it: echo replies for its own addresses, and the
 * destination-unreachable errors that tell a guest the truth (port unreachable for a
 * router port nobody serves, host unreachable where the host cannot send ICMP,
 * administratively prohibited under restrict=on: RFC 1812 §5.2.7.1, code 13).
 */
import { internetChecksum } from './checksum.ts';
import { readU16, writeU16 } from './ipv4.ts';

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_ECHO_REQUEST = 8;

/** Destination-unreachable codes (RFC 792, RFC 1812 §5.2.7.1). */
export const ICMP_NET_UNREACHABLE = 0;
export const ICMP_HOST_UNREACHABLE = 1;
export const ICMP_PROTOCOL_UNREACHABLE = 2;
export const ICMP_PORT_UNREACHABLE = 3;
export const ICMP_ADMIN_PROHIBITED = 13;

export interface IcmpMessage {
  type: number;
  code: number;
  /** The 4 bytes after the checksum (identifier and sequence for echo). */
  rest: number;
  data: Uint8Array;
}

/** Parse an ICMP message (an IPv4 payload); null when short or its checksum is wrong. */
export function parseIcmp(b: Uint8Array): IcmpMessage | null {
  if (b.length < 8) return null;
  if (internetChecksum(b) !== 0) return null;
  return { type: b[0], code: b[1], rest: ((readU16(b, 4) << 16) | readU16(b, 6)) >>> 0, data: b.subarray(8) };
}

export function encodeIcmp(m: IcmpMessage): Uint8Array {
  const b = new Uint8Array(8 + m.data.length);
  b[0] = m.type;
  b[1] = m.code;
  writeU16(b, 4, m.rest >>> 16);
  writeU16(b, 6, m.rest & 0xffff);
  b.set(m.data, 8);
  writeU16(b, 2, internetChecksum(b));
  return b;
}

/** The echo reply to an echo request: same identifier, sequence and data (RFC 792 "Echo"). */
export function echoReply(request: IcmpMessage): Uint8Array {
  return encodeIcmp({ type: ICMP_ECHO_REPLY, code: 0, rest: request.rest, data: request.data });
}

/**
 * Destination unreachable quoting the offending datagram's header and first 8 bytes of
 * its data (RFC 792; RFC 1812 §4.3.2.3 allows more, 8 is what every stack reads).
 */
export function destinationUnreachable(code: number, datagram: Uint8Array): Uint8Array {
  const headerLength = (datagram[0] & 0x0f) * 4;
  const quote = datagram.subarray(0, Math.min(datagram.length, headerLength + 8));
  return encodeIcmp({ type: ICMP_DEST_UNREACHABLE, code, rest: 0, data: quote });
}

/** Errors are never sent about ICMP errors (RFC 1122 §3.2.2): only about queries. */
export function isIcmpError(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}
