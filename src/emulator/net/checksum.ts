/**
 * The Internet checksum (RFC 1071): the 16-bit one's-complement of the one's-complement
 * sum of the data taken as big-endian 16-bit words. IPv4 headers, ICMP, UDP and TCP all
 * use it; UDP and TCP add the IPv4 pseudo-header (RFC 793 §3.1 "Checksum", RFC 768).
 */

/**
 * Sum `data[start, end)` as big-endian 16-bit words onto `initial` and fold to the final
 * checksum field value (already complemented). An odd trailing byte is padded with a zero
 * byte on the right (RFC 1071 §1, step (2)). Verifying a packet whose checksum field is
 * included gives 0 when it is intact.
 *
 * `initial` may be an unfolded 32-bit partial sum, e.g. from `pseudoHeaderSum`.
 */
export function internetChecksum(data: Uint8Array, start = 0, end = data.length, initial = 0): number {
  const stop = Math.min(Math.max(end, 0), data.length);
  let i = Math.max(start, 0);
  // Carries are folded every so often so the running sum stays an exact double-free
  // integer; deferring the fold is the "deferred carries" trick of RFC 1071 §2(C).
  let sum = foldTo16(initial >>> 0);
  let n = 0;
  for (; i + 1 < stop; i += 2) {
    sum += (data[i]! << 8) | data[i + 1]!;
    if (++n === 0x8000) {
      sum = foldTo16(sum);
      n = 0;
    }
  }
  if (i < stop) sum += data[i]! << 8;
  return ~foldTo16(sum) & 0xffff;
}

/**
 * The unfolded sum of the IPv4 pseudo-header TCP and UDP checksums cover: source address,
 * destination address, zero, protocol, and the TCP/UDP length (header + data) in bytes
 * (RFC 793 §3.1, RFC 768). Addresses are unsigned 32-bit numbers (10.0.2.2 = 0x0a000202).
 * Pass the result as `initial` to `internetChecksum`.
 */
export function pseudoHeaderSum(src: number, dst: number, protocol: number, length: number): number {
  return (
    ((src >>> 16) & 0xffff) +
    (src & 0xffff) +
    ((dst >>> 16) & 0xffff) +
    (dst & 0xffff) +
    (protocol & 0xff) +
    (length & 0xffff)
  );
}

/** Add the carries back in until the sum fits in 16 bits (end-around carry). */
function foldTo16(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}
