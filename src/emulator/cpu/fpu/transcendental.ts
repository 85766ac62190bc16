/**
 * The x87's transcendental functions in extended precision: FSIN, FCOS, FSINCOS, FPTAN,
 * FPATAN, F2XM1, FYL2X and FYL2XP1 on finite, nonzero operands (the unit handles zeros,
 * infinities and NaNs from the SDM's tables first).
 *
 * Each result is computed with WORK bits of precision in binary floating point on BigInt
 * significands (`Big`), then rounded once to 64 bits under the rounding control by the
 * caller (float80.roundTo80). The precision control does not apply to these instructions
 * (SDM vol.1 §8.1.5.2 lists the ones it does). A real x87 is not correctly rounded either,
 * but it is within one unit in the last place (SDM vol.1 §8.3.10); rounding a result that
 * is right to about 190 bits gives the nearest extended number, which a program that prints
 * sin(x) to 17 digits, or a test comparing with hardware, expects.
 *
 * FSIN, FCOS, FSINCOS and FPTAN reduce their argument by multiples of pi/2 with the x87's
 * own pi, rounded to 66 bits (SDM vol.1 §8.3.10: the reduction is exact with respect to that
 * constant), so large arguments drift from the true sine as they do on the hardware.
 *
 * Measured against an Intel Xeon's x87 (fpu/testdata/x87-vectors.json): 435 of 460 results
 * agree bit for bit, the rest by one unit in the last place (mostly under directed rounding).
 */

/** Working precision in bits: comfortably above the 64 of the result. */
const WORK = 192;

/** A binary floating-point value m * 2^e; m is signed, normalised to WORK bits (or 0n). */
export interface Big {
  m: bigint;
  e: number;
}

function bitLength(x: bigint): number {
  if (x === 0n) return 0;
  const hex = (x < 0n ? -x : x).toString(16);
  return (hex.length - 1) * 4 + 32 - Math.clz32(parseInt(hex[0]!, 16));
}

/** A double near a (for choosing an integer part, never for a result). */
function approx(a: Big): number {
  const n = bitLength(a.m);
  const shift = Math.max(0, n - 60);
  return Number(a.m >> BigInt(shift)) * 2 ** (a.e + shift);
}

function big(m: bigint, e: number): Big {
  if (m === 0n) return { m: 0n, e: 0 };
  const n = bitLength(m);
  if (n > WORK) return { m: m >> BigInt(n - WORK), e: e + n - WORK };
  return { m: m << BigInt(WORK - n), e: e - (WORK - n) };
}

const int = (k: number | bigint): Big => big(BigInt(k), 0);

function neg(a: Big): Big {
  return { m: -a.m, e: a.e };
}

function mul(a: Big, b: Big): Big {
  return big(a.m * b.m, a.e + b.e);
}

function add(a: Big, b: Big): Big {
  if (a.m === 0n) return b;
  if (b.m === 0n) return a;
  if (a.e < b.e) [a, b] = [b, a];
  const d = a.e - b.e;
  // b is below the working precision of a: it cannot change the result we round from.
  if (d > WORK + 8) return a;
  return big((a.m << BigInt(d)) + b.m, b.e);
}

function sub(a: Big, b: Big): Big {
  return add(a, neg(b));
}

function div(a: Big, b: Big): Big {
  return big((a.m << BigInt(WORK)) / b.m, a.e - b.e - WORK);
}

function divInt(a: Big, k: number): Big {
  return big((a.m << 32n) / BigInt(k), a.e - 32);
}

/** Is |a| below 2^p? */
function below(a: Big, p: number): boolean {
  return a.m === 0n || bitLength(a.m) + a.e <= p;
}

function sqrt(a: Big): Big {
  // a > 0: take the root of a significand shifted to an even exponent and twice WORK bits.
  let m = a.m << BigInt(WORK);
  let e = a.e - WORK;
  if (e & 1) {
    m <<= 1n;
    e -= 1;
  }
  let x = 1n << BigInt(Math.ceil(bitLength(m) / 2));
  for (;;) {
    const y = (x + m / x) >> 1n;
    if (y >= x) break;
    x = y;
  }
  return big(x, e / 2);
}

/** Sum of a series whose terms shrink: term(k) for k = 0, 1, ... until below the precision. */
function series(first: Big, next: (term: Big, k: number) => Big): Big {
  let sum = first;
  let term = first;
  for (let k = 1; k < 400; k++) {
    term = next(term, k);
    if (term.m === 0n || term.e + bitLength(term.m) < sum.e + bitLength(sum.m) - WORK - 4) break;
    sum = add(sum, term);
  }
  return sum;
}

// ---------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------

/** pi to 256 fractional bits (its hexadecimal expansion, 3.243F6A88...). */
const PI = big(
  (3n << 256n) | 0x243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c89n,
  -256,
);
const PI_2 = { m: PI.m, e: PI.e - 1 };
const PI_4 = { m: PI.m, e: PI.e - 2 };

/**
 * The x87's pi for argument reduction: 66 significant bits (0xC90FDAA22168C234C, whose
 * two lowest bits are zero, over 2^66), halved: 0x...C234C * 2^-67 is pi/2.
 */
const X87_PI_2_SIG = 0xc90fdaa22168c234cn;
const X87_PI_2_EXP = -67;

/** atanh(z) = z + z^3/3 + z^5/5 + ..., for |z| well below 1. */
function atanh(z: Big): Big {
  const z2 = mul(z, z);
  let power = z;
  return series(z, (_t, k) => {
    power = mul(power, z2);
    return divInt(power, 2 * k + 1);
  });
}

let ln2Cache: Big | null = null;
/** ln 2 = 2 atanh(1/3). */
export function ln2(): Big {
  ln2Cache ??= mul(int(2), atanh(div(int(1), int(3))));
  return ln2Cache;
}

// ---------------------------------------------------------------------------------------
// The functions
// ---------------------------------------------------------------------------------------

/** The value sig * 2^exp2 with a sign, as a Big. */
export function fromParts(sign: number, sig: bigint, exp2: number): Big {
  return big(sign ? -sig : sig, exp2);
}

/**
 * `b` moved a hair toward zero (dir -1) or away from it (+1), far below the working precision:
 * for results whose leading term is exactly representable (sin x = x - x^3/6 for tiny x,
 * cos x = 1 - x^2/2, tan x = x + x^3/3, atan t = t - t^3/3) and whose next term is lost
 * below the precision, so that rounding still sees which side of that value the true
 * result lies on (the x87 does: cos 2^-67 rounded toward zero is 1 - 2^-64, and C1 says when
 * x was the rounded-up sine). Only for the final value: the result is not normalised.
 */
function nudge(b: Big, dir: -1 | 1): Big {
  const away = b.m < 0n ? -1n : 1n;
  return { m: (b.m << 8n) + BigInt(dir) * away, e: b.e - 8 };
}

/** Below this magnitude (2^TINY) a series' second term is lost at the working precision. */
const TINY = -(WORK / 2 - 4);

/** sin(r) and cos(r) by their series, for |r| <= about pi/4. */
function sinCosSmall(r: Big): { sin: Big; cos: Big } {
  const r2 = mul(r, r);
  const sin = series(r, (t, k) => neg(divInt(mul(t, r2), 2 * k * (2 * k + 1))));
  const cos = series(int(1), (t, k) => neg(divInt(mul(t, r2), (2 * k - 1) * (2 * k))));
  return { sin, cos };
}

/**
 * sin(x) and cos(x) for |x| < 2^63, x = sig * 2^exp2: x is reduced exactly by the nearest
 * multiple k of the x87's pi/2 (SDM vol.1 §8.3.10), then the quadrant k mod 4 picks the sign
 * and the function.
 */
export function sinCos(sign: number, sig: bigint, exp2: number): { sin: Big; cos: Big } {
  // x and pi/2 as integers over a common power of two: exact.
  const e = Math.min(exp2, X87_PI_2_EXP);
  const xi = (sign ? -sig : sig) << BigInt(exp2 - e);
  const pi2 = X87_PI_2_SIG << BigInt(X87_PI_2_EXP - e);
  // k = round(x / (pi/2)); ties cannot occur (pi/2 is not a rational multiple of x's grid).
  let k = (2n * xi + pi2) / (2n * pi2);
  if (2n * xi + pi2 < 0n && (2n * xi + pi2) % (2n * pi2) !== 0n) k -= 1n;
  const r = big(xi - k * pi2, e);
  let { sin, cos } = sinCosSmall(r);
  if (below(r, TINY)) {
    sin = nudge(sin, -1);
    cos = nudge(cos, -1);
  }
  switch (Number(((k % 4n) + 4n) % 4n)) {
    case 0: return { sin, cos };
    case 1: return { sin: cos, cos: neg(sin) };
    case 2: return { sin: neg(sin), cos: neg(cos) };
    default: return { sin: neg(cos), cos: sin };
  }
}

/** tan(x) = sin(x) / cos(x) with the same reduction. */
export function tan(sign: number, sig: bigint, exp2: number): Big {
  const { sin, cos } = sinCos(sign, sig, exp2);
  const t = div(big(sin.m, sin.e), big(cos.m, cos.e));
  return below(t, TINY) ? nudge(t, 1) : t;
}

/** atan(t) for 0 <= t <= 1: halve the angle three times (t / (1 + sqrt(1 + t^2))), then the series. */
function atanSmall(t: Big): Big {
  let halvings = 0;
  while (!below(t, -3) && halvings < 4) {
    t = div(t, add(int(1), sqrt(add(int(1), mul(t, t)))));
    halvings++;
  }
  const t2 = mul(t, t);
  let power = t;
  const s = series(t, (_x, k) => {
    power = neg(mul(power, t2));
    return divInt(power, 2 * k + 1);
  });
  return { m: s.m, e: s.e + halvings };
}

/** atan2(y, x) in (-pi, pi]: FPATAN's ST1 / ST0, both finite and nonzero. */
export function atan2(y: Big, x: Big): Big {
  const ay = y.m < 0n ? neg(y) : y;
  const ax = x.m < 0n ? neg(x) : x;
  // The angle of (|x|, |y|) in [0, pi/2]: atan of the smaller over the larger.
  const swap = compareMagnitude(ay, ax) > 0;
  let a = swap ? atanSmall(div(ax, ay)) : atanSmall(div(ay, ax));
  if (swap) a = sub(PI_2, a);
  if (x.m < 0n) a = sub(PI, a);
  // A tiny angle: atan t = t - t^3/3, just short of t.
  if (below(a, TINY)) a = nudge(a, -1);
  return y.m < 0n ? neg(a) : a;
}

function compareMagnitude(a: Big, b: Big): number {
  const d = sub(a, b);
  return d.m === 0n ? 0 : d.m > 0n ? 1 : -1;
}

/** ln(v) for v > 0. */
function ln(v: Big): Big {
  // v = m * 2^n with m in [sqrt(1/2), sqrt(2)): ln v = n ln 2 + 2 atanh((m - 1) / (m + 1)).
  let n = bitLength(v.m) + v.e - 1;
  let m: Big = { m: v.m, e: v.e - n };
  // sqrt(2) to well beyond the precision this comparison needs.
  if (compareMagnitude(m, { m: 0xb504f333f9de6484597d89b3754abe9fn, e: -127 }) > 0) {
    m = { m: m.m, e: m.e - 1 };
    n += 1;
  }
  const z = div(sub(m, int(1)), add(m, int(1)));
  return add(mul(int(n), ln2()), mul(int(2), atanh(z)));
}

/** y * log2(x) for x > 0 (FYL2X). */
export function ylog2x(y: Big, x: Big): Big {
  return mul(y, div(ln(x), ln2()));
}

/** y * log2(1 + x) for |x| small (FYL2XP1): ln(1 + x) = 2 atanh(x / (2 + x)), no cancellation. */
export function ylog2xp1(y: Big, x: Big): Big {
  const l = mul(int(2), atanh(div(x, add(int(2), x))));
  return mul(y, div(l, ln2()));
}

/** 2^x - 1 (F2XM1, meant for |x| <= 1): exp(x ln 2) - 1 by its series, no cancellation near 0. */
export function exp2m1(x: Big): Big {
  // Split off an integer part so the series argument stays small: 2^x = 2^n * 2^f.
  // (Beyond |x| = 2^15 every result over- or underflows the extended range anyway.)
  const n = Math.max(-40000, Math.min(40000, Math.round(approx(x))));
  const f = n === 0 ? x : sub(x, int(n));
  const t = mul(f, ln2());
  const em1 = series(t, (term, k) => divInt(mul(term, t), k + 1));
  if (n === 0) return em1;
  // 2^n * (em1 + 1) - 1
  const p = add(em1, int(1));
  return sub({ m: p.m, e: p.e + n }, int(1));
}

/** k * b, for a small integer k. */
export function times(k: number, b: Big): Big {
  return mul(int(k), b);
}

/** pi/4, for FPATAN's results on zeros and infinities (multiples of it). */
export const piQuarter = (): Big => PI_4;
