/**
 * Arithmetic and logic with the flags the SDM defines for each (vol.2, "Flags Affected").
 * Add/sub/logic leave their flags lazy (see Cpu.setLazy); shifts, rotates, multiply and
 * divide set them at once because their rules do not fit the add/sub pattern.
 */
import type { Cpu } from './cpu.ts';
import { PARITY } from './cpu.ts';
import * as C from './constants.ts';

const LAZY_ADD = 0;
const LAZY_SUB = 1;
const LAZY_LOGIC = 2;
/** SHL/SHR/SAR: CF and OF kept in lzA and lzB bit 0, AF clear (Cpu.lazyCF/lazyOF/af). */
export const LAZY_SHIFT = 3;

export function maskOf(bits: number): number {
  return bits === 32 ? -1 : (1 << bits) - 1;
}

/** The eight ALU operations of opcodes 00-3F and groups 80-83: ADD OR ADC SBB AND SUB XOR CMP. */
export function alu(c: Cpu, op: number, a: number, b: number, bits: number): number {
  const mask = bits === 32 ? -1 : (1 << bits) - 1;
  let r: number;
  switch (op) {
    case 0:
      r = (a + b) & mask;
      c.setLazy(LAZY_ADD, a, b, r, bits, C.ARITH_FLAGS);
      return r;
    case 1:
      r = (a | b) & mask;
      c.setLazy(LAZY_LOGIC, a, b, r, bits, C.ARITH_FLAGS);
      return r;
    case 2: {
      const cin = c.cf() ? 1 : 0;
      r = (a + b + cin) & mask;
      c.setLazy(LAZY_ADD, a, b, r, bits, C.ARITH_FLAGS);
      return r;
    }
    case 3: {
      const cin = c.cf() ? 1 : 0;
      r = (a - b - cin) & mask;
      c.setLazy(LAZY_SUB, a, b, r, bits, C.ARITH_FLAGS);
      return r;
    }
    case 4:
      r = a & b & mask;
      c.setLazy(LAZY_LOGIC, a, b, r, bits, C.ARITH_FLAGS);
      return r;
    case 5:
    case 7:
      r = (a - b) & mask;
      c.setLazy(LAZY_SUB, a, b, r, bits, C.ARITH_FLAGS);
      return op === 7 ? a : r;
    default:
      r = (a ^ b) & mask;
      c.setLazy(LAZY_LOGIC, a, b, r, bits, C.ARITH_FLAGS);
      return r;
  }
}

/** INC/DEC: like ADD/SUB 1 but CF is preserved. */
export function incDec(c: Cpu, a: number, dec: boolean, bits: number): number {
  const cf = c.cf();
  c.flags = (c.flags & ~C.CF) | (cf ? C.CF : 0);
  const r = (dec ? a - 1 : a + 1) & maskOf(bits);
  c.setLazy(dec ? LAZY_SUB : LAZY_ADD, a, 1, r, bits, C.ARITH_FLAGS & ~C.CF);
  return r;
}

export function neg(c: Cpu, a: number, bits: number): number {
  const r = -a & maskOf(bits);
  c.setLazy(LAZY_SUB, 0, a, r, bits, C.ARITH_FLAGS);
  return r;
}

/** SF, ZF, PF of a result, for the eagerly computed operations. */
function szp(r: number, bits: number): number {
  let f = 0;
  if ((r & maskOf(bits)) === 0) f |= C.ZF;
  if ((r >>> (bits - 1)) & 1) f |= C.SF;
  if (PARITY[r & 0xff]) f |= C.PF;
  return f;
}

/**
 * Group 2 (C0, C1, D0-D3): ROL ROR RCL RCR SHL SHR SAL SAR. The count is masked to 5 bits
 * (all processors from the 286 on); a zero count changes nothing, flags included.
 * For counts other than 1, OF is undefined by the SDM; it is computed here with the 1-bit rule.
 */
export function shift(c: Cpu, op: number, v: number, count: number, bits: number): number {
  count &= 0x1f;
  if (count === 0) return v;
  const mask = maskOf(bits);
  const top = bits - 1;
  v &= mask;
  let r: number;
  let cf: number;
  let of: number;
  switch (op) {
    case 0: { // ROL
      const n = count % bits;
      r = n === 0 ? v : ((v << n) | (v >>> (bits - n))) & mask;
      cf = r & 1;
      of = ((r >>> top) & 1) ^ cf;
      c.setStatusFlags(C.CF | C.OF, (cf ? C.CF : 0) | (of ? C.OF : 0));
      return r;
    }
    case 1: { // ROR
      const n = count % bits;
      r = n === 0 ? v : ((v >>> n) | (v << (bits - n))) & mask;
      cf = (r >>> top) & 1;
      of = cf ^ ((r >>> (top - 1)) & 1);
      c.setStatusFlags(C.CF | C.OF, (cf ? C.CF : 0) | (of ? C.OF : 0));
      return r;
    }
    case 2: { // RCL: rotate through CF, a (bits+1)-bit rotation
      const n = count % (bits + 1);
      cf = c.cf() ? 1 : 0;
      r = v;
      for (let i = 0; i < n; i++) {
        const out = (r >>> top) & 1;
        r = ((r << 1) | cf) & mask;
        cf = out;
      }
      of = ((r >>> top) & 1) ^ cf;
      c.setStatusFlags(C.CF | C.OF, (cf ? C.CF : 0) | (of ? C.OF : 0));
      return r;
    }
    case 3: { // RCR
      const n = count % (bits + 1);
      cf = c.cf() ? 1 : 0;
      r = v;
      // OF is defined from the operand before the rotation (MSB xor CF) for 1-bit counts.
      of = ((r >>> top) & 1) ^ cf;
      for (let i = 0; i < n; i++) {
        const out = r & 1;
        r = (r >>> 1) | (cf << top);
        r &= mask;
        cf = out;
      }
      if (n !== 1) of = ((r >>> top) & 1) ^ ((r >>> (top - 1)) & 1);
      c.setStatusFlags(C.CF | C.OF, (cf ? C.CF : 0) | (of ? C.OF : 0));
      return r;
    }
    case 4:
    case 6: { // SHL/SAL
      cf = count <= bits ? (bits === 32 && count === 32 ? v & 1 : (v >>> (bits - count)) & 1) : 0;
      r = count >= 32 ? 0 : (v << count) & mask;
      if (count > bits) r = 0;
      of = ((r >>> top) & 1) ^ cf;
      break;
    }
    case 5: { // SHR
      cf = count <= bits ? (v >>> (count - 1)) & 1 : 0;
      r = count >= bits ? 0 : v >>> count;
      of = count === 1 ? (v >>> top) & 1 : 0;
      break;
    }
    default: { // SAR
      const sv = bits === 32 ? v | 0 : (v << (32 - bits)) >> (32 - bits);
      const n = count >= bits ? bits - 1 : count;
      cf = count >= bits ? (sv >>> 31) & 1 : (sv >> (count - 1)) & 1;
      r = (sv >> n) & mask;
      if (count >= bits) r = sv < 0 ? mask : 0;
      of = 0;
      break;
    }
  }
  // SF, ZF and PF come from the result; CF and OF are kept as they are; AF is cleared
  // (undefined by the SDM for a count above 0; a P6 clears it).
  c.setLazy(LAZY_SHIFT, cf, of, r, bits, C.ARITH_FLAGS);
  return r;
}

/** SHLD/SHRD (0F A4/A5/AC/AD): double-precision shifts, count masked to 5 bits. */
export function shiftDouble(c: Cpu, left: boolean, dst: number, src: number, count: number, bits: number): number {
  count &= 0x1f;
  if (count === 0) return dst;
  const mask = maskOf(bits);
  dst &= mask;
  src &= mask;
  let r: number;
  let cf: number;
  if (bits === 32) {
    if (left) {
      r = (dst << count) | (src >>> (32 - count));
      cf = (dst >>> (32 - count)) & 1;
    } else {
      r = (dst >>> count) | (src << (32 - count));
      cf = (dst >>> (count - 1)) & 1;
    }
  } else {
    // 16-bit with counts above 16: the result is undefined; model as a 32-bit concatenation.
    const wide = left ? ((dst << 16) | src) >>> 0 : ((src << 16) | dst) >>> 0;
    if (left) {
      const w = count < 32 ? (wide << count) | (count > 16 ? dst << (count - 16) : 0) : 0;
      r = (w >>> 16) & 0xffff;
      cf = count <= 16 ? (dst >>> (16 - count)) & 1 : (src >>> (32 - count)) & 1;
    } else {
      const w = wide >>> count | (count > 16 ? dst << (32 - count) : 0);
      r = w & 0xffff;
      cf = (wide >>> (count - 1)) & 1;
    }
  }
  r &= mask;
  const of = ((r ^ dst) >>> (bits - 1)) & 1;
  c.lzMask = 0; // every status flag is written below
  c.flags = (c.flags & ~C.ARITH_FLAGS) | szp(r, bits) | (cf ? C.CF : 0) | (of ? C.OF : 0);
  return r;
}

/** Flags after MUL/IMUL: CF = OF = upper half significant; SF/ZF/PF from the low half as a P6 does. */
export function setMulFlags(c: Cpu, overflow: boolean, low: number, bits: number): void {
  // Every status flag is written, so pending lazy ones need not be computed first.
  c.lzMask = 0;
  c.flags = (c.flags & ~C.ARITH_FLAGS) | szp(low, bits) | (overflow ? C.CF | C.OF : 0);
}

/** High half of the last mul32, to avoid allocating a pair per multiply. */
export const MUL_HIGH = new Int32Array(1);

/**
 * 32 x 32 -> 64-bit multiply in 16-bit limbs (exact in doubles): returns the low half,
 * leaves the high half in MUL_HIGH[0]. The signed product's high half is the unsigned
 * one minus each operand where the other is negative (two's complement identity).
 */
export function mul32(a: number, b: number, signed: boolean): number {
  const ua = a >>> 0;
  const ub = b >>> 0;
  const aL = ua & 0xffff, aH = ua >>> 16, bL = ub & 0xffff, bH = ub >>> 16;
  const ll = aL * bL, lh = aL * bH, hl = aH * bL;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  let hi = aH * bH + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 0x10000);
  if (signed) {
    if ((a | 0) < 0) hi -= ub;
    if ((b | 0) < 0) hi -= ua;
  }
  MUL_HIGH[0] = hi;
  return (ll & 0xffff) | (mid << 16);
}

/** Bit scan and bit test flags etc. live with their handlers; AAA..DAS here (SDM vol.2). */
export function daa(c: Cpu, das: boolean): void {
  const al = c.r8[0];
  const oldCf = c.cf();
  const oldAf = c.af();
  let r = al;
  let cf = false;
  let af = false;
  if ((al & 0x0f) > 9 || oldAf) {
    r = das ? r - 6 : r + 6;
    cf = oldCf || (das ? al < 6 : r > 0xff);
    af = true;
  }
  if (al > 0x99 || oldCf) {
    r = das ? r - 0x60 : r + 0x60;
    cf = true;
  }
  r &= 0xff;
  c.r8[0] = r;
  c.materializeFlags();
  // OF is undefined; a P6 leaves it as the 8-bit add/sub of the correction would.
  c.flags = (c.flags & ~C.ARITH_FLAGS) | szp(r, 8) | (cf ? C.CF : 0) | (af ? C.AF : 0);
}

export function aaa(c: Cpu, aas: boolean): void {
  let cf = false;
  if ((c.r8[0] & 0x0f) > 9 || c.af()) {
    if (aas) {
      c.r16[0] = (c.r16[0] - 6) & 0xffff;
      c.r8[1] = (c.r8[1] - 1) & 0xff;
    } else {
      c.r16[0] = (c.r16[0] + 0x106) & 0xffff;
    }
    cf = true;
  }
  c.r8[0] &= 0x0f;
  c.materializeFlags();
  const f = c.flags & ~(C.CF | C.AF);
  c.flags = f | (cf ? C.CF | C.AF : 0);
}
