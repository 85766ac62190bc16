/**
 * The extended-precision functions behind the x87's transcendental instructions, against
 * values known independently: ln 2's leading bits (the FLDLN2 constant of SDM vol.1 §8.3.8
 * is the same number), the x87's FSIN of the double nearest pi (reduced with its 66-bit pi,
 * it famously answers 1.2246063538223773e-16 where the true sine is 1.2246467991473532e-16),
 * and values known to many digits.
 */
import { describe, expect, it } from 'vitest';
import { atan2, exp2m1, fromParts, ln2, sinCos, ylog2x, ylog2xp1, type Big } from './transcendental.ts';
import { roundTo80, RC_NEAREST, toNumber } from './float80.ts';

/** A Big rounded to the nearest double (through the extended format). */
function toDouble(b: Big): number {
  const sign = b.m < 0n ? 1 : 0;
  return toNumber(roundTo80(sign, sign ? -b.m : b.m, b.e, true, 53, RC_NEAREST).value);
}

/** A double as sign, significand and exponent. */
function parts(x: number): [number, bigint, number] {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const e = Number((bits >> 52n) & 0x7ffn);
  return [x < 0 ? 1 : 0, (bits & ((1n << 52n) - 1n)) | (1n << 52n), e - 1075];
}

const big = (x: number): Big => fromParts(...parts(x));

describe('x87 transcendental functions', () => {
  it('computes ln 2 to the bits of the x87 constant', () => {
    const l = ln2();
    const top128 = l.m >> BigInt(l.m.toString(2).length - 128);
    expect(top128.toString(16)).toBe('b17217f7d1cf79abc9e3b39803f2f6af');
  });

  it("reduces by the x87's 66-bit pi: FSIN of the double nearest pi", () => {
    expect(toDouble(sinCos(...parts(Math.PI)).sin)).toBe(1.2246063538223773e-16);
    expect(toDouble(sinCos(...parts(Math.PI)).cos)).toBe(-1);
    expect(toDouble(sinCos(...parts(0.5)).sin)).toBe(Math.sin(0.5));
  });

  it('gives the nearest double of values known to many digits', () => {
    // atan2(1, 1) = pi/4; 2^0.5 - 1 = 0.41421356237309504880...; 2^x - 1 = -6.93147180559945367...e-31 for x the double nearest -1e-30;
    // log2 8 = 3; log2 1.25 = 0.32192809488736234787...; log2 10 = 3.32192809488736234787...
    expect(toDouble(atan2(big(1), big(1))) * 4).toBe(Math.PI);
    expect(toDouble(exp2m1(big(0.5)))).toBe(0.41421356237309503);
    expect(toDouble(exp2m1(big(-1e-30)))).toBe(-6.9314718055994535e-31);
    expect(toDouble(ylog2x(big(1), big(8)))).toBe(3);
    expect(toDouble(ylog2xp1(big(1), big(0.25)))).toBe(0.32192809488736235);
    expect(toDouble(ylog2x(big(1), big(10)))).toBe(3.321928094887362);
  });
});
