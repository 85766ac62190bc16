/**
 * TCP segments on the wire (RFC 793 §3.1, RFC 9293 §3.1): the header, the options this
 * stack reads and writes (MSS, RFC 793/879; window scale, RFC 7323 §2; SACK-permitted,
 * RFC 2018 §2), and the checksum over the IPv4 pseudo-header. `bytes` is the IPv4 payload:
 * the TCP header followed by the data.
 */
import { internetChecksum, pseudoHeaderSum } from './checksum.ts';

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;

export const IPPROTO_TCP = 6;
/** Fixed part of the header: 5 32-bit words. */
export const TCP_HEADER_MIN = 20;

/** Option kinds (IANA "TCP Option Kind Numbers"). */
const OPT_EOL = 0;
const OPT_NOP = 1;
const OPT_MSS = 2;
const OPT_WSCALE = 3;
const OPT_SACK_PERMITTED = 4;

export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  /** Unsigned 32-bit. */
  seq: number;
  /** Unsigned 32-bit; meaningful when TCP_ACK is set. */
  ack: number;
  /** The six classic control bits (URG ACK PSH RST SYN FIN); ECN bits are not kept. */
  flags: number;
  /** Raw 16-bit window field (unscaled). */
  window: number;
  /** Options seen (parse) or to send (encode). */
  mss?: number;
  wscale?: number;
  sackPermitted?: boolean;
  payload: Uint8Array;
}

/**
 * Parse the TCP header and payload of an IPv4 packet (addresses as unsigned 32-bit
 * numbers, for the pseudo-header). Returns null, never throws, when the segment is
 * shorter than its header, its data offset is below 5 words or beyond the packet, an
 * option runs past the header or has an impossible length, or the checksum fails.
 * The payload is a view into `bytes`.
 */
export function parseTcpSegment(bytes: Uint8Array, srcIp: number, dstIp: number): TcpSegment | null {
  const len = bytes.length;
  if (len < TCP_HEADER_MIN) return null;
  const dataOffset = (bytes[12]! >> 4) * 4;
  if (dataOffset < TCP_HEADER_MIN || dataOffset > len) return null;
  if (internetChecksum(bytes, 0, len, pseudoHeaderSum(srcIp, dstIp, IPPROTO_TCP, len)) !== 0) return null;

  const seg: TcpSegment = {
    srcPort: (bytes[0]! << 8) | bytes[1]!,
    dstPort: (bytes[2]! << 8) | bytes[3]!,
    seq: readU32(bytes, 4),
    ack: readU32(bytes, 8),
    flags: bytes[13]! & 0x3f,
    window: (bytes[14]! << 8) | bytes[15]!,
    payload: bytes.subarray(dataOffset),
  };

  // Options (RFC 793 §3.1 "Options"; RFC 9293 §3.1): kinds 0 and 1 are a single byte,
  // every other kind carries a length byte that counts the kind and length bytes too.
  let i = TCP_HEADER_MIN;
  while (i < dataOffset) {
    const kind = bytes[i]!;
    if (kind === OPT_EOL) break;
    if (kind === OPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= dataOffset) return null; // no room for the length byte
    const optLen = bytes[i + 1]!;
    if (optLen < 2 || i + optLen > dataOffset) return null;
    switch (kind) {
      case OPT_MSS:
        if (optLen !== 4) return null;
        seg.mss = (bytes[i + 2]! << 8) | bytes[i + 3]!;
        break;
      case OPT_WSCALE:
        if (optLen !== 3) return null;
        seg.wscale = bytes[i + 2]!;
        break;
      case OPT_SACK_PERMITTED:
        if (optLen !== 2) return null;
        seg.sackPermitted = true;
        break;
      default:
        // Timestamps, SACK blocks and anything else: skipped (RFC 9293 §3.1 says an
        // implementation must ignore options it does not implement).
        break;
    }
    i += optLen;
  }
  return seg;
}

/**
 * Encode a segment with its options (MSS, window scale, SACK-permitted as present) and
 * the checksum over the IPv4 pseudo-header. Returns the IPv4 payload.
 */
export function encodeTcpSegment(seg: TcpSegment, srcIp: number, dstIp: number): Uint8Array {
  let optBytes = 0;
  if (seg.mss !== undefined) optBytes += 4;
  if (seg.wscale !== undefined) optBytes += 4; // NOP + 3-byte option keeps 32-bit alignment (RFC 7323 §2.2)
  if (seg.sackPermitted) optBytes += 4; // NOP NOP + 2-byte option
  const headerLen = TCP_HEADER_MIN + optBytes;
  const out = new Uint8Array(headerLen + seg.payload.length);
  out[0] = (seg.srcPort >> 8) & 0xff;
  out[1] = seg.srcPort & 0xff;
  out[2] = (seg.dstPort >> 8) & 0xff;
  out[3] = seg.dstPort & 0xff;
  writeU32(out, 4, seg.seq);
  writeU32(out, 8, seg.ack);
  out[12] = (headerLen / 4) << 4;
  out[13] = seg.flags & 0x3f;
  out[14] = (seg.window >> 8) & 0xff;
  out[15] = seg.window & 0xff;
  let i = TCP_HEADER_MIN;
  if (seg.mss !== undefined) {
    out[i++] = OPT_MSS;
    out[i++] = 4;
    out[i++] = (seg.mss >> 8) & 0xff;
    out[i++] = seg.mss & 0xff;
  }
  if (seg.wscale !== undefined) {
    out[i++] = OPT_NOP;
    out[i++] = OPT_WSCALE;
    out[i++] = 3;
    out[i++] = seg.wscale & 0xff;
  }
  if (seg.sackPermitted) {
    out[i++] = OPT_NOP;
    out[i++] = OPT_NOP;
    out[i++] = OPT_SACK_PERMITTED;
    out[i] = 2;
  }
  out.set(seg.payload, headerLen);
  const sum = internetChecksum(out, 0, out.length, pseudoHeaderSum(srcIp, dstIp, IPPROTO_TCP, out.length));
  out[16] = sum >> 8;
  out[17] = sum & 0xff;
  return out;
}

function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}
