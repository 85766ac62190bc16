/**
 * IPv4 (RFC 791): header parse and build, addresses as unsigned 32-bit numbers
 * (10.0.2.2 = 0x0a000202), which is what checksum.ts's pseudo-header takes.
 *
 * The router is one hop (QEMU's slirp is too): it never forwards a packet as it is,
 * it terminates every flow, so TTL is not decremented on relay; packets the router
 * originates carry DEFAULT_TTL. Fragments are dropped and counted rather than
 * reassembled: every guest this project boots sends with DF and an MTU of 1500, and a
 * reassembly buffer is a memory sink a guest could fill (RFC 791 §3.2 "Fragmentation").
 */
import { internetChecksum } from './checksum.ts';

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export const IPV4_HEADER = 20;
/** RFC 1700's recommended default TTL. */
export const DEFAULT_TTL = 64;
export const IPV4_BROADCAST = 0xffffffff;

/** Flags field (RFC 791 §3.1): bit 1 DF, bit 2 MF, above the 13-bit fragment offset. */
const FLAG_DF = 0x4000;
const FLAG_MF = 0x2000;
const OFFSET_MASK = 0x1fff;

export interface Ipv4Packet {
  /** Type of service byte (DSCP/ECN). */
  tos: number;
  id: number;
  dontFragment: boolean;
  ttl: number;
  protocol: number;
  src: number;
  dst: number;
  /** Options and header, IHL * 4 bytes. */
  headerLength: number;
  /** The datagram's payload, `totalLength - headerLength` bytes (link padding removed). */
  payload: Uint8Array;
  /** The whole datagram, header included, as it arrived (for ICMP errors that quote it). */
  datagram: Uint8Array;
}

/** Why a datagram was dropped; `stats.drops` counts these names. */
export type Ipv4DropReason = 'ip-short' | 'ip-version' | 'ip-header-length' | 'ip-total-length' | 'ip-checksum' | 'ip-fragment';

export function ipFromString(text: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text.trim());
  if (!m) return null;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const b = Number(m[i]);
    if (b > 255) return null;
    v = v * 256 + b;
  }
  return v >>> 0;
}

export function ipToString(ip: number): string {
  return `${(ip >>> 24) & 0xff}.${(ip >>> 16) & 0xff}.${(ip >>> 8) & 0xff}.${ip & 0xff}`;
}

/** "10.0.2.0/24" -> network address and mask; null when malformed. */
export function parseCidr(text: string): { network: number; mask: number; prefix: number } | null {
  const [addr, len] = text.trim().split('/');
  const ip = ipFromString(addr ?? '');
  const prefix = len === undefined ? 24 : Number(len);
  if (ip === null || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) return null;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { network: (ip & mask) >>> 0, mask, prefix };
}

export function readU32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

export function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

export function readU16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

export function writeU16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}

/**
 * Parse an IPv4 datagram (the Ethernet payload, which may carry link padding after it).
 * Returns the drop reason instead when the header is unusable.
 */
export function parseIpv4(bytes: Uint8Array): Ipv4Packet | Ipv4DropReason {
  if (bytes.length < IPV4_HEADER) return 'ip-short';
  if (bytes[0] >> 4 !== 4) return 'ip-version';
  const headerLength = (bytes[0] & 0x0f) * 4;
  if (headerLength < IPV4_HEADER || headerLength > bytes.length) return 'ip-header-length';
  const totalLength = readU16(bytes, 2);
  if (totalLength < headerLength || totalLength > bytes.length) return 'ip-total-length';
  if (internetChecksum(bytes, 0, headerLength) !== 0) return 'ip-checksum';
  const fragment = readU16(bytes, 6);
  if ((fragment & FLAG_MF) !== 0 || (fragment & OFFSET_MASK) !== 0) return 'ip-fragment';
  const datagram = bytes.subarray(0, totalLength);
  return {
    tos: bytes[1],
    id: readU16(bytes, 4),
    dontFragment: (fragment & FLAG_DF) !== 0,
    ttl: bytes[8],
    protocol: bytes[9],
    src: readU32(bytes, 12),
    dst: readU32(bytes, 16),
    headerLength,
    payload: datagram.subarray(headerLength),
    datagram,
  };
}

export interface Ipv4Build {
  src: number;
  dst: number;
  protocol: number;
  payload: Uint8Array;
  id?: number;
  ttl?: number;
  tos?: number;
  /** DF set by default: the router's segments fit the MTU and path MTU discovery wants it. */
  dontFragment?: boolean;
}

/** Build a datagram with a 20-byte header (no options) and its header checksum. */
export function encodeIpv4(p: Ipv4Build): Uint8Array {
  const total = IPV4_HEADER + p.payload.length;
  const out = new Uint8Array(total);
  out[0] = 0x45;
  out[1] = p.tos ?? 0;
  writeU16(out, 2, total);
  writeU16(out, 4, p.id ?? 0);
  writeU16(out, 6, p.dontFragment === false ? 0 : FLAG_DF);
  out[8] = p.ttl ?? DEFAULT_TTL;
  out[9] = p.protocol;
  writeU32(out, 12, p.src);
  writeU32(out, 16, p.dst);
  writeU16(out, 10, internetChecksum(out, 0, IPV4_HEADER));
  out.set(p.payload, IPV4_HEADER);
  return out;
}
