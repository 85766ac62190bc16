import { describe, expect, it } from 'vitest';
import { internetChecksum, pseudoHeaderSum } from './checksum.ts';

describe('internetChecksum (RFC 1071)', () => {
  it('computes the RFC 1071 §3 worked example', () => {
    // The example's words sum to 0xddf2 after the end-around carry; the field is its complement.
    const bytes = Uint8Array.of(0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7);
    expect(internetChecksum(bytes)).toBe(~0xddf2 & 0xffff);
  });

  it('gives a known IPv4 header checksum and verifies to zero with it in place', () => {
    const hdr = Uint8Array.of(
      0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
      0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
    );
    expect(internetChecksum(hdr)).toBe(0xb861);
    hdr[10] = 0xb8;
    hdr[11] = 0x61;
    expect(internetChecksum(hdr)).toBe(0);
  });

  it('pads an odd trailing byte with zero and honours start/end', () => {
    const bytes = Uint8Array.of(0xff, 0x12, 0x34, 0x56, 0xff);
    expect(internetChecksum(bytes, 1, 4)).toBe(~(0x1234 + 0x5600) & 0xffff);
    expect(internetChecksum(Uint8Array.of(0xab))).toBe(~0xab00 & 0xffff);
    expect(internetChecksum(new Uint8Array(0))).toBe(0xffff);
  });

  it('folds carries over a large buffer', () => {
    const big = new Uint8Array(200_000).fill(0xff);
    // Every word is 0xffff (negative zero); the one's-complement sum is 0xffff, complement 0.
    expect(internetChecksum(big)).toBe(0);
    big.fill(0x01);
    // 100000 words of 0x0101: 0x0101 * 100000 = 25_700_000 = 0x018826a0 -> 0x26a0 + 0x0188 = 0x2828.
    expect(internetChecksum(big)).toBe(~0x2828 & 0xffff);
  });

  it('adds the IPv4 pseudo-header', () => {
    const src = 0x0a000202; // 10.0.2.2
    const dst = 0x0a00020f; // 10.0.2.15
    const sum = pseudoHeaderSum(src, dst, 6, 20);
    expect(sum).toBe(0x0a00 + 0x0202 + 0x0a00 + 0x020f + 6 + 20);
    const zeros = new Uint8Array(20);
    expect(internetChecksum(zeros, 0, 20, sum)).toBe(~(sum % 0xffff) & 0xffff);
    // High addresses are treated as unsigned.
    expect(pseudoHeaderSum(0xffffffff, 0, 17, 8)).toBe(0xffff + 0xffff + 17 + 8);
  });
});
