/**
 * `npm run x87-vectors`: run x87 instruction vectors on this machine's own FPU and write
 * what it computed to src/emulator/cpu/fpu/testdata/x87-vectors.json, the reference the
 * differential test (src/emulator/cpu/fpu/x87-vectors.test.ts) holds Trapdoor's x87 to.
 *
 * Needs an x86 Linux host that runs 32-bit programs, nasm and ld (binutils); no C compiler
 * (scripts/native-records.ts).
 * The vectors' inputs come from a seeded generator, so a rerun on the same kind of CPU
 * writes the same file. The instruction forms and the record layout are shared with the
 * test (src/emulator/cpu/testing/x87-forms.ts): this script runs the same routines over
 * the records natively (scripts/native-records.ts).
 *
 * Not run by CI; rerun it when forms or operand sets change, and say in the commit which
 * CPU produced the file (it is recorded in the JSON too).
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MEM_SIZE, RECORD, recordLoop, SAVE, X87_FORMS, EFLAGS_MASK, type X87Form, type X87Vector } from '../../src/emulator/cpu/testing/x87-forms.ts';
import { cpuName, runNativeRecords, seededRandom, writeVectorFile } from '../native-records.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OUT_FILE = path.join(ROOT, 'src/emulator/cpu/fpu/testdata/x87-vectors.json');

// ---------------------------------------------------------------------------------------
// A seeded random source (mulberry32), so the operands are the same on every run
// ---------------------------------------------------------------------------------------

const { rand, int, pick } = seededRandom(0x8087);
const chance = (p: number) => rand() < p;
const bits32 = () => BigInt(Math.floor(rand() * 4294967296));
const bits64 = () => (bits32() << 32n) | bits32();
/** A random n-bit unsigned integer with its top bit set. */
const topBits = (n: number) => (bits64() & ((1n << BigInt(n)) - 1n)) | (1n << BigInt(n - 1));

// ---------------------------------------------------------------------------------------
// 80-bit values as sign+exponent (16 bits) and significand (64 bits)
// ---------------------------------------------------------------------------------------

interface F80 {
  se: number;
  m: bigint;
}

const BIAS = 16383;
const J = 1n << 63n;
const M64 = (1n << 64n) - 1n;

const make = (sign: number, exp: number, m: bigint): F80 => ({ se: (sign << 15) | exp, m: m & M64 });
const sign = (v: F80) => v.se >> 15;
const exponent = (v: F80) => v.se & 0x7fff;
const neg = (v: F80): F80 => ({ se: v.se ^ 0x8000, m: v.m });
const randSign = () => (chance(0.5) ? 1 : 0);

/** n × 2^shift as an exact 80-bit value (n up to 64 bits, result in the normal range). */
function scaled(s: number, n: bigint, shift: number): F80 {
  if (n === 0n) return make(s, 0, 0n);
  const len = n.toString(2).length;
  if (len > 64) throw new Error('scaled: more than 64 significant bits');
  return make(s, BIAS + len - 1 + shift, n << BigInt(64 - len));
}

const normal = (lo: number, hi: number, s = randSign()) => make(s, int(lo, hi), bits64() | J);
/** A normal whose significand has only its top `p` bits (so it is exact at precision p). */
const short = (exp: number, p: number, s = randSign()) => make(s, exp, (topBits(p) << BigInt(64 - p)));
const ZERO = (s: number) => make(s, 0, 0n);
const INF = (s: number) => make(s, 0x7fff, J);
const qnan = () => make(randSign(), 0x7fff, J | (1n << 62n) | (bits64() & ((1n << 62n) - 1n)));
const snan = () => make(randSign(), 0x7fff, J | ((bits64() & ((1n << 62n) - 1n)) | 1n));
const INDEFINITE = make(1, 0x7fff, 0xc000000000000000n);
const denormal = () => make(randSign(), 0, bits64() & (J - 1n) | 1n);

/** Every class of operand the x87 tells apart, the unsupported encodings included. */
function special(): F80 {
  switch (int(0, 16)) {
    case 0: return ZERO(0);
    case 1: return ZERO(1);
    case 2: return INF(0);
    case 3: return INF(1);
    case 4: return qnan();
    case 5: return snan();
    case 6: return INDEFINITE;
    case 7: return make(randSign(), 1, J); // smallest normal
    case 8: return make(randSign(), 0x7ffe, M64); // largest normal
    case 9: return denormal();
    case 10: return make(randSign(), 0, 1n); // smallest denormal
    case 11: return make(randSign(), 0, J - 1n); // largest denormal
    case 12: return make(randSign(), 0, J | bits64()); // pseudo-denormal
    case 13: return make(randSign(), int(1, 0x7ffe), bits64() & (J - 1n)); // unnormal
    case 14: return make(randSign(), 0x7fff, 0n); // pseudo-infinity
    case 15: return make(randSign(), 0x7fff, (bits64() & (J - 1n)) | 1n); // pseudo-NaN
    default: return make(randSign(), 0x7fff, J | (1n << 62n)); // a QNaN with no payload
  }
}

/** Specials without the unsupported encodings (pseudo-*, unnormals). */
function specialSupported(): F80 {
  for (;;) {
    const v = special();
    const e = exponent(v);
    const unsupported = (e !== 0 && (v.m & J) === 0n) || (e === 0 && (v.m & J) !== 0n);
    if (!unsupported) return v;
  }
}

const hex = (v: bigint, digits: number) => v.toString(16).padStart(digits, '0');
const hex80 = (v: F80) => `${hex(BigInt(v.se), 4)}:${hex(v.m, 16)}`;

function bytes80(v: F80): Uint8Array {
  const b = new Uint8Array(10);
  for (let i = 0; i < 8; i++) b[i] = Number((v.m >> BigInt(8 * i)) & 0xffn);
  b[8] = v.se & 0xff;
  b[9] = v.se >> 8;
  return b;
}

function read80(b: Uint8Array, at: number): F80 {
  let m = 0n;
  for (let i = 7; i >= 0; i--) m = (m << 8n) | BigInt(b[at + i]);
  return { se: b[at + 8] | (b[at + 9] << 8), m };
}

// ---------------------------------------------------------------------------------------
// Memory operands (little-endian integers of the format's width)
// ---------------------------------------------------------------------------------------

/** An exact single (or double) from an 80-bit normal within its normal range. */
function encodeIeee(v: F80, fmt: 'f32' | 'f64'): bigint {
  const [frac, bias, ebits] = fmt === 'f32' ? [23, 127, 8] : [52, 1023, 11];
  const e = exponent(v) - BIAS + bias;
  if (e < 1 || e >= (1 << ebits) - 1) throw new Error('encodeIeee: out of range');
  const f = (v.m >> BigInt(63 - frac)) & ((1n << BigInt(frac)) - 1n);
  return (BigInt(sign(v)) << BigInt(frac + ebits)) | (BigInt(e) << BigInt(frac)) | f;
}

/** A random single or double bit pattern of every class. */
function randomIeee(fmt: 'f32' | 'f64', nearExp?: number): bigint {
  const [frac, bias, ebits] = fmt === 'f32' ? [23, 127, 8] : [52, 1023, 11];
  const F = BigInt(frac);
  const emax = (1 << ebits) - 1;
  const fracBits = () => bits64() & ((1n << F) - 1n);
  const s = BigInt(randSign()) << BigInt(frac + ebits);
  const build = (e: number, f: bigint) => s | (BigInt(e) << F) | f;
  const r = int(0, 19);
  if (r <= 9) {
    const e = nearExp === undefined ? int(1, emax - 1) : Math.max(1, Math.min(emax - 1, nearExp - BIAS + bias + int(-3, 3)));
    return build(e, fracBits());
  }
  switch (r) {
    case 10: return build(0, fracBits() | 1n); // denormal
    case 11: return build(0, 1n);
    case 12: return build(0, 0n);
    case 13: return build(emax, 0n); // infinity
    case 14: return build(emax, (1n << (F - 1n)) | fracBits()); // QNaN
    case 15: return build(emax, (fracBits() & ((1n << (F - 1n)) - 1n)) | 1n); // SNaN
    case 16: return build(emax - 1, (1n << F) - 1n); // largest
    case 17: return build(1, 0n); // smallest normal
    default: return build(int(bias - 20, bias + 20), fracBits());
  }
}

function intBytes(v: bigint, size: number): Uint8Array {
  const u = BigInt.asUintN(size * 8, v);
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = Number((u >> BigInt(8 * i)) & 0xffn);
  return b;
}

function bcdBytes(negative: boolean, digits: bigint): Uint8Array {
  const b = new Uint8Array(10);
  let d = digits;
  for (let i = 0; i < 9; i++) {
    const lo = Number(d % 10n);
    d /= 10n;
    const hi = Number(d % 10n);
    d /= 10n;
    b[i] = (hi << 4) | lo;
  }
  b[9] = negative ? 0x80 : 0;
  return b;
}

const bytesHex = (b: Uint8Array) => Array.from(b, (x) => hex(BigInt(x), 2)).join('');

// ---------------------------------------------------------------------------------------
// Control words
// ---------------------------------------------------------------------------------------

const PC_BITS = { 24: 0, 53: 2, 64: 3 } as const;
type Precision = keyof typeof PC_BITS;

function controlWord(rc: number, pc: Precision, masks = 0x3f): number {
  return 0x40 | masks | (PC_BITS[pc] << 8) | (rc << 10);
}

const randomPc = (): Precision => pick([24, 53, 64, 64] as const);

// ---------------------------------------------------------------------------------------
// Operands for each family of forms
// ---------------------------------------------------------------------------------------

interface Inputs {
  a?: F80;
  b?: F80;
  mem?: Uint8Array;
}

type Op = 'add' | 'sub' | 'mul' | 'div';

function opOf(name: string): Op {
  const m = /^fi?(add|sub|mul|div)/.exec(name);
  if (!m) throw new Error(`no arithmetic in ${name}`);
  return m[1] as Op;
}

/** Two operands for an arithmetic instruction at precision `pc`: ordinary, tied, extreme, special. */
function arithPair(op: Op, pc: Precision): [F80, F80] {
  const r = int(0, 19);
  if (r <= 4) {
    const a = normal(BIAS - 40, BIAS + 40);
    return [a, normal(exponent(a) - 4, exponent(a) + 4)];
  }
  if (r <= 7) {
    const a = normal(BIAS - 200, BIAS + 200);
    return [a, normal(exponent(a) - 80, exponent(a) + 80)];
  }
  if (r === 8) return [normal(1, 0x7ffe), normal(1, 0x7ffe)];
  if (r <= 11) {
    // Ties and near-ties at the precision in force.
    if (op === 'add' || op === 'sub') {
      const ea = int(BIAS - 100, BIAS + 100);
      const a = short(ea, pc);
      const low = pick([J, J | 1n, M64, J | (1n << 20n)]);
      const b = make(randSign(), ea - pc - (low === M64 ? 1 : 0), low);
      return chance(0.5) ? [a, b] : [b, a];
    }
    if (op === 'mul') {
      // Odd factors whose product has pc+1 bits: exactly halfway between two neighbours.
      const ka = int(2, pc - 1);
      const kb = pc + 1 - ka + int(0, 1);
      const a = scaled(randSign(), topBits(ka) | 1n, int(-60, 60) - ka);
      const b = scaled(randSign(), topBits(kb) | 1n, int(-60, 60) - kb);
      return [a, b];
    }
    // Exact quotients: a = b × q.
    const b = short(int(BIAS - 50, BIAS + 50), 30);
    const q = topBits(int(1, 30)) | 1n;
    const a = scaled(sign(b) ^ randSign(), (b.m >> 34n) * q, exponent(b) - BIAS - 29);
    return [a, b];
  }
  if (r <= 13) {
    // Overflow and underflow, denormal results.
    const tiny = chance(0.5);
    if (chance(0.35)) {
      // Just below the smallest normal (or the overflow threshold), where rounding at the
      // precision in force may carry the result over it: tininess after rounding or before.
      const nearly = (e: number) => make(randSign(), e, M64 - BigInt(int(0, 3)) * (1n << BigInt(int(0, 64 - pc))));
      if (op === 'add' || op === 'sub') {
        const a = nearly(tiny ? 0 : 0x7ffe);
        const b = make(sign(a) ^ (op === 'sub' ? 1 : 0), tiny ? 0 : int(0x7ffe - 70, 0x7ffe - pc + 1), BigInt(int(1, 3)) << BigInt(int(0, 10)));
        return [a, b];
      }
      // Unbiased exponents: a ≈ 2^(ea+1), so a × b ≈ 2^(ea+eb+2) and a / b ≈ 2^(ea+1-eb).
      const ea = tiny ? int(-8000, -2) : int(2, 8000);
      const a = nearly(ea + BIAS);
      if (op === 'mul') return [a, nearly((tiny ? -16384 : 16382) - ea + BIAS)];
      return [a, make(randSign(), ea + 1 - (tiny ? -16382 : 16384) + BIAS, J | BigInt(int(0, 3)))];
    }
    if (op === 'add' || op === 'sub') {
      if (tiny) {
        const a = make(randSign(), int(0, 3), bits64() | (chance(0.5) ? J : 0n));
        const b = make(randSign(), int(0, 3), bits64() | (chance(0.5) ? J : 0n));
        return [a, b];
      }
      const a = make(randSign(), 0x7ffe, bits64() | J);
      return [a, make(sign(a) ^ (op === 'sub' ? 1 : 0), int(0x7ffe - 70, 0x7ffe), bits64() | J)];
    }
    const sumE = tiny ? int(-16445, -16370) : int(16370, 16390);
    const ea = int(-8000, 8000);
    const eb = op === 'mul' ? sumE - ea : ea - sumE;
    const clamp = (e: number) => Math.max(1, Math.min(0x7ffe, e + BIAS));
    return [normal(clamp(ea), clamp(ea)), normal(clamp(eb), clamp(eb))];
  }
  if (r === 14 && (op === 'add' || op === 'sub')) {
    // Cancellation: operands equal in magnitude or one ulp apart; exact zeros take the rounding's sign.
    const a = normal(BIAS - 20, BIAS + 20);
    const b = chance(0.5) ? a : { se: a.se, m: a.m ^ 1n };
    return [a, op === 'add' ? neg(b) : b];
  }
  if (r <= 16) return [chance(0.5) ? special() : normal(BIAS - 30, BIAS + 30), special()];
  const a = special();
  return [a, chance(0.3) ? special() : normal(BIAS - 30, BIAS + 30)];
}

/** An 80-bit value that is exact as a single or double, near `v`'s magnitude (for the m32/m64 forms). */
function ieeeNear(fmt: 'f32' | 'f64', v: F80): bigint {
  const [p, emin, emax] = fmt === 'f32' ? [24, -126, 127] : [53, -1022, 1023];
  const e = exponent(v) - BIAS;
  if (exponent(v) === 0 || exponent(v) === 0x7fff || e < emin || e > emax || chance(0.25)) return randomIeee(fmt, exponent(v));
  const target = Math.max(emin, Math.min(emax, e + int(-5, 5)));
  return encodeIeee(short(target + BIAS, p), fmt);
}

function randomInt(size: number): bigint {
  const bitsMax = size * 8 - 1;
  switch (int(0, 5)) {
    case 0: return BigInt(int(-100, 100));
    case 1: return -(1n << BigInt(bitsMax)); // the most negative
    case 2: return (1n << BigInt(bitsMax)) - 1n;
    default: return BigInt.asIntN(size * 8, bits64() >> BigInt(int(64 - size * 8, 63)));
  }
}

/** Values around the integer range of `size` bytes, ties and out-of-range ones included. */
function intStoreOperand(size: number): F80 {
  const bits = size * 8 - 1;
  const r = int(0, 11);
  if (r <= 2) {
    // Around the limits: ±2^bits with fractions either side (quarters where 64 bits hold them).
    const limit = 1n << BigInt(bits);
    if (chance(0.2)) return scaled(randSign(), (limit << 1n) + BigInt(int(-3, 1)), -1);
    const q = Math.min(2, 63 - bits);
    return scaled(randSign(), (limit << BigInt(q)) + BigInt(int(-6, 3)), -q);
  }
  if (r <= 4) return scaled(randSign(), (bits64() >> BigInt(64 - int(1, bits))) * 2n + 1n, -1); // x.5
  if (r <= 7) return normal(BIAS - 3, BIAS + bits - 1);
  if (r === 8) return normal(BIAS + bits, BIAS + bits + 4);
  if (r === 9) return normal(BIAS - 70, BIAS - 1);
  return specialSupported();
}

/** Values for FST m32/m64: in range, halfway, overflowing, underflowing to denormals or zero. */
function ieeeStoreOperand(fmt: 'f32' | 'f64'): F80 {
  const [p, emin, emax] = fmt === 'f32' ? [24, -126, 127] : [53, -1022, 1023];
  const r = int(0, 13);
  if (r <= 2) return normal(BIAS + emin, BIAS + emax);
  if (r <= 4) {
    // Halfway and one off at precision p.
    const v = short(int(BIAS + emin, BIAS + emax), p);
    const half = 1n << BigInt(63 - p);
    return { se: v.se, m: v.m | pick([half, half + 1n, half - 1n]) };
  }
  if (r === 5) return make(randSign(), BIAS + emax, M64 - BigInt(int(0, 3)) * (1n << BigInt(63 - p))); // rounds to overflow?
  if (r === 6) return normal(BIAS + emax + 1, BIAS + emax + 300);
  if (r <= 8) return normal(BIAS + emin - p - 2, BIAS + emin - 1); // the format's denormals
  if (r === 9) {
    // Just below the smallest normal: rounds up to it or stays denormal.
    return make(randSign(), BIAS + emin - 1, M64 - BigInt(int(0, 1)) * (1n << BigInt(64 - p)));
  }
  if (r === 10) return normal(1, BIAS + emin - p - 3);
  return special();
}

const bcdMax = 10n ** 18n - 1n;

function bcdStoreOperand(): F80 {
  const r = int(0, 9);
  if (r <= 3) return scaled(randSign(), (bits64() % (bcdMax << 2n)) | 1n, -2); // fractions of quarters
  if (r === 4) return scaled(randSign(), bcdMax, 0);
  if (r === 5) return scaled(randSign(), (bcdMax << 1n) + 1n, -1); // 10^18 - 0.5
  if (r === 6) return scaled(randSign(), (bcdMax + 1n) << 1n, -1); // 10^18
  if (r === 7) return normal(BIAS - 10, BIAS + 5);
  return specialSupported();
}

/** Inputs for one vector of `f` under control word `cw`. */
function inputs(f: X87Form, pc: Precision): Inputs {
  const n = f.name;
  if (/^f(add|sub|subr|mul|div|divr)p? st/.test(n) && !n.includes('empty')) {
    const [a, b] = arithPair(opOf(n), pc);
    return { a, b };
  }
  if (/^f(add|sub|subr|mul|div|divr) m(32|64)$/.test(n)) {
    const fmt = n.endsWith('m32') ? 'f32' : 'f64';
    const [a, b] = arithPair(opOf(n), pc);
    const bits = ieeeNear(fmt, b);
    return { a, mem: intBytes(bits, MEM_SIZE[fmt]) };
  }
  if (/^fi(add|sub|subr|mul|div|divr|com) m(16|32)$/.test(n)) {
    const size = n.endsWith('m16') ? 2 : 4;
    const i = randomInt(size);
    const r = int(0, 9);
    const a = r <= 5 ? normal(BIAS - 3, BIAS + size * 8 + 2) : r <= 7 ? scaled(randSign(), BigInt.asUintN(64, i < 0n ? -i : i) || 1n, int(-1, 0)) : special();
    return { a, mem: intBytes(i, size) };
  }
  switch (n) {
    case 'fsqrt': {
      const r = int(0, 9);
      if (r <= 3) return { a: normal(chance(0.5) ? 1 : BIAS - 100, chance(0.5) ? 0x7ffe : BIAS + 100, 0) };
      if (r <= 5) {
        const y = topBits(int(1, 32));
        return { a: scaled(0, y * y, int(-40, 40) * 2) }; // perfect squares
      }
      if (r === 6) return { a: make(0, 0, bits64() & (J - 1n)) };
      if (r === 7) return { a: normal(BIAS - 5, BIAS + 5, 1) };
      return { a: special() };
    }
    case 'frndint': {
      const r = int(0, 9);
      if (r <= 3) return { a: normal(BIAS - 2, BIAS + 66) };
      if (r <= 5) return { a: scaled(randSign(), (topBits(int(1, 40)) << 1n) | 1n, -1) }; // n + 0.5
      if (r === 6) return { a: normal(BIAS - 70, BIAS - 1) };
      if (r === 7) return { a: scaled(randSign(), BigInt(int(1, 7)), -2) }; // quarters below 2
      return { a: special() };
    }
    case 'fsin':
    case 'fcos':
    case 'fsincos':
    case 'fptan': {
      const r = int(0, 11);
      if (r <= 4) return { a: normal(BIAS - 3, BIAS + 3) };
      if (r === 5) return { a: normal(BIAS - 70, BIAS - 4) };
      if (r === 6) return { a: normal(BIAS + 4, BIAS + 62) };
      if (r === 7) return { a: normal(BIAS + 63, BIAS + 70) }; // out of range: C2
      if (r === 8) {
        // Next to a multiple of pi/2 (the 66-bit pi of the reduction shows there).
        const k = BigInt(int(1, 1 << 20));
        return { a: scaled(randSign(), (0xc90fdaa22168c234n * k) >> BigInt(k.toString(2).length), k.toString(2).length - 63) };
      }
      if (r === 9) return { a: denormal() };
      return { a: specialSupported() };
    }
    case 'f2xm1': {
      const r = int(0, 9);
      if (r <= 4) return { a: normal(BIAS - 8, BIAS - 1) };
      if (r === 5) return { a: normal(BIAS - 70, BIAS - 9) };
      if (r === 6) return { a: make(randSign(), BIAS, J) }; // +-1: exact results
      if (r === 7) return { a: denormal() };
      return { a: specialSupported() };
    }
    case 'fyl2x': {
      const r = int(0, 11);
      const y = chance(0.85) ? normal(BIAS - 20, BIAS + 20) : specialSupported();
      if (r <= 4) return { a: normal(BIAS - 200, BIAS + 200, 0), b: y };
      if (r === 5) return { a: make(0, chance(0.5) ? BIAS : BIAS - 1, chance(0.5) ? J | BigInt(int(1, 1000)) : M64 - BigInt(int(0, 1000))), b: y }; // near 1
      if (r === 6) return { a: make(0, int(1, 0x7ffe), J), b: y }; // powers of two: exact logarithms
      if (r === 7) return { a: normal(1, 0x7ffe, 0), b: y };
      if (r === 8) return { a: normal(BIAS - 5, BIAS + 5, 1), b: y }; // negative: invalid
      return { a: specialSupported(), b: y };
    }
    case 'fyl2xp1': {
      const r = int(0, 9);
      const y = chance(0.85) ? normal(BIAS - 20, BIAS + 20) : specialSupported();
      if (r <= 5) return { a: normal(BIAS - 70, BIAS - 3), b: y };
      if (r === 6) return { a: denormal(), b: y };
      return { a: specialSupported(), b: y };
    }
    case 'fpatan': {
      const r = int(0, 9);
      if (r <= 4) {
        const a = normal(BIAS - 40, BIAS + 40);
        return { a, b: normal(exponent(a) - 10, exponent(a) + 10) };
      }
      if (r === 5) return { a: normal(BIAS - 5, BIAS + 5), b: normal(1, 0x7ffe) };
      if (r === 6) {
        const a = normal(BIAS - 5, BIAS + 5);
        return { a, b: make(randSign(), exponent(a), a.m) }; // |y| = |x|: odd multiples of pi/4
      }
      return { a: chance(0.5) ? specialSupported() : normal(BIAS - 5, BIAS + 5), b: specialSupported() };
    }
    case 'fsincos (stack full)':
      return { a: normal(BIAS - 3, BIAS + 3) };
    case 'fptan (ST0 empty)':
      return {};
    case 'fabs':
    case 'fchs':
      return { a: chance(0.5) ? normal(1, 0x7ffe) : special() };
    case 'fscale': {
      const a = chance(0.7) ? normal(BIAS - 100, BIAS + 100) : chance(0.5) ? denormal() : special();
      const r = int(0, 11);
      let b: F80;
      if (r <= 4) b = scaled(randSign(), BigInt(int(1, 100)), 0);
      else if (r === 5) b = scaled(randSign(), BigInt(int(1, 400)), -2); // fractions: truncated toward zero
      else if (r === 6) b = scaled(randSign(), BigInt(int(16300, 16500)), 0); // overflow, underflow
      else if (r === 7) b = scaled(randSign(), BigInt(int(32700, 33000)), 0);
      else if (r === 8) b = normal(BIAS + 20, BIAS + 80); // huge scales
      else if (r === 9) b = normal(BIAS - 10, BIAS - 1); // |b| < 1: no scaling
      else b = specialSupported();
      return { a, b };
    }
    case 'fxtract':
      return { a: chance(0.5) ? normal(1, 0x7ffe) : chance(0.3) ? denormal() : special() };
    case 'fprem':
    case 'fprem1': {
      const r = int(0, 11);
      const b = normal(BIAS - 200, BIAS + 200);
      if (r <= 4) return { a: normal(exponent(b) - 2, exponent(b) + 63), b };
      if (r === 5) return { a: normal(exponent(b) + 64, exponent(b) + 400), b }; // partial: C2 = 1
      if (r === 6) {
        // Exact multiples and halfway quotients (FPREM1 rounds those to even).
        const sb = short(int(BIAS - 20, BIAS + 20), 32);
        const q = BigInt(int(1, 1000));
        return { a: scaled(randSign(), (sb.m >> 32n) * (q * 2n + BigInt(int(0, 1))), exponent(sb) - BIAS - 32), b: sb };
      }
      if (r === 7) return { a: denormal(), b: chance(0.5) ? denormal() : normal(1, 40) };
      if (r === 8) return { a: normal(BIAS - 10, BIAS + 10), b: specialSupported() };
      if (r === 9) return { a: special(), b };
      return { a: special(), b: special() };
    }
    case 'fcom st1':
    case 'fcomp st1':
    case 'fcompp':
    case 'fucom st1':
    case 'fucomp st1':
    case 'fucompp':
    case 'fcomi st0, st1':
    case 'fcomip st0, st1':
    case 'fucomi st0, st1':
    case 'fucomip st0, st1': {
      const r = int(0, 9);
      const a = normal(BIAS - 30, BIAS + 30);
      if (r <= 2) return { a, b: normal(exponent(a) - 1, exponent(a) + 1) };
      if (r === 3) return { a, b: a };
      if (r === 4) return { a, b: { se: a.se, m: a.m ^ 1n } };
      if (r === 5) return { a: ZERO(randSign()), b: ZERO(randSign()) };
      if (r <= 7) return { a: chance(0.5) ? a : special(), b: special() };
      return { a: special(), b: chance(0.5) ? a : special() };
    }
    case 'fcom m32':
    case 'fcomp m64': {
      const fmt = n === 'fcom m32' ? 'f32' : 'f64';
      const bits = randomIeee(fmt, BIAS + int(-10, 10));
      const r = int(0, 5);
      let a: F80;
      if (r <= 1) a = normal(BIAS - 12, BIAS + 12);
      else if (r === 2) {
        // The same value: a single or double widened.
        const [frac, bias, ebits] = fmt === 'f32' ? [23, 127, 8] : [52, 1023, 11];
        const e = Number((bits >> BigInt(frac)) & BigInt((1 << ebits) - 1));
        const f = bits & ((1n << BigInt(frac)) - 1n);
        const s = Number(bits >> BigInt(frac + ebits));
        a = e > 0 && e < (1 << ebits) - 1 ? make(s, e - bias + BIAS, J | (f << BigInt(63 - frac))) : special();
      } else a = special();
      return { a, mem: intBytes(bits, MEM_SIZE[fmt]) };
    }
    case 'ftst':
      return { a: chance(0.4) ? normal(1, 0x7ffe) : special() };
    case 'fxam':
      return { a: chance(0.2) ? normal(1, 0x7ffe) : special() };
    case 'fld m32':
      return { mem: intBytes(randomIeee('f32'), 4) };
    case 'fld m64':
      return { mem: intBytes(randomIeee('f64'), 8) };
    case 'fld m80':
    case 'fld m80 (stack full)':
      return { mem: bytes80(chance(0.3) ? normal(1, 0x7ffe) : special()) };
    case 'fild m16':
    case 'fild m32':
    case 'fild m64': {
      const size = n.endsWith('16') ? 2 : n.endsWith('32') ? 4 : 8;
      return { mem: intBytes(randomInt(size), size) };
    }
    case 'fbld': {
      const r = int(0, 5);
      const digits = r === 0 ? bcdMax : r === 1 ? 0n : bits64() % (10n ** BigInt(int(1, 18)));
      return { mem: bcdBytes(chance(0.5), digits) };
    }
    case 'fst m32':
    case 'fstp m32':
      return { a: ieeeStoreOperand('f32') };
    case 'fst m64':
    case 'fstp m64':
      return { a: ieeeStoreOperand('f64') };
    case 'fstp m80':
      return { a: chance(0.4) ? normal(1, 0x7ffe) : special() };
    case 'fist m16':
    case 'fistp m16':
      return { a: intStoreOperand(2) };
    case 'fist m32':
    case 'fistp m32':
      return { a: intStoreOperand(4) };
    case 'fistp m64':
      return { a: intStoreOperand(8) };
    case 'fbstp':
      return { a: bcdStoreOperand() };
    case 'fadd st0, st1 (ST1 empty)':
    case 'fcomi st0, st1 (ST1 empty)':
      return { a: normal(BIAS - 5, BIAS + 5) };
    default:
      return {};
  }
}

// ---------------------------------------------------------------------------------------
// How many vectors each form gets, and which run with exceptions unmasked
// ---------------------------------------------------------------------------------------

const CONSTANTS = new Set(['fldpi', 'fldl2e', 'fldl2t', 'fldlg2', 'fldln2', 'fld1', 'fldz']);

function vectorCount(f: X87Form): number {
  const n = f.name;
  if (n.includes('empty') || n.includes('full')) return 3;
  if (/ st0, st1$/.test(n) && /^f(add|sub|subr|mul|div|divr) /.test(n)) return 40;
  if (/^f(add|sub|subr|mul|div|divr)p? st1, st0$/.test(n)) return 10;
  if (/^f(add|sub|subr|mul|div|divr) m(32|64)$/.test(n)) return 10;
  if (/^fi(add|sub|subr|mul|div|divr) m(16|32)$/.test(n)) return 5;
  const counts: Record<string, number> = {
    fsin: 60, fcos: 60, fsincos: 40, fptan: 60, fpatan: 60, f2xm1: 60, fyl2x: 60, fyl2xp1: 60,
    fsqrt: 40, frndint: 40, fabs: 8, fchs: 8, fscale: 40, fxtract: 20, fprem: 40, fprem1: 40,
    'fcom st1': 25, 'fucom st1': 25, 'fcomi st0, st1': 25, 'fucomi st0, st1': 25,
    'fcom m32': 15, 'fcomp m64': 15, 'ficom m32': 8, ftst: 15, fxam: 30,
    'fld m32': 30, 'fld m64': 30, 'fld m80': 15, 'fild m16': 8, 'fild m32': 8, 'fild m64': 10, fbld: 12,
    'fst m32': 50, 'fst m64': 50, 'fstp m32': 10, 'fstp m64': 10, 'fstp m80': 8,
    'fist m16': 25, 'fist m32': 25, 'fistp m16': 8, 'fistp m32': 8, 'fistp m64': 30, fbstp: 30,
  };
  return counts[n] ?? 8;
}

/** Forms whose vectors sometimes run with exceptions unmasked (the instruction is the only FPU one that can raise). */
const UNMASKED = new Set([
  'fadd st0, st1', 'fsub st0, st1', 'fmul st0, st1', 'fdiv st0, st1', 'fdivr m64', 'fmulp st1, st0',
  'fsqrt', 'frndint', 'fscale', 'fxtract', 'fprem1', 'fcom st1', 'fucomi st0, st1',
  'fld m32', 'fld m64', 'fst m32', 'fstp m64', 'fistp m32', 'fbstp',
  'fsin', 'fsincos', 'fpatan', 'f2xm1', 'fyl2x',
]);

interface Vector {
  form: X87Form;
  formIndex: number;
  cw: number;
  eflags: number;
  inputs: Inputs;
}

function buildVectors(): Vector[] {
  const out: Vector[] = [];
  X87_FORMS.forEach((form, formIndex) => {
    const push = (cw: number, inp: Inputs) =>
      out.push({ form, formIndex, cw, eflags: 0x2 | (Math.floor(rand() * 0x1000) & EFLAGS_MASK), inputs: inp });
    if (CONSTANTS.has(form.name)) {
      for (let rc = 0; rc < 4; rc++) for (const pc of [24, 53, 64] as const) push(controlWord(rc, pc), {});
      return;
    }
    const n = vectorCount(form);
    for (let i = 0; i < n; i++) {
      const rc = int(0, 3);
      const pc = randomPc();
      const masks = UNMASKED.has(form.name) && chance(0.2) ? 0x3f & ~(1 << int(0, 5)) & ~(chance(0.5) ? 1 << int(0, 5) : 0) : 0x3f;
      push(controlWord(rc, pc, masks), inputs(form, pc));
    }
  });
  return out;
}

// ---------------------------------------------------------------------------------------
// The native run
// ---------------------------------------------------------------------------------------

function runNative(vectors: Vector[]): Uint8Array {
  const records = new Uint8Array(vectors.length * RECORD.size);
  vectors.forEach((v, i) => records.set(recordBytes(v, v.formIndex), i * RECORD.size));
  return runNativeRecords('x87_records', recordLoop(X87_FORMS), records, RECORD.size);
}

/** Sentinel in the memory slot of a store, so a store that does not happen shows. */
const SENTINEL = 0xa5;

function recordBytes(v: Vector, formIndex: number): Uint8Array {
  const r = new Uint8Array(RECORD.size);
  const dv = new DataView(r.buffer);
  dv.setUint32(RECORD.form, formIndex, true);
  dv.setUint16(RECORD.cw, v.cw, true);
  dv.setUint32(RECORD.eflags, v.eflags, true);
  if (v.inputs.a) r.set(bytes80(v.inputs.a), RECORD.a);
  if (v.inputs.b) r.set(bytes80(v.inputs.b), RECORD.b);
  r.fill(SENTINEL, RECORD.mem, RECORD.mem + 16);
  if (v.inputs.mem) r.set(v.inputs.mem, RECORD.mem);
  return r;
}

// ---------------------------------------------------------------------------------------
// The file
// ---------------------------------------------------------------------------------------

/** The values left on the stack: ST(i) for each i whose tag (physical register TOP + i) is not empty. */
function stackValues(rec: Uint8Array, sw: number, tw: number): string[] {
  const top = (sw >> 11) & 7;
  const st: string[] = [];
  for (let i = 0; i < 8; i++) {
    if (((tw >> (2 * ((top + i) & 7))) & 3) === 3) break;
    st.push(hex80(read80(rec, RECORD.save + SAVE.st0 + 10 * i)));
  }
  return st;
}

function toJson(v: Vector, rec: Uint8Array): X87Vector {
  const dv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  const sw = dv.getUint16(RECORD.sw, true);
  const tw = dv.getUint16(RECORD.save + SAVE.tagWord, true);
  const j: X87Vector = {
    cw: hex(BigInt(v.cw), 4),
    eflags: hex(BigInt(v.eflags), 4),
    expect: {
      sw: hex(BigInt(sw), 4),
      tw: hex(BigInt(tw), 4),
      st: stackValues(rec, sw, tw),
      eflags: hex(BigInt(dv.getUint32(RECORD.eflagsOut, true) & EFLAGS_MASK), 4),
    },
  };
  if (v.inputs.a) j.a = hex80(v.inputs.a);
  if (v.inputs.b) j.b = hex80(v.inputs.b);
  if (v.inputs.mem) j.mem = bytesHex(v.inputs.mem);
  if (v.form.memOut) j.expect.mem = bytesHex(rec.subarray(RECORD.mem, RECORD.mem + MEM_SIZE[v.form.memOut]));
  return j;
}

function main(): void {
  const vectors = buildVectors();
  const out = runNative(vectors);
  const byForm = new Map<string, X87Vector[]>();
  vectors.forEach((v, i) => {
    const list = byForm.get(v.form.name) ?? [];
    list.push(toJson(v, out.subarray(i * RECORD.size, (i + 1) * RECORD.size)));
    byForm.set(v.form.name, list);
  });
  const size = writeVectorFile(OUT_FILE, 'scripts/x87-vectors/generate.ts', byForm);
  console.log(`x87-vectors: ${vectors.length} vectors in ${byForm.size} forms on ${cpuName()}; ${path.relative(ROOT, OUT_FILE)} ${(size / 1024).toFixed(0)} KiB`);
}

main();
