/**
 * IEEE 754 arithmetic in the x87's double-extended format (SDM vol.1 §4.2.2, §8.1): a sign,
 * a 15-bit biased exponent and a 64-bit significand with an explicit integer bit. Every
 * operation computes the exact result (BigInt significands) and rounds it once, under the
 * control word's rounding and precision control, so results match a real x87 bit for bit
 * for the basic operations (add, subtract, multiply, divide, square root, conversions).
 *
 * Exceptions are reported as flags (`Flags` bits, the same positions as the status word);
 * the x87 unit decides about masking. Tininess is judged on the result rounded as if the
 * exponent range were unbounded ("after rounding"), as measured on a real x87.
 */

export interface F80 {
  sign: number;
  /** Biased exponent 0..0x7FFF. */
  exp: number;
  /** 64-bit significand, integer bit included. */
  mant: bigint;
}

/** Exception flags, as in the status word (SDM vol.1 §8.1.3.1). */
export const IE = 0x01;
export const DE = 0x02;
export const ZE = 0x04;
export const OE = 0x08;
export const UE = 0x10;
export const PE = 0x20;

export const BIAS = 16383;
export const MAX_EXP = 0x7fff;
const ONE = 1n << 63n;
const MANT_MASK = (1n << 64n) - 1n;

/** Rounding control (control word bits 11:10). */
export const RC_NEAREST = 0;
export const RC_DOWN = 1;
export const RC_UP = 2;
export const RC_ZERO = 3;

export const ZERO: F80 = { sign: 0, exp: 0, mant: 0n };
export const INF: F80 = { sign: 0, exp: MAX_EXP, mant: ONE };
/** The "real indefinite" QNaN the x87 returns for invalid operations with IE masked. */
export const INDEFINITE: F80 = { sign: 1, exp: MAX_EXP, mant: 0xc000000000000000n };

export function f80(sign: number, exp: number, mant: bigint): F80 {
  return { sign, exp, mant };
}

// ---------------------------------------------------------------------------------------
// Classification (SDM vol.1 table 8-3, FXAM)
// ---------------------------------------------------------------------------------------

export const isNaN80 = (a: F80) => a.exp === MAX_EXP && (a.mant & ONE) !== 0n && (a.mant & ~ONE & MANT_MASK) !== 0n;
export const isSNaN = (a: F80) => isNaN80(a) && (a.mant & (1n << 62n)) === 0n;
export const isInf = (a: F80) => a.exp === MAX_EXP && a.mant === ONE;
export const isZero = (a: F80) => a.exp === 0 && a.mant === 0n;
export const isDenormal = (a: F80) => a.exp === 0 && a.mant !== 0n;
/** Unnormals, pseudo-NaNs and pseudo-infinities (integer bit clear with a nonzero exponent): invalid operands on the 387 and later. */
export const isUnsupported = (a: F80) => a.exp !== 0 && (a.mant & ONE) === 0n;

export function quiet(a: F80): F80 {
  return { sign: a.sign, exp: a.exp, mant: a.mant | (1n << 62n) };
}

// ---------------------------------------------------------------------------------------
// Rounding: one place turns an exact value into a representable one
// ---------------------------------------------------------------------------------------

export interface Format {
  /** Significand bits (with the integer bit). */
  precision: number;
  /** Unbiased exponent range of normal numbers. */
  emin: number;
  emax: number;
}
export const EXTENDED: Format = { precision: 64, emin: -16382, emax: 16383 };
export const DOUBLE: Format = { precision: 53, emin: -1022, emax: 1023 };
export const SINGLE: Format = { precision: 24, emin: -126, emax: 127 };

export interface Rounded {
  sign: number;
  /** Unbiased exponent of the leading significand bit; `sig` has `precision` bits (or fewer when denormal). */
  e: number;
  sig: bigint;
  denormal: boolean;
  zero: boolean;
  inf: boolean;
  flags: number;
  /** The magnitude was rounded up (C1 in the status word). */
  up: boolean;
}

function bitLength(x: bigint): number {
  return x === 0n ? 0 : x.toString(2).length;
}

/**
 * Round sign * sig * 2^exp2 (exact; `sticky` says nonzero bits were lost below it) to
 * `precision` bits within the format's exponent range under `rc`.
 */
export function round(sign: number, sig: bigint, exp2: number, sticky: boolean, fmt: Format, precision: number, rc: number): Rounded {
  if (sig === 0n) {
    // Only an exact zero arrives here (callers fold sticky-only results into the last bit).
    return { sign, e: 0, sig: 0n, denormal: false, zero: true, inf: false, flags: 0, up: false };
  }
  const n = bitLength(sig);
  let e = exp2 + n - 1;
  const origSig = sig;
  const origN = n;
  const e0 = e;
  let p = precision;
  const tiny = e < fmt.emin;
  if (tiny) p -= fmt.emin - e;
  const shift = n - p;
  let rem = 0n;
  let half = 0n;
  if (shift > 0) {
    const mask = (1n << BigInt(shift)) - 1n;
    rem = sig & mask;
    half = 1n << BigInt(shift - 1);
    sig >>= BigInt(shift);
  } else if (shift < 0) {
    sig <<= BigInt(-shift);
  }
  const inexact = rem !== 0n || sticky;
  let up = false;
  if (inexact) {
    switch (rc) {
      case RC_NEAREST:
        up = rem > half || (rem === half && (sticky || (sig & 1n) === 1n));
        break;
      case RC_DOWN: up = sign === 1; break;
      case RC_UP: up = sign === 0; break;
      default: up = false;
    }
  }
  if (up) sig += 1n;
  // The significand may have carried into a new bit.
  const width = p <= 0 ? 0 : p;
  if (bitLength(sig) > Math.max(width, 0) && sig !== 0n) {
    if (!tiny) {
      sig >>= 1n;
      e += 1;
    }
  }
  let flags = inexact ? PE : 0;
  if (tiny && inexact && tinyAfterRounding(sign, origSig, origN, precision, sticky, rc, e0, fmt.emin)) flags |= UE;
  if (sig === 0n) return { sign, e: 0, sig: 0n, denormal: false, zero: true, inf: false, flags, up };
  // A denormal that rounded up to the smallest normal becomes normal.
  const denormal = tiny && bitLength(sig) < precision;
  if (tiny && !denormal) e = fmt.emin;
  if (!denormal && e > fmt.emax) {
    flags |= OE | PE;
    // Overflow: infinity, or the largest finite number when rounding toward zero or away from this sign.
    const toInf = rc === RC_NEAREST || (rc === RC_UP && sign === 0) || (rc === RC_DOWN && sign === 1);
    if (toInf) return { sign, e: fmt.emax + 1, sig: 0n, denormal: false, zero: false, inf: true, flags, up: true };
    return { sign, e: fmt.emax, sig: (1n << BigInt(precision)) - 1n, denormal: false, zero: false, inf: false, flags, up: false };
  }
  return { sign, e: denormal ? fmt.emin : e, sig, denormal, zero: false, inf: false, flags, up };
}

/**
 * Is a tiny-before-rounding value still tiny once rounded to full precision with an
 * unbounded exponent? Only a value just below the smallest normal can round up out of it.
 */
function tinyAfterRounding(sign: number, sig: bigint, n: number, precision: number, sticky: boolean, rc: number, e: number, emin: number): boolean {
  if (e < emin - 1) return true;
  const shift = n - precision;
  if (shift <= 0) return true; // exact at full precision: the value itself is tiny
  const rem = sig & ((1n << BigInt(shift)) - 1n);
  const half = 1n << BigInt(shift - 1);
  let q = sig >> BigInt(shift);
  const inexact = rem !== 0n || sticky;
  let up = false;
  if (inexact) {
    if (rc === RC_NEAREST) up = rem > half || (rem === half && (sticky || (q & 1n) === 1n));
    else if (rc === RC_DOWN) up = sign === 1;
    else if (rc === RC_UP) up = sign === 0;
  }
  if (up) q += 1n;
  return bitLength(q) <= precision; // no carry into the next binade: still below 2^emin
}

/** A rounded result in extended format (the precision may be 24/53/64 bits; the range is extended's). */
export function toF80(r: Rounded, precision: number): F80 {
  if (r.zero) return { sign: r.sign, exp: 0, mant: 0n };
  if (r.inf) return { sign: r.sign, exp: MAX_EXP, mant: ONE };
  if (r.denormal) {
    // sig holds the bits down to 2^(emin - precision + 1): align them to the 64-bit field.
    return { sign: r.sign, exp: 0, mant: (r.sig << BigInt(64 - precision)) & MANT_MASK };
  }
  return { sign: r.sign, exp: r.e + BIAS, mant: (r.sig << BigInt(64 - precision)) & MANT_MASK };
}

/** Exact value of an extended number as sig * 2^exp2 (denormals included). */
export function unpack(a: F80): { sig: bigint; exp2: number } {
  const e = a.exp === 0 ? 1 - BIAS : a.exp - BIAS;
  return { sig: a.mant, exp2: e - 63 };
}

/** Round an exact value to the extended format under precision control `pc` bits. */
export function roundTo80(sign: number, sig: bigint, exp2: number, sticky: boolean, pc: number, rc: number): { value: F80; flags: number; up: boolean } {
  const r = round(sign, sig, exp2, sticky, EXTENDED, pc, rc);
  return { value: toF80(r, pc), flags: r.flags, up: r.up };
}

// ---------------------------------------------------------------------------------------
// Arithmetic on finite operands (the unit handles NaNs, infinities and zeros first)
// ---------------------------------------------------------------------------------------

/**
 * Exact alignment needs at most 64 + 64 bits of shift; a smaller operand further below than
 * FAR can only nudge the rounding, so it stands in as one unit far below the larger one.
 */
const FAR = 300;
const NUDGE = 230;

export function add(a: F80, b: F80, pc: number, rc: number): { value: F80; flags: number; up: boolean } {
  const ua = unpack(a);
  const ub = unpack(b);
  let sa = ua.sig, sb = ub.sig;
  let e: number;
  const d = ua.exp2 - ub.exp2;
  if (d > FAR && sb !== 0n) {
    sa <<= BigInt(NUDGE);
    sb = 1n;
    e = ua.exp2 - NUDGE;
  } else if (-d > FAR && sa !== 0n) {
    sb <<= BigInt(NUDGE);
    sa = 1n;
    e = ub.exp2 - NUDGE;
  } else if (d >= 0) {
    sa <<= BigInt(d);
    e = ub.exp2;
  } else {
    sb <<= BigInt(-d);
    e = ua.exp2;
  }
  const sum = (a.sign ? -sa : sa) + (b.sign ? -sb : sb);
  if (sum === 0n) {
    // An exact zero sum of nonzero operands is +0, or -0 when rounding down (SDM vol.1 §4.8.3.4);
    // two zeros of one sign keep it.
    const sign = a.sign === b.sign && isZero(a) && isZero(b) ? a.sign : rc === RC_DOWN ? 1 : 0;
    return { value: { sign, exp: 0, mant: 0n }, flags: 0, up: false };
  }
  return roundTo80(sum < 0n ? 1 : 0, sum < 0n ? -sum : sum, e, false, pc, rc);
}

export function mul(a: F80, b: F80, pc: number, rc: number): { value: F80; flags: number; up: boolean } {
  const ua = unpack(a);
  const ub = unpack(b);
  return roundTo80(a.sign ^ b.sign, ua.sig * ub.sig, ua.exp2 + ub.exp2, false, pc, rc);
}

export function div(a: F80, b: F80, pc: number, rc: number): { value: F80; flags: number; up: boolean } {
  const ua = unpack(a);
  const ub = unpack(b);
  // 130 extra quotient bits are more than enough for a correctly rounded 64-bit result.
  const shift = 130n;
  const q = (ua.sig << shift) / ub.sig;
  const r = (ua.sig << shift) % ub.sig;
  return roundTo80(a.sign ^ b.sign, q, ua.exp2 - ub.exp2 - Number(shift), r !== 0n, pc, rc);
}

export function sqrt(a: F80, pc: number, rc: number): { value: F80; flags: number; up: boolean } {
  const ua = unpack(a);
  // Make the exponent even and leave plenty of bits for the root.
  let sig = ua.sig;
  let e = ua.exp2;
  if (e & 1) {
    sig <<= 1n;
    e -= 1;
  }
  sig <<= 200n;
  e -= 200;
  const root = isqrt(sig);
  return roundTo80(0, root, e / 2, root * root !== sig, pc, rc);
}

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = 1n << BigInt(Math.ceil(bitLength(n) / 2));
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

// ---------------------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------------------

export function fromInt(v: bigint): F80 {
  if (v === 0n) return { ...ZERO };
  const sign = v < 0n ? 1 : 0;
  const m = v < 0n ? -v : v;
  // Integers up to 64 bits are exact in extended precision.
  return roundTo80(sign, m, 0, false, 64, RC_NEAREST).value;
}

/** Round to an integer under `rc` (FRNDINT, FIST); returns the integer and whether it was inexact. */
export function toIntegral(a: F80, rc: number): { value: bigint; inexact: boolean } {
  const { sig, exp2 } = unpack(a);
  if (exp2 >= 0) return { value: (a.sign ? -1n : 1n) * (sig << BigInt(exp2)), inexact: false };
  const shift = BigInt(-exp2);
  const whole = shift >= 200n ? 0n : sig >> shift;
  const rem = shift >= 200n ? sig : sig & ((1n << shift) - 1n);
  const half = shift >= 200n ? -1n : 1n << (shift - 1n);
  let q = whole;
  if (rem !== 0n) {
    let up: boolean;
    switch (rc) {
      case RC_NEAREST: up = half >= 0n && (rem > half || (rem === half && (q & 1n) === 1n)); break;
      case RC_DOWN: up = a.sign === 1; break;
      case RC_UP: up = a.sign === 0; break;
      default: up = false;
    }
    if (up) q += 1n;
  }
  return { value: a.sign ? -q : q, inexact: rem !== 0n };
}

/** IEEE single or double bits to extended (exact); flags DE for a denormal source, IE for an SNaN. */
export function fromIeee(bits: bigint, fmt: 'single' | 'double'): { value: F80; flags: number } {
  const [ebits, mbits] = fmt === 'single' ? [8, 23] : [11, 52];
  const sign = Number((bits >> BigInt(ebits + mbits)) & 1n);
  const e = Number((bits >> BigInt(mbits)) & BigInt((1 << ebits) - 1));
  const m = bits & ((1n << BigInt(mbits)) - 1n);
  const emax = (1 << ebits) - 1;
  const bias = (1 << (ebits - 1)) - 1;
  if (e === emax) {
    if (m === 0n) return { value: { sign, exp: MAX_EXP, mant: ONE }, flags: 0 };
    // The NaN is widened as it is (an SNaN stays signalling): the instruction decides.
    const nan = { sign, exp: MAX_EXP, mant: ONE | (m << BigInt(63 - mbits)) };
    const snan = (m & (1n << BigInt(mbits - 1))) === 0n;
    return { value: nan, flags: snan ? IE : 0 };
  }
  if (e === 0) {
    if (m === 0n) return { value: { sign, exp: 0, mant: 0n }, flags: 0 };
    // Denormal source: normalise into extended (always representable there).
    return { value: roundTo80(sign, m, 1 - bias - mbits, false, 64, RC_NEAREST).value, flags: DE };
  }
  return { value: { sign, exp: e - bias + BIAS, mant: ONE | (m << BigInt(63 - mbits)) }, flags: 0 };
}

/** Extended to IEEE single or double bits, rounded under `rc`; NaNs keep their top payload bits. */
export function toIeee(a: F80, fmt: 'single' | 'double', rc: number): { bits: bigint; flags: number; up: boolean } {
  const f = fmt === 'single' ? SINGLE : DOUBLE;
  const [ebits, mbits] = fmt === 'single' ? [8, 23] : [11, 52];
  const bias = (1 << (ebits - 1)) - 1;
  const signBit = BigInt(a.sign) << BigInt(ebits + mbits);
  const expAll = BigInt((1 << ebits) - 1) << BigInt(mbits);
  if (a.exp === MAX_EXP) {
    if (a.mant === ONE) return { bits: signBit | expAll, flags: 0, up: false };
    const payload = (a.mant >> BigInt(63 - mbits)) & ((1n << BigInt(mbits)) - 1n);
    const snan = isSNaN(a);
    return { bits: signBit | expAll | payload | (1n << BigInt(mbits - 1)), flags: snan ? IE : 0, up: false };
  }
  if (isZero(a)) return { bits: signBit, flags: 0, up: false };
  const { sig, exp2 } = unpack(a);
  const r = round(a.sign, sig, exp2, false, f, f.precision, rc);
  if (r.zero) return { bits: signBit, flags: r.flags, up: r.up };
  if (r.inf) return { bits: signBit | expAll, flags: r.flags, up: r.up };
  if (r.denormal) return { bits: signBit | r.sig, flags: r.flags, up: r.up };
  const frac = r.sig & ((1n << BigInt(mbits)) - 1n);
  return { bits: signBit | (BigInt(r.e + bias) << BigInt(mbits)) | frac, flags: r.flags, up: r.up };
}

/** A JS number (for transcendental helpers and tests): exact for every double, approximate beyond. */
export function toNumber(a: F80): number {
  if (a.exp === MAX_EXP) return a.mant === ONE ? (a.sign ? -Infinity : Infinity) : NaN;
  const { sig, exp2 } = unpack(a);
  const v = Number(sig) * 2 ** exp2;
  return a.sign ? -v : v;
}

export function fromNumber(v: number): F80 {
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, v, true);
  return fromIeee(buf.getBigUint64(0, true), 'double').value;
}

/** Compare finite or infinite values: -1, 0, 1. */
export function compare(a: F80, b: F80): number {
  if (isZero(a) && isZero(b)) return 0;
  if (a.sign !== b.sign) return a.sign ? -1 : 1;
  const s = a.sign ? -1 : 1;
  if (isInf(a) || isInf(b)) return isInf(a) && isInf(b) ? 0 : isInf(a) ? s : -s;
  const ua = unpack(a);
  const ub = unpack(b);
  // Compare sig_a * 2^ea with sig_b * 2^eb.
  const ea = ua.exp2 + bitLength(ua.sig);
  const eb = ub.exp2 + bitLength(ub.sig);
  if (ua.sig === 0n) return ub.sig === 0n ? 0 : -s;
  if (ub.sig === 0n) return s;
  if (ea !== eb) return ea > eb ? s : -s;
  const d = ua.exp2 - ub.exp2;
  const x = d >= 0 ? ua.sig << BigInt(d) : ua.sig;
  const y = d < 0 ? ub.sig << BigInt(-d) : ub.sig;
  return x === y ? 0 : x > y ? s : -s;
}

/** The 80-bit memory image (SDM vol.1 figure 4-3): 8 bytes of significand, then sign and exponent. */
export function toBytes(a: F80, out: Uint8Array, at = 0): void {
  let m = a.mant;
  for (let i = 0; i < 8; i++) {
    out[at + i] = Number(m & 0xffn);
    m >>= 8n;
  }
  const se = (a.sign << 15) | a.exp;
  out[at + 8] = se & 0xff;
  out[at + 9] = se >> 8;
}

export function fromBytes(b: Uint8Array, at = 0): F80 {
  let m = 0n;
  for (let i = 7; i >= 0; i--) m = (m << 8n) | BigInt(b[at + i]);
  const se = b[at + 8] | (b[at + 9] << 8);
  return { sign: se >> 15, exp: se & 0x7fff, mant: m };
}
