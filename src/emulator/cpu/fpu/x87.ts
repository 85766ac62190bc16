/**
 * The x87 floating-point unit of a P6 (SDM vol.1 chapter 8, vol.2 for each instruction):
 * the eight-register stack with its tags, the control and status words, the instruction
 * and operand pointers, every ESC D8-DF instruction, FXSAVE/FXRSTOR, and the exception
 * model: masked exceptions give the IEEE default result; an unmasked one sets ES/B and is
 * taken at the next waiting instruction as #MF (CR0.NE = 1) or through FERR# and IRQ 13
 * (CR0.NE = 0, the PC's way).
 *
 * Arithmetic is exact-then-rounded in float80.ts. The transcendental instructions (FSIN,
 * FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X, FYL2XP1) are computed to about 190 bits in
 * transcendental.ts and rounded once to 64, the trigonometric ones reduced with the x87's
 * own 66-bit pi.
 */
import { settleWideFields, type Cpu, type FpuPort } from '../cpu.ts';
import * as C from '../constants.ts';
import {
  add, compare, DE, div, fromBytes, fromIeee, fromInt, IE, INDEFINITE, isDenormal, isInf, isNaN80, isSNaN,
  isUnsupported, isZero, mul, OE, PE, quiet, RC_NEAREST, RC_ZERO, roundTo80, sqrt, toBytes, toIeee, toIntegral, toNumber,
  UE, unpack, ZE, type F80, MAX_EXP, BIAS,
} from './float80.ts';
import { atan2, exp2m1, fromParts, piQuarter, sinCos, tan, times, ylog2x, ylog2xp1, type Big } from './transcendental.ts';

/** Status word bits (SDM vol.1 figure 8-4). */
const SW_SF = 0x40;
const SW_ES = 0x80;
const C0 = 0x100;
const C1 = 0x200;
const C2 = 0x400;
const C3 = 0x4000;
const SW_B = 0x8000;
const CC_MASK = C0 | C1 | C2 | C3;

/** Tags (SDM vol.1 §8.1.7). */
const TAG_VALID = 0;
const TAG_ZERO = 1;
const TAG_SPECIAL = 2;
const TAG_EMPTY = 3;

/** High-precision constants (128-bit significands) rounded per RC by FLDPI and friends. */
const CONSTANTS: Record<number, { mant: bigint; e: number } | null> = {
  0xe8: { mant: 1n << 127n, e: 0 }, // FLD1
  0xe9: { mant: 0xd49a784bcd1b8afe492bf6ff4dafdb4cn, e: 1 }, // FLDL2T log2(10)
  0xea: { mant: 0xb8aa3b295c17f0bbbe87fed0691d3e88n, e: 0 }, // FLDL2E log2(e)
  0xeb: { mant: 0xc90fdaa22168c234c4c6628b80dc1cd1n, e: 1 }, // FLDPI
  0xec: { mant: 0x9a209a84fbcff7988f8959ac0b7c9178n, e: -2 }, // FLDLG2 log10(2)
  0xed: { mant: 0xb17217f7d1cf79abc9e3b39803f2f6afn, e: -1 }, // FLDLN2 ln(2)
  0xee: null, // FLDZ
};

export interface X87State {
  regs: Uint8Array;
  top: number;
  cw: number;
  sw: number;
  tags: Uint8Array;
  fip: number;
  fcs: number;
  fdp: number;
  fds: number;
  fop: number;
}

export class X87 implements FpuPort {
  /** Physical registers R0-R7; ST(i) is R((top + i) & 7). */
  private readonly r: F80[] = Array.from({ length: 8 }, () => ({ sign: 0, exp: 0, mant: 0n }));
  /** Empty or not per physical register (the other tag values are computed from the contents). */
  private readonly empty = new Uint8Array(8).fill(1);
  top = 0;
  cw = 0x037f;
  /** Status word without TOP (bits 11-13 are filled in on read). */
  sw = 0;
  fip = 0;
  fcs = 0;
  fdp = 0;
  fds = 0;
  fop = 0;
  /** Flags raised by the current instruction. */
  private raised = 0;

  constructor(private readonly cpu: Cpu) {
    settleWideFields(this, ['fip', 'fdp']);
    this.reset();
  }

  /** Hardware RESET (SDM vol.3 table 9-1): CW 0x0040, every register tagged zero... and then FNINIT by the BIOS. */
  reset(): void {
    this.cw = 0x0040;
    this.sw = 0;
    this.top = 0;
    for (let i = 0; i < 8; i++) {
      this.r[i] = { sign: 0, exp: 0, mant: 0n };
      this.empty[i] = 0;
    }
    this.fip = this.fcs = this.fdp = this.fds = this.fop = 0;
  }

  private finit(): void {
    this.cw = 0x037f;
    this.sw = 0;
    this.top = 0;
    this.empty.fill(1);
    this.fip = this.fcs = this.fdp = this.fds = this.fop = 0;
  }

  get statusWord(): number {
    return (this.sw & ~0x3800) | (this.top << 11);
  }

  private get rc(): number {
    return (this.cw >> 10) & 3;
  }

  /** Precision control in significand bits (24, 53 or 64; the reserved value 1 acts as 64). */
  private get pc(): number {
    const p = (this.cw >> 8) & 3;
    return p === 0 ? 24 : p === 2 ? 53 : 64;
  }

  // -------------------------------------------------------------------------------------
  // The stack
  // -------------------------------------------------------------------------------------

  private phys(i: number): number {
    return (this.top + i) & 7;
  }

  tag(physical: number): number {
    if (this.empty[physical]) return TAG_EMPTY;
    const v = this.r[physical];
    if (isZero(v)) return TAG_ZERO;
    if (v.exp === MAX_EXP || v.exp === 0 || isUnsupported(v)) return TAG_SPECIAL;
    return TAG_VALID;
  }

  private isEmpty(i: number): boolean {
    return this.empty[this.phys(i)] !== 0;
  }

  private get(i: number): F80 {
    return this.r[this.phys(i)];
  }

  private set(i: number, v: F80): void {
    const p = this.phys(i);
    this.r[p] = v;
    this.empty[p] = 0;
  }

  private push(v: F80): void {
    const p = (this.top - 1) & 7;
    if (!this.empty[p]) {
      // Stack overflow (SDM vol.1 §8.5.1.1): IE + SF with C1 = 1; masked: the indefinite.
      this.sw |= C1;
      this.exception(IE | SW_SF);
      if (this.cw & IE) {
        this.top = p;
        this.set(0, INDEFINITE);
      }
      return;
    }
    this.top = p;
    this.set(0, v);
  }

  private pop(): void {
    this.empty[this.top] = 1;
    this.top = (this.top + 1) & 7;
  }

  /** ST0 empty: stack underflow; when masked, ST0 becomes the indefinite. True: the instruction ends here. */
  private st0Empty(): boolean {
    if (!this.isEmpty(0)) return false;
    if (!this.underflow()) this.set(0, INDEFINITE);
    return true;
  }

  /** Stack underflow: IE + SF with C1 = 0. Returns true if the instruction must stop. */
  private underflow(): boolean {
    this.sw &= ~C1;
    this.exception(IE | SW_SF);
    return (this.cw & IE) === 0;
  }

  // -------------------------------------------------------------------------------------
  // Exceptions
  // -------------------------------------------------------------------------------------

  /** Record exception flags; unmasked ones set ES and B (the error is signalled at the next waiting instruction). */
  private exception(flags: number): void {
    this.sw |= flags;
    this.raised |= flags & 0x3f;
    if ((flags & 0x3f & ~this.cw) !== 0) {
      this.sw |= SW_ES | SW_B;
      // CR0.NE = 0: FERR# goes out to the PIC's IRQ 13 as soon as the error is pending.
      if ((this.cpu.cr0 & C.CR0_NE) === 0) this.cpu.host.ferr();
    }
  }

  /** Unmasked invalid/zero-divide/denormal exceptions leave the destination untouched (SDM vol.1 §4.9.2). */
  private blocked(): boolean {
    return (this.raised & (IE | ZE | DE) & ~this.cw) !== 0;
  }

  /** A waiting instruction with an error pending: #MF, or (CR0.NE = 0) nothing more here since FERR# is already out. */
  private checkPending(): void {
    if ((this.sw & SW_ES) !== 0 && (this.cpu.cr0 & C.CR0_NE) !== 0) this.cpu.fault(C.MF);
  }

  fwait(): void {
    this.checkPending();
  }

  // -------------------------------------------------------------------------------------
  // Dispatch
  // -------------------------------------------------------------------------------------

  exec(op: number, modrm: number, lin: number, seg: number, off: number, o32: boolean, pm: boolean, cs: number, eip: number): void {
    const reg = (modrm >> 3) & 7;
    const mem = modrm < 0xc0;
    // The control instructions that do not wait (FNINIT, FNCLEX, FNSTSW, FNSTCW, FNSTENV, FNSAVE).
    const noWait = (op === 0xdb && modrm === 0xe2) || (op === 0xdb && modrm === 0xe3) || (op === 0xdf && modrm === 0xe0) ||
      (mem && op === 0xd9 && (reg === 6 || reg === 7)) || (mem && op === 0xdd && (reg === 6 || reg === 7));
    if (!noWait) this.checkPending();
    this.raised = 0;
    const control = noWait || (mem && op === 0xd9 && (reg === 4 || reg === 5)) || (mem && op === 0xdd && reg === 4);
    if (!control) {
      // FIP/FCS and FOP name the last non-control instruction; FDP/FDS its memory operand.
      this.fip = pm ? eip : ((cs << 4) + eip) >>> 0;
      this.fcs = cs;
      this.fop = ((op & 7) << 8) | modrm;
      if (mem) {
        this.fdp = pm ? off >>> 0 : ((seg << 4) + (off & 0xffff)) >>> 0;
        this.fds = seg;
      }
    }
    if (mem) this.memoryOp(op, reg, lin, o32, pm);
    else this.registerOp(op, modrm);
  }

  private ud(): never {
    return this.cpu.undefinedOpcode();
  }

  // -------------------------------------------------------------------------------------
  // Memory forms
  // -------------------------------------------------------------------------------------

  private memoryOp(op: number, reg: number, lin: number, o32: boolean, pm: boolean): void {
    switch (op) {
      case 0xd8: { const m = this.loadReal(lin, 'single'); return this.arith(reg, 0, m.value, false, -1, m.flags & DE); }
      case 0xdc: { const m = this.loadReal(lin, 'double'); return this.arith(reg, 0, m.value, false, -1, m.flags & DE); }
      case 0xda: return this.arith(reg, 0, this.loadInt(lin, 4), false);
      case 0xde: return this.arith(reg, 0, this.loadInt(lin, 2), false);
      case 0xd9:
        switch (reg) {
          case 0: { const m = this.loadReal(lin, 'single'); return this.fldIeee(m.value, m.flags); }
          case 2: return this.storeReal(lin, 'single', false);
          case 3: return this.storeReal(lin, 'single', true);
          case 4: return this.fldenv(lin, o32, pm);
          case 5: this.cw = this.cpu.readLin16(lin) | 0x40; this.recheckPending(); return;
          case 6: this.fstenv(lin, o32, pm); this.cw |= 0x3f; return; // FNSTENV masks everything afterwards
          case 7: this.cpu.probeWrite(lin, 2); this.cpu.writeLin16(lin, this.cw); return;
          default: return this.ud();
        }
      case 0xdb:
        switch (reg) {
          case 0: return this.fld(this.loadInt(lin, 4));
          case 2: return this.storeInt(lin, 4, false);
          case 3: return this.storeInt(lin, 4, true);
          case 5: return this.push(this.load80(lin)); // FLD m80: as it is, no IE for an SNaN, no DE
          case 7: return this.store80(lin);
          default: return this.ud();
        }
      case 0xdd:
        switch (reg) {
          case 0: { const m = this.loadReal(lin, 'double'); return this.fldIeee(m.value, m.flags); }
          case 2: return this.storeReal(lin, 'double', false);
          case 3: return this.storeReal(lin, 'double', true);
          case 4: return this.frstor(lin, o32, pm);
          case 6: this.fsave(lin, o32, pm); return;
          case 7: this.cpu.probeWrite(lin, 2); this.cpu.writeLin16(lin, this.statusWord); return;
          default: return this.ud();
        }
      default: // 0xdf
        switch (reg) {
          case 0: return this.fld(this.loadInt(lin, 2));
          case 2: return this.storeInt(lin, 2, false);
          case 3: return this.storeInt(lin, 2, true);
          case 4: return this.fld(this.loadBcd(lin));
          case 5: return this.fld(this.loadInt(lin, 8));
          case 6: return this.storeBcd(lin);
          case 7: return this.storeInt(lin, 8, true);
          default: return this.ud();
        }
    }
  }

  /** FLDCW/FLDENV/FRSTOR/FCLEX may unmask a pending exception: ES follows what is unmasked now. */
  private recheckPending(): void {
    if ((this.sw & 0x3f & ~this.cw) !== 0) this.sw |= SW_ES | SW_B;
    else this.sw &= ~(SW_ES | SW_B);
  }

  private read64(lin: number): bigint {
    const lo = BigInt(this.cpu.readLin32(lin) >>> 0);
    const hi = BigInt(this.cpu.readLin32((lin + 4) | 0) >>> 0);
    return (hi << 32n) | lo;
  }

  private write64(lin: number, v: bigint): void {
    this.cpu.writeLin32(lin, Number(v & 0xffffffffn) | 0);
    this.cpu.writeLin32((lin + 4) | 0, Number((v >> 32n) & 0xffffffffn) | 0);
  }

  private loadReal(lin: number, fmt: 'single' | 'double'): { value: F80; flags: number } {
    const bits = fmt === 'single' ? BigInt(this.cpu.readLin32(lin) >>> 0) : this.read64(lin);
    return fromIeee(bits, fmt);
  }

  private loadInt(lin: number, size: 2 | 4 | 8): F80 {
    let v: bigint;
    if (size === 2) v = BigInt((this.cpu.readLin16(lin) << 16) >> 16);
    else if (size === 4) v = BigInt(this.cpu.readLin32(lin) | 0);
    else v = BigInt.asIntN(64, this.read64(lin));
    return fromInt(v);
  }

  private load80(lin: number): F80 {
    const b = new Uint8Array(10);
    for (let i = 0; i < 10; i++) b[i] = this.cpu.readLin8((lin + i) | 0);
    return fromBytes(b);
  }

  private loadBcd(lin: number): F80 {
    let v = 0n;
    for (let i = 8; i >= 0; i--) {
      const b = this.cpu.readLin8((lin + i) | 0);
      v = v * 100n + BigInt((b >> 4) * 10 + (b & 0xf));
    }
    const sign = this.cpu.readLin8((lin + 9) | 0) & 0x80;
    const r = fromInt(v);
    if (sign) r.sign = 1; // -0 stays negative zero
    return r;
  }

  /** FLD of an integer or BCD: exact, nothing to signal. */
  private fld(v: F80): void {
    this.push(v);
  }

  /**
   * FLD m32/m64: an SNaN source raises IE and loads quieted (nothing with IE unmasked); a
   * denormal source raises DE and loads anyway (SDM vol.2 FLD; measured on hardware).
   */
  private fldIeee(v: F80, flags: number): void {
    if (isSNaN(v)) v = quiet(v);
    if (flags) this.exception(flags);
    if ((this.raised & IE & ~this.cw) !== 0) return;
    this.push(v);
  }

  private storeReal(lin: number, fmt: 'single' | 'double', popAfter: boolean): void {
    const size = fmt === 'single' ? 4 : 8;
    this.cpu.probeWrite(lin, size);
    if (this.isEmpty(0)) {
      if (this.underflow()) return;
      const bits = toIeee(INDEFINITE, fmt, RC_NEAREST).bits;
      this.writeBits(lin, size, bits);
      if (popAfter) this.pop();
      return;
    }
    const v = this.get(0);
    if (isUnsupported(v)) {
      this.exception(IE);
      if (this.blocked()) return;
      this.writeBits(lin, size, toIeee(INDEFINITE, fmt, RC_NEAREST).bits);
      if (popAfter) this.pop();
      return;
    }
    const r = toIeee(v, fmt, this.rc);
    const flags = r.flags;
    this.sw = (this.sw & ~C1) | (r.up ? C1 : 0);
    if (flags) this.exception(flags);
    if (this.blocked() || (flags & (OE | UE) & ~this.cw)) return; // unmasked: memory unchanged
    this.writeBits(lin, size, r.bits);
    if (popAfter) this.pop();
  }

  private writeBits(lin: number, size: number, bits: bigint): void {
    if (size === 4) this.cpu.writeLin32(lin, Number(bits) | 0);
    else this.write64(lin, bits);
  }

  private storeInt(lin: number, size: 2 | 4 | 8, popAfter: boolean): void {
    this.cpu.probeWrite(lin, size);
    const indefinite = size === 2 ? 0x8000n : size === 4 ? 0x80000000n : 0x8000000000000000n;
    let out: bigint;
    if (this.isEmpty(0)) {
      if (this.underflow()) return;
      out = indefinite;
    } else {
      const v = this.get(0);
      if (isNaN80(v) || isInf(v) || isUnsupported(v)) {
        this.exception(IE);
        if (this.blocked()) return;
        out = indefinite;
      } else {
        const { value, inexact } = toIntegral(v, this.rc);
        const limit = 1n << BigInt(size * 8 - 1);
        if (value < -limit || value >= limit) {
          this.exception(IE);
          if (this.blocked()) return;
          out = indefinite;
        } else {
          this.sw = (this.sw & ~C1) | (inexact && roundedAway(v, value) ? C1 : 0);
          if (inexact) this.exception(PE);
          out = BigInt.asUintN(size * 8, value);
        }
      }
    }
    if (size === 2) this.cpu.writeLin16(lin, Number(out));
    else if (size === 4) this.cpu.writeLin32(lin, Number(out) | 0);
    else this.write64(lin, out);
    if (popAfter) this.pop();
  }

  private store80(lin: number): void {
    this.cpu.probeWrite(lin, 10);
    let v: F80;
    if (this.isEmpty(0)) {
      if (this.underflow()) return;
      v = INDEFINITE;
    } else {
      v = this.get(0);
    }
    const b = new Uint8Array(10);
    toBytes(v, b);
    for (let i = 0; i < 10; i++) this.cpu.writeLin8((lin + i) | 0, b[i]);
    this.pop();
  }

  private storeBcd(lin: number): void {
    this.cpu.probeWrite(lin, 10);
    const b = new Uint8Array(10);
    let invalid = false;
    if (this.isEmpty(0)) {
      if (this.underflow()) return;
      invalid = true;
    } else {
      const v = this.get(0);
      if (isNaN80(v) || isInf(v) || isUnsupported(v)) invalid = true;
      else {
        const { value, inexact } = toIntegral(v, this.rc);
        const mag = value < 0n ? -value : value;
        if (mag >= 10n ** 18n) invalid = true;
        else {
          this.sw = (this.sw & ~C1) | (inexact && roundedAway(v, value) ? C1 : 0);
          if (inexact) this.exception(PE);
          let m = mag;
          for (let i = 0; i < 9; i++) {
            const lo = Number(m % 10n);
            m /= 10n;
            const hi = Number(m % 10n);
            m /= 10n;
            b[i] = (hi << 4) | lo;
          }
          b[9] = v.sign ? 0x80 : 0;
        }
      }
      if (invalid) {
        this.exception(IE);
        if (this.blocked()) return;
      }
    }
    if (invalid) {
      // The packed BCD indefinite: FFFF C000 0000 0000 0000.
      b.fill(0);
      b[7] = 0xc0;
      b[8] = 0xff;
      b[9] = 0xff;
    }
    for (let i = 0; i < 10; i++) this.cpu.writeLin8((lin + i) | 0, b[i]);
    this.pop();
  }

  // -------------------------------------------------------------------------------------
  // Arithmetic
  // -------------------------------------------------------------------------------------

  /**
   * The eight basic operations by the ModRM reg field: add, mul, com, comp, sub, subr, div, divr.
   * `dst` is the ST index written (0 for the D8 forms and memory operands).
   */
  private arith(kind: number, dst: number, operand: F80 | null, popAfter: boolean, srcIndex = -1, operandFlags = 0): void {
    if (this.isEmpty(dst) || (srcIndex >= 0 && this.isEmpty(srcIndex))) {
      if (this.underflow()) return;
      if (kind === 2 || kind === 3) {
        this.sw |= C0 | C2 | C3;
        if (kind === 3) this.pop();
        return;
      }
      this.set(dst, INDEFINITE);
      if (popAfter) this.pop();
      return;
    }
    const a = this.get(dst);
    const b = operand ?? this.get(srcIndex);
    if (kind === 2 || kind === 3) {
      this.compareInto(a, b, false, false, operandFlags);
      if (kind === 3 && !this.blocked()) this.pop();
      return;
    }
    const [x, y] = kind === 5 || kind === 7 ? [b, a] : [a, b];
    const result = this.binary(kind === 0 ? 'add' : kind === 1 ? 'mul' : kind === 4 || kind === 5 ? 'sub' : 'div', x, y, operandFlags);
    if (result && !this.blocked()) this.set(dst, result);
    if (popAfter && !this.blocked()) this.pop();
  }

  /** x op y with the IEEE special cases of SDM vol.1 tables 8-10 and 4-7 to 4-9. */
  private binary(op: 'add' | 'sub' | 'mul' | 'div', x: F80, y: F80, operandFlags = 0): F80 | null {
    if (isUnsupported(x) || isUnsupported(y)) {
      this.exception(IE);
      return INDEFINITE;
    }
    if (isNaN80(x) || isNaN80(y)) return this.nanResult(x, y);
    // A denormal memory operand was widened to a normal extended value: its DE comes from the load.
    let flags = operandFlags & DE;
    if (isDenormal(x) || isDenormal(y)) flags |= DE;
    const ys = op === 'sub' ? { ...y, sign: y.sign ^ 1 } : y;
    if (op === 'add' || op === 'sub') {
      if (isInf(x) && isInf(ys)) {
        if (x.sign !== ys.sign) return this.invalid(flags);
        this.exception(flags);
        return x;
      }
      if (isInf(x)) { this.exception(flags); return x; }
      if (isInf(ys)) { this.exception(flags); return { ...INF_OF(ys.sign) }; }
      return this.rounded(add(x, ys, this.pc, this.rc), flags);
    }
    const sign = x.sign ^ y.sign;
    if (op === 'mul') {
      if ((isInf(x) && isZero(y)) || (isZero(x) && isInf(y))) return this.invalid(flags);
      if (isInf(x) || isInf(y)) { this.exception(flags); return INF_OF(sign); }
      if (isZero(x) || isZero(y)) { this.exception(flags); return { sign, exp: 0, mant: 0n }; }
      return this.rounded(mul(x, y, this.pc, this.rc), flags);
    }
    // div
    if ((isInf(x) && isInf(y)) || (isZero(x) && isZero(y))) return this.invalid(flags);
    if (isInf(x)) { this.exception(flags); return INF_OF(sign); }
    if (isInf(y)) { this.exception(flags); return { sign, exp: 0, mant: 0n }; }
    if (isZero(y)) {
      this.exception(flags | ZE);
      return INF_OF(sign);
    }
    if (isZero(x)) { this.exception(flags); return { sign, exp: 0, mant: 0n }; }
    return this.rounded(div(x, y, this.pc, this.rc), flags);
  }

  private rounded(r: { value: F80; flags: number; up: boolean }, flags: number): F80 {
    this.sw = (this.sw & ~C1) | (r.up ? C1 : 0);
    this.exception(flags | r.flags);
    return r.value;
  }

  private invalid(flags: number): F80 {
    this.exception(flags | IE);
    return INDEFINITE;
  }

  /**
   * NaN operands (SDM vol.1 table 4-7): an SNaN raises IE. One NaN: it, quieted. Two of a
   * kind: the larger significand, quieted. An SNaN and a QNaN: the QNaN.
   */
  private nanResult(x: F80, y: F80): F80 {
    const sx = isSNaN(x), sy = isSNaN(y);
    if (sx || sy) this.exception(IE);
    const nx = isNaN80(x), ny = isNaN80(y);
    if (nx && ny) {
      if (sx !== sy) return sx ? y : x;
      const mx = x.mant & 0xbfffffffffffffffn, my = y.mant & 0xbfffffffffffffffn;
      return quiet(mx > my ? x : mx < my ? y : x.sign <= y.sign ? x : y);
    }
    return quiet(nx ? x : y);
  }

  /**
   * Two-operand instructions outside the basic four (FPREM, FPREM1, FSCALE) with a NaN or an
   * unsupported encoding, as measured on hardware: an unsupported ST1 or an unnormal ST0
   * gives the indefinite; otherwise a NaN wins (with IE when the other operand is a
   * pseudo-NaN/pseudo-infinity); null when neither applies.
   */
  private nanOrUnsupported(x: F80, y: F80): F80 | null {
    if (isUnsupported(y)) return this.invalid(0);
    if (isNaN80(x)) {
      if (isNaN80(y)) return this.nanResult(x, y);
      this.exception(isSNaN(x) ? IE : 0);
      return quiet(x);
    }
    if (isNaN80(y)) {
      if (isUnsupported(x) && x.exp !== MAX_EXP) return this.invalid(0);
      this.exception(isSNaN(y) || isUnsupported(x) ? IE : 0);
      return quiet(y);
    }
    if (isUnsupported(x) || isUnsupported(y)) return this.invalid(0);
    return null;
  }

  /** FCOM/FUCOM into C3 C2 C0 (or ZF PF CF for FCOMI); `unordered` = the FUCOM flavour. */
  private compareInto(a: F80, b: F80, quietNaN: boolean, eflags = false, operandFlags = 0): void {
    let c3 = 0, c2 = 0, c0 = 0;
    if (isNaN80(a) || isNaN80(b) || isUnsupported(a) || isUnsupported(b)) {
      if (!quietNaN || isSNaN(a) || isSNaN(b) || isUnsupported(a) || isUnsupported(b)) this.exception(IE);
      c3 = c2 = c0 = 1;
    } else {
      if (isDenormal(a) || isDenormal(b) || (operandFlags & DE)) this.exception(DE);
      const r = compare(a, b);
      if (r < 0) c0 = 1;
      else if (r === 0) c3 = 1;
    }
    if (this.blocked()) return;
    if (eflags) {
      const c = this.cpu;
      c.setStatusFlags(C.ZF | C.PF | C.CF | C.OF | C.SF | C.AF, (c3 ? C.ZF : 0) | (c2 ? C.PF : 0) | (c0 ? C.CF : 0));
      this.sw &= ~C1;
      return;
    }
    this.sw = (this.sw & ~CC_MASK) | (c0 ? C0 : 0) | (c2 ? C2 : 0) | (c3 ? C3 : 0);
  }

  // -------------------------------------------------------------------------------------
  // Register forms
  // -------------------------------------------------------------------------------------

  private registerOp(op: number, modrm: number): void {
    const i = modrm & 7;
    const reg = (modrm >> 3) & 7;
    switch (op) {
      case 0xd8: return this.arith(reg, 0, null, false, i);
      case 0xdc:
        // ST(i) = ST(i) op ST(0); the SUB/SUBR and DIV/DIVR encodings swap here (SDM vol.2 FSUB).
        if (reg === 2 || reg === 3) return this.arith(reg, 0, null, false, i); // FCOM2/FCOMP3 aliases
        return this.arith(reg ^ (reg >= 4 ? 1 : 0), i, null, false, 0);
      case 0xde:
        if (reg === 2) return this.arith(3, 0, null, false, i); // FCOMP5 alias
        if (reg === 3) {
          if (modrm !== 0xd9) return this.ud();
          this.arith(3, 0, null, false, 1); // FCOMPP
          if (!this.blocked()) this.pop();
          return;
        }
        return this.arith(reg ^ (reg >= 4 ? 1 : 0), i, null, true, 0);
      case 0xd9: return this.d9(modrm, reg, i);
      case 0xda:
        if (reg <= 3) return this.fcmov(reg, false, i);
        if (modrm === 0xe9) { // FUCOMPP
          this.ucom(1, true);
          if (!this.blocked()) this.pop();
          return;
        }
        return this.ud();
      case 0xdb:
        if (reg <= 3) return this.fcmov(reg, true, i);
        if (reg === 5) return this.comi(i, true, false);
        if (reg === 6) return this.comi(i, false, false);
        switch (modrm) {
          case 0xe0: case 0xe1: case 0xe4: return; // FENI, FDISI, FSETPM: no-ops on a 387 and later
          case 0xe2: this.sw &= ~(0x3f | SW_SF | SW_ES | SW_B); return; // FNCLEX
          case 0xe3: this.finit(); return;
          default: return this.ud();
        }
      case 0xdd:
        switch (reg) {
          case 0: this.empty[this.phys(i)] = 1; return; // FFREE
          case 1: return this.fxch(i); // FXCH4 alias
          case 2: return this.fstReg(i, false);
          case 3: return this.fstReg(i, true);
          case 4: return this.ucom(i, false);
          case 5: return this.ucom(i, true);
          default: return this.ud();
        }
      default: // 0xdf
        switch (reg) {
          case 0: this.empty[this.phys(i)] = 1; this.pop(); return; // FFREEP
          case 1: return this.fxch(i);
          case 2: case 3: return this.fstReg(i, true); // FSTP8/FSTP9 aliases
          case 4:
            if (modrm !== 0xe0) return this.ud();
            this.cpu.r16[0] = this.statusWord; // FNSTSW AX
            return;
          case 5: return this.comi(i, true, true);
          case 6: return this.comi(i, false, true);
          default: return this.ud();
        }
    }
  }

  private fxch(i: number): void {
    if (this.isEmpty(0) || this.isEmpty(i)) {
      if (this.underflow()) return;
      if (this.isEmpty(0)) this.set(0, INDEFINITE);
      if (this.isEmpty(i)) this.set(i, INDEFINITE);
    }
    const a = this.get(0);
    this.set(0, this.get(i));
    this.set(i, a);
    this.sw &= ~C1;
  }

  private fstReg(i: number, popAfter: boolean): void {
    if (this.isEmpty(0)) {
      if (this.underflow()) return;
      this.set(i, INDEFINITE);
    } else {
      this.set(i, this.get(0));
    }
    if (popAfter) this.pop();
  }

  private ucom(i: number, popAfter: boolean): void {
    if (this.isEmpty(0) || this.isEmpty(i)) {
      if (this.underflow()) return;
      this.sw |= C0 | C2 | C3;
    } else {
      this.compareInto(this.get(0), this.get(i), true);
    }
    if (popAfter && !this.blocked()) this.pop();
  }

  /** FCOMI/FUCOMI(P): the comparison goes to ZF, PF and CF. */
  private comi(i: number, unordered: boolean, popAfter: boolean): void {
    if (this.isEmpty(0) || this.isEmpty(i)) {
      if (this.underflow()) return;
      this.cpu.setStatusFlags(C.ZF | C.PF | C.CF | C.OF | C.SF | C.AF, C.ZF | C.PF | C.CF);
    } else {
      this.compareInto(this.get(0), this.get(i), unordered, true);
    }
    if (popAfter && !this.blocked()) this.pop();
  }

  /** FCMOVcc (P6): B, E, BE, U and their negations from EFLAGS. */
  private fcmov(cc: number, negate: boolean, i: number): void {
    const c = this.cpu;
    let cond = cc === 0 ? c.cf() : cc === 1 ? c.zf() : cc === 2 ? c.cf() || c.zf() : c.pf();
    if (negate) cond = !cond;
    if (this.isEmpty(i) || this.isEmpty(0)) {
      if (this.underflow()) return;
      if (cond) this.set(0, INDEFINITE);
      return;
    }
    this.sw &= ~C1;
    if (cond) this.set(0, this.get(i));
  }

  private d9(modrm: number, reg: number, i: number): void {
    switch (reg) {
      case 0: { // FLD ST(i)
        if (this.isEmpty(i)) {
          if (this.underflow()) return;
          this.push(INDEFINITE);
          return;
        }
        this.push(this.get(i));
        return;
      }
      case 1: return this.fxch(i);
      case 2:
        if (modrm !== 0xd0) return this.ud();
        return; // FNOP
      case 3: return this.fstReg(i, true); // FSTP1 alias
      default: break;
    }
    if (modrm >= 0xe8 && modrm <= 0xee) return this.loadConstant(modrm);
    switch (modrm) {
      case 0xe0: return this.unary((v) => ({ ...v, sign: v.sign ^ 1 }), false); // FCHS
      case 0xe1: return this.unary((v) => ({ ...v, sign: 0 }), false); // FABS
      case 0xe4: // FTST
        if (this.isEmpty(0)) {
          if (this.underflow()) return;
          this.sw |= C0 | C2 | C3;
          return;
        }
        this.compareInto(this.get(0), { sign: 0, exp: 0, mant: 0n }, false);
        return;
      case 0xe5: return this.fxam();
      case 0xf0: return this.f2xm1();
      case 0xf1: return this.fyl2x();
      case 0xf2: return this.fptan();
      case 0xf3: return this.fpatan();
      case 0xf4: return this.fxtract();
      case 0xf5: return this.fprem(true);
      case 0xf6: this.top = (this.top - 1) & 7; this.sw &= ~C1; return; // FDECSTP
      case 0xf7: this.top = (this.top + 1) & 7; this.sw &= ~C1; return; // FINCSTP
      case 0xf8: return this.fprem(false);
      case 0xf9: return this.fyl2xp1();
      case 0xfa: return this.fsqrt();
      case 0xfb: return this.fsincos();
      case 0xfc: return this.frndint();
      case 0xfd: return this.fscale();
      case 0xfe: return this.trig(false); // FSIN
      case 0xff: return this.trig(true); // FCOS
      default: return this.ud();
    }
  }

  private unary(f: (v: F80) => F80, _arith: boolean): void {
    if (this.st0Empty()) return;
    this.sw &= ~C1;
    this.set(0, f(this.get(0)));
  }

  private loadConstant(modrm: number): void {
    const k = CONSTANTS[modrm];
    if (!k) return this.push({ sign: 0, exp: 0, mant: 0n });
    // Rounded from the internal 66+-bit constant under RC (not PC), SDM vol.1 §8.3.8.
    const r = roundTo80(0, k.mant, k.e - 127, false, 64, this.rc);
    this.push(r.value);
  }

  private fxam(): void {
    const p = this.phys(0);
    const v = this.r[p];
    let cc: number;
    if (this.empty[p]) cc = C3 | C0;
    else if (isUnsupported(v)) cc = 0;
    else if (isNaN80(v)) cc = C0;
    else if (isInf(v)) cc = C2 | C0;
    else if (isZero(v)) cc = C3;
    else if (v.exp === 0) cc = C3 | C2;
    else cc = C2;
    this.sw = (this.sw & ~CC_MASK) | cc | (v.sign ? C1 : 0);
  }

  private fsqrt(): void {
    if (this.st0Empty()) return;
    const v = this.get(0);
    let out: F80;
    if (isUnsupported(v)) out = this.invalid(0);
    else if (isNaN80(v)) out = this.nanResult(v, v);
    else if (isZero(v)) out = v; // sqrt(-0) = -0
    else if (v.sign) out = this.invalid(0);
    else if (isInf(v)) out = v;
    else out = this.rounded(sqrt(v, this.pc, this.rc), isDenormal(v) ? DE : 0);
    if (!this.blocked()) this.set(0, out);
  }

  private frndint(): void {
    if (this.st0Empty()) return;
    const v = this.get(0);
    if (isNaN80(v) || isUnsupported(v)) {
      const out = isUnsupported(v) ? this.invalid(0) : this.nanResult(v, v);
      if (!this.blocked()) this.set(0, out);
      return;
    }
    if (isInf(v) || isZero(v) || v.exp - BIAS >= 63) return;
    const { value, inexact } = toIntegral(v, this.rc);
    this.sw = (this.sw & ~C1) | (inexact && roundedAway(v, value) ? C1 : 0);
    if (inexact) this.exception(PE | (isDenormal(v) ? DE : 0));
    const r = fromInt(value);
    if (value === 0n) r.sign = v.sign; // rounding keeps the sign of zero
    this.set(0, r);
  }

  private fscale(): void {
    if (this.isEmpty(0) || this.isEmpty(1)) {
      if (this.underflow()) return;
      this.set(0, INDEFINITE);
      return;
    }
    const x = this.get(0);
    const y = this.get(1);
    const special = this.nanOrUnsupported(x, y);
    if (special) { if (!this.blocked()) this.set(0, special); return; }
    if (isInf(y)) {
      // 2^+inf scales to infinity (or is invalid for 0); 2^-inf to zero (invalid for infinity).
      if ((y.sign === 0 && isZero(x)) || (y.sign === 1 && isInf(x))) { const r = this.invalid(0); if (!this.blocked()) this.set(0, r); return; }
      if (!isZero(x) && !isInf(x)) this.set(0, y.sign ? { sign: x.sign, exp: 0, mant: 0n } : INF_OF(x.sign));
      return;
    }
    const de = isDenormal(x) || isDenormal(y) ? DE : 0;
    if (isZero(x) || isInf(x)) {
      if (de) this.exception(de);
      return;
    }
    const n = toIntegral(y, RC_ZERO).value;
    const clamped = n > 100000n ? 100000 : n < -100000n ? -100000 : Number(n);
    const u = unpack(x);
    let r = roundTo80(x.sign, u.sig, u.exp2 + clamped, false, 64, this.rc);
    // Unmasked underflow/overflow: the result with its exponent moved by 24576 into range (SDM vol.1 §8.5.4-8.5.5).
    if ((r.flags & UE & ~this.cw) !== 0 || (r.flags & OE & ~this.cw) !== 0) {
      const under = (r.flags & UE) !== 0;
      const adj = roundTo80(x.sign, u.sig, u.exp2 + clamped + (under ? 24576 : -24576), false, 64, this.rc);
      r = { value: adj.value, flags: (under ? UE : OE) | (adj.flags & PE), up: adj.up };
    }
    this.set(0, this.rounded(r, de));
  }

  private fxtract(): void {
    if (this.isEmpty(0)) {
      if (this.underflow()) return;
      this.set(0, INDEFINITE);
      this.push(INDEFINITE);
      return;
    }
    const v = this.get(0);
    if (isUnsupported(v)) {
      this.exception(IE);
      if (this.blocked()) return;
      this.set(0, INDEFINITE);
      this.push(INDEFINITE);
      return;
    }
    if (isZero(v)) {
      // Exponent -infinity with ZE; significand the zero itself.
      this.exception(ZE);
      if (this.blocked()) return;
      this.set(0, INF_OF(1));
      this.push(v);
      return;
    }
    if (isInf(v)) {
      this.set(0, INF_OF(0));
      this.push(v);
      return;
    }
    if (isNaN80(v)) {
      const q = this.nanResult(v, v);
      if (this.blocked()) return;
      this.set(0, q);
      this.push(q);
      return;
    }
    const u = unpack(v);
    const lead = u.sig.toString(2).length - 1;
    const exponent = u.exp2 + lead;
    const significand = roundTo80(v.sign, u.sig, -lead, false, 64, RC_NEAREST).value;
    if (isDenormal(v)) this.exception(DE);
    this.set(0, fromInt(BigInt(exponent)));
    this.push(significand);
  }

  /** FPREM (truncating quotient) and FPREM1 (IEEE, nearest): partial remainder with C2 set when incomplete. */
  private fprem(ieee: boolean): void {
    if (this.isEmpty(0) || this.isEmpty(1)) {
      if (this.underflow()) return;
      this.set(0, INDEFINITE);
      return;
    }
    const x = this.get(0);
    const y = this.get(1);
    const special = this.nanOrUnsupported(x, y);
    if (special) { if (!this.blocked()) this.set(0, special); return; }
    if (isInf(x) || isZero(y)) { const r = this.invalid(0); if (!this.blocked()) this.set(0, r); return; }
    if (isZero(x) || isInf(y)) {
      this.sw &= ~(C0 | C1 | C2 | C3);
      return;
    }
    if (isDenormal(x) || isDenormal(y)) this.exception(DE);
    const ux = unpack(x);
    const uy = unpack(y);
    const ex = ux.exp2 + ux.sig.toString(2).length;
    const ey = uy.exp2 + uy.sig.toString(2).length;
    const d = ex - ey;
    if (d >= 64) {
      // Partial: reduce by ST1 * 2^(d - N) with N between 32 and 63 (the P6 uses 32...63), C2 = 1.
      const n = 32 + ((d - 32) % 32);
      const shift = d - n;
      const scaledExp = uy.exp2 + shift;
      // q = trunc(x / (y * 2^shift)) and the exact remainder.
      const [num, den, k] = alignForDivide(ux, { sig: uy.sig, exp2: scaledExp });
      const q = num / den;
      const rem = num - q * den;
      const r = roundTo80(x.sign, rem, k, false, 64, RC_NEAREST).value;
      this.set(0, rem === 0n ? { sign: x.sign, exp: 0, mant: 0n } : r);
      this.sw = (this.sw & ~(C0 | C1 | C3)) | C2;
      return;
    }
    const [num, den, k] = alignForDivide(ux, uy);
    let q = num / den;
    let rem = num - q * den;
    let sign = x.sign;
    if (ieee) {
      // Round the quotient to nearest (ties to even): the remainder may change sign.
      const twice = rem * 2n;
      if (twice > den || (twice === den && (q & 1n) === 1n)) {
        q += 1n;
        rem = den - rem;
        sign ^= 1;
      }
    }
    const value = rem === 0n ? { sign: x.sign, exp: 0, mant: 0n } : roundTo80(sign, rem, k, false, 64, RC_NEAREST).value;
    this.set(0, value);
    const q2 = Number(q & 7n);
    this.sw = (this.sw & ~CC_MASK) | ((q2 & 4) ? C0 : 0) | ((q2 & 2) ? C3 : 0) | ((q2 & 1) ? C1 : 0);
  }

  // -------------------------------------------------------------------------------------
  // Transcendental instructions (values from transcendental.ts; the special operands here
  // follow the tables of each instruction in SDM vol.2)
  // -------------------------------------------------------------------------------------

  /** A transcendental result, inexact by nature: rounded once to 64 bits under RC, C1 if rounded up. */
  private roundBig(v: Big, flags: number): F80 {
    const sign = v.m < 0n ? 1 : 0;
    return this.rounded(roundTo80(sign, sign ? -v.m : v.m, v.e, true, 64, this.rc), flags);
  }

  private toBig(v: F80): Big {
    const u = unpack(v);
    return fromParts(v.sign, u.sig, u.exp2);
  }

  /**
   * An operand no function takes: a NaN (propagated) or an unsupported encoding (invalid).
   * Returns the result to store, or null for an ordinary operand.
   */
  private oddOperand(v: F80): F80 | null {
    if (isNaN80(v)) return this.nanResult(v, v);
    if (isUnsupported(v)) return this.invalid(0);
    return null;
  }

  /**
   * A denormal operand raises DE before anything is computed: unmasked, the instruction
   * stops there with no other flag (as measured on an x87). True: stop.
   */
  private denormalStops(...operands: F80[]): boolean {
    if (!operands.some(isDenormal)) return false;
    this.exception(DE);
    return this.blocked();
  }

  /**
   * Where the second term of the series (x^3/6 or x^3/3 for sin and tan, x^2/2 for cos)
   * underflows the extended range, the x87 answers x, or 1, as they are: flagged inexact (and
   * underflow for a denormal x), C1 clear, whatever the rounding mode (measured: a denormal
   * or the smallest normal under round-down or round-up still gives x and 1). Returns the
   * result, or null for an ordinary argument.
   */
  private tinyTrig(v: F80, cos: boolean): F80 | null {
    const e = v.exp === 0 ? 1 - BIAS - 64 : v.exp - BIAS;
    if ((cos ? 2 : 3) * e >= -16445) return null;
    this.exception(PE | (!cos && isDenormal(v) ? UE : 0));
    return cos ? ONE_80 : v;
  }

  /** FSIN, FCOS: |x| >= 2^63 is out of range (C2 = 1, ST0 unchanged); infinity is invalid. */
  private trig(cos: boolean): void {
    if (this.st0Empty()) return;
    const v = this.get(0);
    this.sw &= ~(C1 | C2);
    let out = this.oddOperand(v);
    if (!out && isInf(v)) out = this.invalid(0);
    if (!out && v.exp - BIAS >= 63) { this.sw |= C2; return; }
    if (!out && isZero(v)) out = cos ? ONE_80 : v;
    if (!out) {
      if (this.denormalStops(v)) return;
      out = this.tinyTrig(v, cos);
      if (!out) {
        const u = unpack(v);
        const r = sinCos(v.sign, u.sig, u.exp2);
        out = this.roundBig(cos ? r.cos : r.sin, 0);
      }
    }
    if (!this.blocked()) this.set(0, out);
  }

  /**
   * FPTAN and FSINCOS leave two results: with ST0 empty or ST7 full, the stack fault, and
   * when it is masked both results are the indefinite. True: the instruction ends here.
   */
  private twoResultStackFault(): boolean {
    const under = this.isEmpty(0);
    if (!under && this.isEmpty(7)) return false;
    this.sw = under ? this.sw & ~C1 : this.sw | C1;
    this.exception(IE | SW_SF);
    if (this.cw & IE) {
      this.set(0, INDEFINITE);
      this.top = (this.top - 1) & 7;
      this.set(0, INDEFINITE);
    }
    return true;
  }

  /**
   * What FPTAN and FSINCOS share before their functions: the stack faults, a NaN or invalid
   * operand (its NaN becomes both results), an operand out of range (C2 = 1, nothing else).
   * Returns the operand, or null when the instruction is done.
   */
  private twoResultOperand(): F80 | null {
    if (this.twoResultStackFault()) return null;
    const v = this.get(0);
    this.sw &= ~(C1 | C2);
    let nan = this.oddOperand(v);
    if (!nan && isInf(v)) nan = this.invalid(0);
    if (nan) {
      if (!this.blocked()) {
        this.set(0, nan);
        this.push(nan);
      }
      return null;
    }
    if (v.exp - BIAS >= 63) {
      this.sw |= C2;
      return null;
    }
    return v;
  }

  /** FPTAN: ST0 = tan(ST0), then push 1.0 (a NaN or invalid result is pushed again instead). */
  private fptan(): void {
    const v = this.twoResultOperand();
    if (!v) return;
    let out = v;
    if (!isZero(v)) {
      if (this.denormalStops(v)) return;
      const u = unpack(v);
      out = this.tinyTrig(v, false) ?? this.roundBig(tan(v.sign, u.sig, u.exp2), 0);
    }
    if (this.blocked()) return;
    this.set(0, out);
    this.push(ONE_80);
  }

  /** FSINCOS: ST0 = sin(ST0), then push cos: ST1 = sin, ST0 = cos. */
  private fsincos(): void {
    const v = this.twoResultOperand();
    if (!v) return;
    let sin = v;
    let cos = ONE_80;
    if (!isZero(v)) {
      if (this.denormalStops(v)) return;
      const u = unpack(v);
      const r = sinCos(v.sign, u.sig, u.exp2);
      // C1 reports the rounding of the result left in ST0: the cosine.
      sin = this.tinyTrig(v, false) ?? this.roundBig(r.sin, 0);
      cos = this.tinyTrig(v, true) ?? this.roundBig(r.cos, 0);
    }
    if (this.blocked()) return;
    this.set(0, sin);
    this.push(cos);
  }

  /**
   * F2XM1: 2^x - 1 for -1 <= x <= +1. Beyond that the SDM leaves the result undefined; an x87
   * leaves ST0 as it was and flags it inexact (measured for 1.5 to 1e20 of either sign).
   */
  private f2xm1(): void {
    if (this.st0Empty()) return;
    const v = this.get(0);
    this.sw &= ~C1;
    let out = this.oddOperand(v);
    if (!out && isInf(v)) out = v.sign ? { sign: 1, exp: BIAS, mant: 1n << 63n } : v; // -1 or +inf, exact
    if (!out && isZero(v)) out = v;
    // 2^1 - 1 = 1 and 2^-1 - 1 = -1/2, exact, yet flagged inexact as by the x87 itself.
    if (!out && v.exp === BIAS && v.mant === 1n << 63n) {
      this.exception(PE);
      out = v.sign ? { sign: 1, exp: BIAS - 1, mant: 1n << 63n } : v;
    }
    if (!out && this.denormalStops(v)) return;
    if (!out && v.exp >= BIAS) { this.exception(PE); out = v; }
    out ??= this.roundBig(exp2m1(this.toBig(v)), 0);
    if (!this.blocked()) this.set(0, out);
  }

  /**
   * FPATAN, FYL2X, FYL2XP1: ST1 = f(ST0, ST1), then pop. `special` gives the result for
   * zero, infinite or out-of-domain operands (a zero, an infinity, a multiple of pi/4 or
   * the invalid indefinite) or null; `value` computes the rest.
   */
  private binaryPop(special: (x: F80, y: F80) => F80 | null, value: (x: F80, y: F80) => Big): void {
    if (this.isEmpty(0) || this.isEmpty(1)) {
      if (this.underflow()) return;
      this.set(1, INDEFINITE);
      this.pop();
      return;
    }
    const x = this.get(0);
    const y = this.get(1);
    this.sw &= ~C1;
    const odd = this.nanOrUnsupported(x, y);
    if (!odd && this.denormalStops(x, y)) return;
    let out = odd ?? special(x, y);
    if (out === null) out = this.roundBig(value(x, y), 0);
    if (this.blocked()) return;
    this.set(1, out);
    this.pop();
  }

  /** FPATAN: atan2(ST1, ST0). Zeros and infinities give a signed zero or a multiple of pi/4 (SDM vol.2 FPATAN table). */
  private fpatan(): void {
    this.binaryPop(
      (x, y) => {
        if (!isZero(x) && !isZero(y) && !isInf(x) && !isInf(y)) return null;
        const a = Math.atan2(proxy(y, 1), proxy(x, 1));
        const quarters = Math.round(a / (Math.PI / 4));
        if (quarters === 0) return { sign: Object.is(a, -0) || a < 0 ? 1 : 0, exp: 0, mant: 0n };
        return this.roundBig(times(quarters, piQuarter()), 0);
      },
      (x, y) => atan2(this.toBig(y), this.toBig(x)),
    );
  }

  /** FYL2X: ST1 * log2(ST0). A zero ST0 with a finite nonzero ST1 divides by zero (ZE). */
  private fyl2x(): void {
    this.binaryPop(
      (x, y) => {
        const one = x.exp === BIAS && x.mant === 1n << 63n && !x.sign;
        if (!isZero(x) && !isZero(y) && !isInf(x) && !isInf(y) && !x.sign && !one) return null;
        // Stand-ins that keep what matters: the sign and class of each, and x against 1.
        const px = isZero(x) || isInf(x) ? proxy(x, 1) : x.sign ? -2 : one ? 1 : x.exp < BIAS ? 0.5 : 2;
        return this.fromSpecial(proxy(y, 3) * Math.log2(px), isZero(x) && !isZero(y) && !isInf(y));
      },
      (x, y) => {
        // A power of two: log2 is its exponent, and the product is rounded from exact.
        if (x.mant === 1n << 63n && x.exp !== 0) return times(x.exp - BIAS, this.toBig(y));
        return ylog2x(this.toBig(y), this.toBig(x));
      },
    );
  }

  /** FYL2XP1: ST1 * log2(1 + ST0), meant for |ST0| < 1 - sqrt(2)/2. */
  private fyl2xp1(): void {
    this.binaryPop(
      (x, y) => {
        // 1 + x <= 0 has no logarithm: invalid (outside the range the SDM defines anyway).
        if (!isInf(x) && x.sign && x.exp >= BIAS) return this.invalid(0);
        if (!isZero(x) && !isZero(y) && !isInf(x) && !isInf(y)) return null;
        return this.fromSpecial(proxy(y, 3) * Math.log1p(proxy(x, 0.25)), false);
      },
      (x, y) => ylog2xp1(this.toBig(y), this.toBig(x)),
    );
  }

  /** A special-operand result computed on stand-ins: NaN is invalid; otherwise a zero or an infinity, exact. */
  private fromSpecial(r: number, divideByZero: boolean): F80 {
    if (Number.isNaN(r)) return this.invalid(0);
    if (divideByZero) this.exception(ZE);
    if (r === 0) return { sign: Object.is(r, -0) ? 1 : 0, exp: 0, mant: 0n };
    return INF_OF(r < 0 ? 1 : 0);
  }

  // -------------------------------------------------------------------------------------
  // Environment and state images (SDM vol.1 §8.1.10, figures 8-9 to 8-12)
  // -------------------------------------------------------------------------------------

  /** The full tag word: two bits per physical register. */
  tagWord(): number {
    let tw = 0;
    for (let p = 0; p < 8; p++) tw |= this.tag(p) << (2 * p);
    return tw;
  }

  private setTagWord(tw: number): void {
    for (let p = 0; p < 8; p++) this.empty[p] = ((tw >> (2 * p)) & 3) === TAG_EMPTY ? 1 : 0;
  }

  private envSize(o32: boolean): number {
    return o32 ? 28 : 14;
  }

  private fstenv(lin: number, o32: boolean, pm: boolean): void {
    this.cpu.probeWrite(lin, this.envSize(o32));
    const words = this.envWords(o32, pm);
    const step = o32 ? 4 : 2;
    words.forEach((w, k) => {
      if (o32) this.cpu.writeLin32((lin + k * step) | 0, w);
      else this.cpu.writeLin16((lin + k * step) | 0, w & 0xffff);
    });
  }

  private envWords(o32: boolean, pm: boolean): number[] {
    const cw = this.cw | (o32 ? 0xffff0000 : 0);
    const sw = this.statusWord | (o32 ? 0xffff0000 : 0);
    const tw = this.tagWord() | (o32 ? 0xffff0000 : 0);
    if (pm) {
      if (o32) return [cw, sw, tw, this.fip, ((this.fop & 0x7ff) << 16) | (this.fcs & 0xffff), this.fdp, 0xffff0000 | (this.fds & 0xffff)];
      return [cw, sw, tw, this.fip & 0xffff, this.fcs, this.fdp & 0xffff, this.fds];
    }
    // Real and v86 mode: 20-bit (32-bit: 32-bit) linear pointers split around FOP.
    if (o32) {
      return [cw, sw, tw, 0xffff0000 | (this.fip & 0xffff), ((this.fip >>> 16) << 12) | (this.fop & 0x7ff),
        0xffff0000 | (this.fdp & 0xffff), (this.fdp >>> 16) << 12];
    }
    return [cw, sw, tw, this.fip & 0xffff, (((this.fip >>> 16) & 0xf) << 12) | (this.fop & 0x7ff), this.fdp & 0xffff, ((this.fdp >>> 16) & 0xf) << 12];
  }

  private fldenv(lin: number, o32: boolean, pm: boolean): void {
    const step = o32 ? 4 : 2;
    const w: number[] = [];
    for (let k = 0; k < 7; k++) w.push(o32 ? this.cpu.readLin32((lin + k * step) | 0) >>> 0 : this.cpu.readLin16((lin + k * step) | 0));
    this.cw = (w[0] & 0xffff) | 0x40;
    this.sw = w[1] & 0xffff & ~0x3800;
    this.top = (w[1] >> 11) & 7;
    this.setTagWord(w[2] & 0xffff);
    if (pm) {
      this.fip = o32 ? w[3] : w[3] & 0xffff;
      this.fcs = w[4] & 0xffff;
      this.fop = o32 ? (w[4] >>> 16) & 0x7ff : this.fop;
      this.fdp = o32 ? w[5] : w[5] & 0xffff;
      this.fds = w[6] & 0xffff;
    } else {
      this.fop = w[4] & 0x7ff;
      this.fip = ((w[3] & 0xffff) | ((o32 ? w[4] >>> 12 : (w[4] >>> 12) & 0xf) << 16)) >>> 0;
      this.fdp = ((w[5] & 0xffff) | ((o32 ? w[6] >>> 12 : (w[6] >>> 12) & 0xf) << 16)) >>> 0;
    }
    this.recheckPending();
  }

  private fsave(lin: number, o32: boolean, pm: boolean): void {
    const env = this.envSize(o32);
    this.cpu.probeWrite(lin, env + 80);
    this.fstenv(lin, o32, pm);
    const b = new Uint8Array(10);
    for (let i = 0; i < 8; i++) {
      toBytes(this.r[this.phys(i)], b);
      for (let k = 0; k < 10; k++) this.cpu.writeLin8((lin + env + i * 10 + k) | 0, b[k]);
    }
    this.finit();
  }

  private frstor(lin: number, o32: boolean, pm: boolean): void {
    const env = this.envSize(o32);
    const regs: F80[] = [];
    const b = new Uint8Array(10);
    for (let i = 0; i < 8; i++) {
      for (let k = 0; k < 10; k++) b[k] = this.cpu.readLin8((lin + env + i * 10 + k) | 0);
      regs.push(fromBytes(b));
    }
    this.fldenv(lin, o32, pm);
    for (let i = 0; i < 8; i++) this.r[this.phys(i)] = regs[i];
  }

  /** FXSAVE (0F AE /0): the 512-byte image (SDM vol.2 FXSAVE, table 3-53); no SSE state on this CPU. */
  fxsave(lin: number): void {
    if (lin & 15) this.cpu.fault(C.GP, 0);
    this.cpu.probeWrite(lin, 512);
    const img = new Uint8Array(512);
    const v = new DataView(img.buffer);
    v.setUint16(0, this.cw, true);
    v.setUint16(2, this.statusWord, true);
    let abridged = 0;
    for (let p = 0; p < 8; p++) if (!this.empty[p]) abridged |= 1 << p;
    img[4] = abridged;
    v.setUint16(6, this.fop & 0x7ff, true);
    v.setUint32(8, this.fip, true);
    v.setUint16(12, this.fcs, true);
    v.setUint32(16, this.fdp, true);
    v.setUint16(20, this.fds, true);
    v.setUint32(24, 0x1f80, true); // MXCSR at its reset value
    v.setUint32(28, 0, true); // MXCSR_MASK 0: software assumes 0xFFBF
    for (let i = 0; i < 8; i++) toBytes(this.r[this.phys(i)], img, 32 + i * 16);
    // Only the defined fields are written; the reserved and XMM areas are left as they are.
    const writeRange = (from: number, to: number) => {
      for (let k = from; k < to; k++) this.cpu.writeLin8((lin + k) | 0, img[k]);
    };
    writeRange(0, 32);
    for (let i = 0; i < 8; i++) writeRange(32 + i * 16, 42 + i * 16);
  }

  /** FXRSTOR (0F AE /1). */
  fxrstor(lin: number): void {
    if (lin & 15) this.cpu.fault(C.GP, 0);
    const img = new Uint8Array(160);
    for (let k = 0; k < 160; k++) img[k] = this.cpu.readLin8((lin + k) | 0);
    const v = new DataView(img.buffer);
    this.cw = v.getUint16(0, true) | 0x40;
    const sw = v.getUint16(2, true);
    this.sw = sw & ~0x3800;
    this.top = (sw >> 11) & 7;
    for (let p = 0; p < 8; p++) this.empty[p] = (img[4] >> p) & 1 ? 0 : 1;
    this.fop = v.getUint16(6, true) & 0x7ff;
    this.fip = v.getUint32(8, true);
    this.fcs = v.getUint16(12, true);
    this.fdp = v.getUint32(16, true);
    this.fds = v.getUint16(20, true);
    for (let i = 0; i < 8; i++) this.r[this.phys(i)] = fromBytes(img, 32 + i * 16);
    this.recheckPending();
  }

  // -------------------------------------------------------------------------------------
  // Save/restore (DESIGN.md seam 2)
  // -------------------------------------------------------------------------------------

  saveState(): X87State {
    const regs = new Uint8Array(80);
    for (let p = 0; p < 8; p++) toBytes(this.r[p], regs, p * 10);
    return { regs, top: this.top, cw: this.cw, sw: this.sw, tags: this.empty.slice(), fip: this.fip, fcs: this.fcs, fdp: this.fdp, fds: this.fds, fop: this.fop };
  }

  loadState(s: X87State): void {
    for (let p = 0; p < 8; p++) this.r[p] = fromBytes(s.regs, p * 10);
    this.empty.set(s.tags);
    this.top = s.top;
    this.cw = s.cw;
    this.sw = s.sw;
    this.fip = s.fip;
    this.fcs = s.fcs;
    this.fdp = s.fdp;
    this.fds = s.fds;
    this.fop = s.fop;
  }

  /** ST(i) as a JS number (tests and the debugger). */
  st(i: number): number {
    return toNumber(this.get(i));
  }

  /** ST(i) raw (tests). */
  stRaw(i: number): F80 {
    return this.get(i);
  }

  stEmpty(i: number): boolean {
    return this.isEmpty(i);
  }
}

/** Did rounding `v` to the integer `q` move away from zero (C1 = 1, SDM vol.1 §8.1.3.1)? */
function roundedAway(v: F80, q: bigint): boolean {
  const mag = q < 0n ? -q : q;
  const t = toIntegral({ ...v, sign: 0 }, RC_ZERO).value;
  return mag > t;
}

function INF_OF(sign: number): F80 {
  return { sign, exp: MAX_EXP, mant: 1n << 63n };
}

const ONE_80: F80 = { sign: 0, exp: BIAS, mant: 1n << 63n };

/**
 * A double standing in for a zero or an infinity (itself, signed), or for a finite nonzero
 * operand (`finite`, with its sign): enough for the special-operand tables, which depend only
 * on those classes.
 */
function proxy(v: F80, finite: number): number {
  if (isZero(v)) return v.sign ? -0 : 0;
  if (isInf(v)) return v.sign ? -Infinity : Infinity;
  return v.sign ? -finite : finite;
}

/** Put x and y on one scale for an integer division: x = num * 2^k, y = den * 2^k. */
function alignForDivide(x: { sig: bigint; exp2: number }, y: { sig: bigint; exp2: number }): [bigint, bigint, number] {
  const k = Math.min(x.exp2, y.exp2);
  return [x.sig << BigInt(x.exp2 - k), y.sig << BigInt(y.exp2 - k), k];
}
