import { describe, expect, it } from 'vitest';
import { mul32, MUL_HIGH } from './alu.ts';

describe('mul32', () => {
  it('matches 64-bit products for signed and unsigned operands, edge cases included', () => {
    const values = [0, 1, -1, 0x7fffffff, -0x80000000, 0xffff, 0x10000, 12345678, -987654321];
    let seed = 42;
    for (let i = 0; i < 2000; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) | 0;
      values.push(seed);
    }
    for (let i = 0; i < values.length; i++) {
      const a = values[i];
      const b = values[(i * 7 + 3) % values.length];
      for (const signed of [false, true]) {
        const want = signed ? BigInt(a | 0) * BigInt(b | 0) : BigInt(a >>> 0) * BigInt(b >>> 0);
        const lo = mul32(a, b, signed);
        expect([lo, MUL_HIGH[0]]).toEqual([Number(BigInt.asIntN(32, want)), Number(BigInt.asIntN(32, want >> 32n))]);
      }
    }
  });
});
