/**
 * The i686-class CPU: architectural state, lazy flags, segmentation, paging with a
 * software TLB, exceptions and interrupts, and the run loop. The instructions live in
 * ops.ts as a table of small handlers indexed by opcode (DESIGN.md seam 7: typed arrays,
 * no allocation or closures per instruction; faults are the only exceptions thrown).
 */
import type { PhysicalBus, PortBus } from '../memory/physical-bus.ts';
import { NO_WATCHED_PAGES, PAGE_DIRECT_READ, PAGE_DIRECT_WRITE } from '../memory/physical-bus.ts';
import * as C from './constants.ts';
import { taskSwitch } from './task.ts';
import { OPS } from './ops.ts';
import { disassemble } from './disasm.ts';
import { BlockCache } from './jit/block-cache.ts';
import { MAX_INSTRUCTIONS } from './jit/codegen.ts';

export interface CpuHost {
  readonly memory: PhysicalBus;
  readonly io: PortBus;
  /** INTA cycle: acknowledge the pending interrupt and return its vector. */
  intrAcknowledge(): number;
  /** Time-stamp counter from the machine clock (virtual time). */
  readTsc(): number;
  /** x87 error with CR0.NE=0: FERR# (IRQ13 on the PC). */
  ferr(): void;
  /** Triple fault: the machine resets; `reason` names the exception, CS:EIP and the instruction. */
  shutdown(reason: string): void;
  /** The local APIC is present (CPUID.1:EDX.APIC and MSR 0x1B). */
  readonly apicPresent?: boolean;
  /** MSR 0x1B as the APIC sees it. */
  getApicBase?(): number;
  setApicBase?(value: number): void;
}

/** Thrown (as this one object) to abandon an instruction; the vector waits in the CPU. */
export const FAULT = { fault: true } as const;

/**
 * How many linear pages with TLB entries are remembered for cheap flushing before a full
 * clear. Global pages stay listed across MOV CR3 (CR4.PGE), so the kernel's working set
 * stays in the list: with 8,192, tiny-linux's fork/exec loop overflowed it every few
 * passes, and each overflow cost a 17 MB clear and, for each page that became code, a
 * scan of the 2 x 1 M write entries (Cpu.protectCodePage).
 */
const TLB_LOG_SIZE = 32768;
/** Not page-aligned, so no linear address matches it. */
const FETCH_NONE = 1;

/**
 * Settle the representation of number fields that take any 32-bit value (addresses,
 * offsets, ALU operands). V8 keeps a number field as a small integer (Smi) until a value
 * outside that range is stored; then it widens the field for every object of the class
 * and throws away the optimized code that relied on the narrow one. Where pointer
 * compression makes Smis 31 bits wide (Chromium), addresses from 0x40000000 to
 * 0xBFFFFFFF (a user stack, the vDSO) do not fit: in a tiny-linux boot all of the Cpu's
 * fields below but descHi were widened at some point, each time deoptimizing hundreds of
 * functions and translated blocks (about 1,000 in all). Storing the most negative int32 once, in the
 * constructor, before any code is optimized, gives each field the representation it
 * would reach anyway on this engine (a Smi where Smis are 32 bits, a double where they
 * are 31), and it keeps it.
 */
export function settleWideFields<K extends string>(o: Record<K, number>, fields: readonly K[]): void {
  for (const f of fields) {
    const value = o[f];
    o[f] = -0x8000_0000;
    o[f] = value;
  }
}
const WIDE_FIELDS = ['eip', 'instrStart', 'cr2', 'lzA', 'lzB', 'lzR', 'eaOff', 'fetchPage', 'fetchEnd', 'descLo', 'descHi'] as const;

export class Cpu {
  // ---- general registers: one buffer, three views (x86 and hosts are little-endian) ----
  readonly regBuffer = new ArrayBuffer(32);
  readonly r32 = new Int32Array(this.regBuffer);
  readonly r16 = new Uint16Array(this.regBuffer);
  readonly r8 = new Uint8Array(this.regBuffer);
  eip = 0;

  // ---- segment registers and their descriptor caches ----
  readonly sreg = new Uint16Array(6);
  readonly segBase = new Int32Array(6);
  readonly segLimit = new Uint32Array(6);
  /** Access-rights byte (type, S, DPL, P) and flags nibble (AVL, D/B, G) as bits 8-15 / 20-23 of the descriptor's high dword. */
  readonly segAccess = new Int32Array(6);
  /** Lowest and highest valid offset (expand-down segments invert the range). */
  readonly segLo = new Uint32Array(6);
  readonly segHi = new Uint32Array(6);
  /** 1 = readable, 2 = writable, 0 = unusable (null selector in protected mode). */
  readonly segRights = new Uint8Array(6);

  // ---- system registers ----
  cr0 = C.CR0_ET | C.CR0_CD | C.CR0_NW;
  cr2 = 0;
  cr3 = 0;
  cr4 = 0;
  readonly dr = new Int32Array(8);
  gdtrBase = 0;
  gdtrLimit = 0xffff;
  idtrBase = 0;
  idtrLimit = 0x3ff;
  ldtr = 0;
  ldtrBase = 0;
  ldtrLimit = 0;
  tr = 0;
  trBase = 0;
  trLimit = 0;
  trType = 0;
  cpl = 0;
  sysenterCs = 0;
  sysenterEsp = 0;
  sysenterEip = 0;
  tscOffset = 0;

  // ---- EFLAGS: non-lazy bits in `flags`, the lazily computed status flags in lz* ----
  flags = C.FLAGS_FIXED_ONE;
  lzMask = 0;
  lzOp = 0; // 0 add-like, 1 sub-like, 2 logic, 3 shift (CF, OF in lzA, lzB)
  lzA = 0;
  lzB = 0;
  lzR = 0;
  lzBits = 32;

  // ---- decoding state of the current instruction ----
  instrStart = 0;
  o32 = false;
  a32 = false;
  segOverride = -1;
  rep = 0; // 0 none, 0xF3 rep/repe, 0xF2 repne
  lock = false;
  /**
   * The prefix state above (o32, a32, segOverride, rep, lock, fetchEnd) may differ from an
   * unprefixed instruction's: set by prefixes and by a change of CS's size or limit, cleared
   * by step() resetting it. Most instructions have no prefix, and skipping the six stores
   * of the reset for them is a measurable share of the interpreter's fixed cost per
   * instruction.
   */
  prefixDirty = true;
  modrm = 0;
  eaOff = 0;
  eaSeg = C.DS;
  /** Code segment default size (CS.D) and stack size (SS.B). */
  cs32 = false;
  ss32 = false;
  /** CS base and the EIP wrap mask (0xFFFF for 16-bit code), cached for fetch. */
  csBase = 0;
  eipMask = 0xffff;
  /** Linear page whose RAM offset is fetchPhys; FETCH_NONE when no page is cached. */
  fetchPage = FETCH_NONE;
  fetchPhys = 0;
  /**
   * The last offset the fast fetch path may read: the CS limit, or (in a prefixed
   * instruction) 15 bytes from the instruction's start if that comes first (SDM vol.2
   * §2.3.11). An instruction without prefixes is at most 11 bytes long (0F-map opcode,
   * ModRM, SIB, disp32, imm32 ... C7 /0 with SIB, disp32 and imm32), so it can only
   * reach the 15-byte limit with prefixes in front.
   */
  fetchEnd = 0;

  // ---- run state ----
  halted = false;
  instructionCount = 0;
  /** Instructions until interrupts are recognised again (STI, MOV SS, POP SS shadow). */
  interruptShadow = 0;
  nmiPending = false;
  /** NMIs are blocked from the delivery of one until the next IRET (SDM vol.3 §6.7.1). */
  nmiMasked = false;
  /** nmiPending && !nmiMasked: what the run loop looks at between instructions. */
  private nmiReady = false;
  /** Instructions retired so far in the current run() call: the clock reads it for sub-slice time. */
  retired = 0;
  /** The INTR pin, driven by the interrupt controller (PIC or local APIC) through setIntr. */
  intrLine = false;
  /** Exception waiting to be delivered after FAULT was thrown. */
  pendingVector = -1;
  pendingError = -1;
  /** Vector of the exception being delivered (for #DF / triple fault), -1 when none. */
  private delivering = -1;
  /** Set by instructions that end a run slice early (HLT, mode switches that need the loop to re-read state). */
  stopSlice = false;
  /** Opcode (0x100 | second byte for 0F) of the instruction step() ran last. */
  lastOp = 0;

  // ---- memory ----
  readonly mem: PhysicalBus;
  readonly io: PortBus;
  ram: Uint8Array;
  /**
   * The same RAM as aligned dwords (x86 and every host this runs on are little-endian):
   * an aligned 32-bit access is one typed-array element instead of four bytes.
   */
  readonly ram32: Int32Array;
  private readonly pageAccess: Uint8Array;
  /** TLBs per privilege class: [supervisor, user] x [read, write]. Linear page -> physical page | flags. */
  private readonly tlbSupR = new Int32Array(1 << 20).fill(C.TLB_MISS);
  private readonly tlbSupW = new Int32Array(1 << 20).fill(C.TLB_MISS);
  private readonly tlbUsrR = new Int32Array(1 << 20).fill(C.TLB_MISS);
  private readonly tlbUsrW = new Int32Array(1 << 20).fill(C.TLB_MISS);
  tlbR = this.tlbSupR;
  tlbW = this.tlbSupW;
  private readonly tlbLog = new Int32Array(TLB_LOG_SIZE);
  private tlbLogLength = 0;
  private tlbOverflow = false;
  /** Linear pages in tlbLog, so a page filled again (read then write, user then supervisor, after INVLPG) is listed once. */
  private readonly tlbLogged = new Uint8Array(1 << 20);
  /** Linear pages filled from global PTEs (survive MOV CR3 when CR4.PGE). */
  private readonly tlbGlobal = new Uint8Array(1 << 20);
  private a20Mask: number;

  /** x87 escape handler, installed by the machine (src/emulator/cpu/fpu). */
  fpu: FpuPort | null = null;

  // ---- translated blocks (src/emulator/cpu/jit): off until enableBlockCache() ----
  /** The block cache, when the machine runs 32-bit code as translated blocks. */
  blocks: BlockCache | null = null;
  /** Physical pages with translations: their TLB write entries take the slow path. */
  private codePages: Uint8Array = NO_WATCHED_PAGES;
  /** Set when a running block must stop after the current instruction (INTR rose, translated code was written). */
  blockExit = false;

  constructor(readonly host: CpuHost) {
    settleWideFields(this, WIDE_FIELDS);
    this.mem = host.memory;
    this.io = host.io;
    this.ram = host.memory.ram;
    this.ram32 = new Int32Array(this.ram.buffer, this.ram.byteOffset, this.ram.byteLength >>> 2);
    if ((this.ram.byteOffset & 3) !== 0) throw new Error('guest RAM must start on a 4-byte boundary of its buffer');
    this.pageAccess = host.memory.pageAccess;
    this.a20Mask = host.memory.a20Mask;
    host.memory.addMapListener(() => {
      this.a20Mask = this.mem.a20Mask;
      this.flushTlb(true);
    });
    this.reset();
  }

  /** RESET state (SDM vol.3 §9.1.1, table 9-1). */
  reset(): void {
    this.fpu?.reset();
    this.r32.fill(0);
    this.r32[C.EDX] = 0x0000_0600 | 0x80 | 0x3; // family 6, model 8, stepping 3
    this.eip = 0xfff0;
    this.flags = C.FLAGS_FIXED_ONE;
    this.lzMask = 0;
    this.cr0 = C.CR0_ET | C.CR0_CD | C.CR0_NW;
    this.cr2 = this.cr3 = this.cr4 = 0;
    this.dr.fill(0);
    this.dr[6] = 0xffff0ff0 | 0;
    this.dr[7] = 0x400;
    for (let s = 0; s < 6; s++) this.setSegReal(s, 0, 0xffff, 0x93);
    this.sreg[C.CS] = 0xf000;
    this.segBase[C.CS] = 0xffff0000 | 0;
    this.setSegCache(C.CS, 0xffff0000 | 0, 0xffff, 0x9b);
    this.gdtrBase = 0;
    this.gdtrLimit = 0xffff;
    this.idtrBase = 0;
    this.idtrLimit = 0xffff;
    this.ldtr = this.ldtrBase = 0;
    this.ldtrLimit = 0xffff;
    this.tr = this.trBase = 0;
    this.trLimit = 0xffff;
    this.cpl = 0;
    this.sysenterCs = this.sysenterEsp = this.sysenterEip = 0;
    this.tscOffset = -this.host.readTsc();
    this.halted = false;
    this.interruptShadow = 0;
    this.nmiPending = false;
    this.nmiMasked = false;
    this.nmiReady = false;
    this.pendingVector = -1;
    this.delivering = -1;
    this.updateModeCaches();
    this.flushTlb(true);
  }

  // =====================================================================================
  // Registers
  // =====================================================================================

  /** 8-bit register by encoding: AL CL DL BL AH CH DH BH. */
  static r8Index(i: number): number {
    return ((i & 3) << 2) | (i >> 2);
  }

  getReg8(i: number): number {
    return this.r8[((i & 3) << 2) | (i >> 2)];
  }

  setReg8(i: number, v: number): void {
    this.r8[((i & 3) << 2) | (i >> 2)] = v;
  }

  getReg16(i: number): number {
    return this.r16[i << 1];
  }

  setReg16(i: number, v: number): void {
    this.r16[i << 1] = v;
  }

  // =====================================================================================
  // Flags (lazy): the last ALU operation is remembered and flags computed on demand
  // =====================================================================================

  setLazy(op: number, a: number, b: number, r: number, bits: number, mask: number): void {
    this.lzOp = op;
    this.lzA = a;
    this.lzB = b;
    this.lzR = r;
    this.lzBits = bits;
    this.lzMask = mask;
  }

  /** Carry out of the top bit of the last add/sub (SDM vol.1 §3.4.3.1). Works for ADC/SBB too. */
  private lazyCF(): number {
    const a = this.lzA, b = this.lzB, r = this.lzR, top = this.lzBits - 1;
    if (this.lzOp === 0) return (((a & b) | ((a | b) & ~r)) >>> top) & 1;
    if (this.lzOp === 1) return (((~a & b) | ((~a | b) & r)) >>> top) & 1;
    return this.lzOp === 3 ? a & 1 : 0; // a shift keeps its CF in lzA (alu.ts LAZY_SHIFT)
  }

  private lazyOF(): number {
    const a = this.lzA, b = this.lzB, r = this.lzR, top = this.lzBits - 1;
    if (this.lzOp === 0) return (((a ^ r) & (b ^ r)) >>> top) & 1;
    if (this.lzOp === 1) return (((a ^ b) & (a ^ r)) >>> top) & 1;
    return this.lzOp === 3 ? b & 1 : 0; // and its OF in lzB
  }

  cf(): boolean {
    return (this.lzMask & C.CF) !== 0 ? this.lazyCF() !== 0 : (this.flags & C.CF) !== 0;
  }

  zf(): boolean {
    if ((this.lzMask & C.ZF) === 0) return (this.flags & C.ZF) !== 0;
    const bits = this.lzBits;
    return (bits === 32 ? this.lzR : this.lzR & ((1 << bits) - 1)) === 0;
  }

  sf(): boolean {
    return (this.lzMask & C.SF) !== 0 ? ((this.lzR >>> (this.lzBits - 1)) & 1) !== 0 : (this.flags & C.SF) !== 0;
  }

  of(): boolean {
    return (this.lzMask & C.OF) !== 0 ? this.lazyOF() !== 0 : (this.flags & C.OF) !== 0;
  }

  pf(): boolean {
    if ((this.lzMask & C.PF) === 0) return (this.flags & C.PF) !== 0;
    return PARITY[this.lzR & 0xff] !== 0;
  }

  af(): boolean {
    if ((this.lzMask & C.AF) === 0) return (this.flags & C.AF) !== 0;
    if (this.lzOp >= 2) return false; // logic and shifts clear AF
    return ((this.lzA ^ this.lzB ^ this.lzR) & 0x10) !== 0;
  }

  /** EFLAGS with the lazy flags materialised. */
  getFlags(): number {
    let f = this.flags;
    const m = this.lzMask;
    if (m !== 0) {
      f &= ~m;
      if (m & C.CF && this.lazyCF()) f |= C.CF;
      if (m & C.PF && PARITY[this.lzR & 0xff]) f |= C.PF;
      if (m & C.AF && this.af()) f |= C.AF;
      if (m & C.ZF && this.zf()) f |= C.ZF;
      if (m & C.SF && (this.lzR >>> (this.lzBits - 1)) & 1) f |= C.SF;
      if (m & C.OF && this.lazyOF()) f |= C.OF;
    }
    return f;
  }

  /** Write the whole EFLAGS (callers apply the privilege rules of POPF/IRET first). */
  setFlags(v: number): void {
    const vmBefore = this.flags & C.VM;
    this.flags = (v & C.FLAGS_IMPLEMENTED) | C.FLAGS_FIXED_ONE;
    this.lzMask = 0;
    if ((this.flags & C.VM) !== vmBefore) this.updateModeCaches();
  }

  /** Set some status flags explicitly (others keep their lazy or stored value). */
  setStatusFlags(mask: number, values: number): void {
    if (this.lzMask & mask) this.materializeFlags();
    this.flags = (this.flags & ~mask) | (values & mask);
  }

  materializeFlags(): void {
    if (this.lzMask !== 0) {
      this.flags = this.getFlags();
      this.lzMask = 0;
    }
  }

  /** Condition code tcc of Jcc/SETcc/CMOVcc (SDM vol.2 appendix B.1.4.7). */
  cond(cc: number): boolean {
    let r: boolean;
    switch (cc >> 1) {
      case 0: r = this.of(); break;
      case 1: r = this.cf(); break;
      case 2: r = this.zf(); break;
      case 3: r = this.cf() || this.zf(); break;
      case 4: r = this.sf(); break;
      case 5: r = this.pf(); break;
      case 6: r = this.sf() !== this.of(); break;
      default: r = this.zf() || this.sf() !== this.of(); break;
    }
    return (cc & 1) !== 0 ? !r : r;
  }

  // =====================================================================================
  // Modes
  // =====================================================================================

  get protectedMode(): boolean {
    return (this.cr0 & C.CR0_PE) !== 0;
  }

  get v86(): boolean {
    return (this.flags & C.VM) !== 0;
  }

  /** Recompute what depends on CR0/EFLAGS.VM/CS/SS: code and stack size, CPL class of the TLB. */
  updateModeCaches(): void {
    this.cs32 = (this.segAccess[C.CS] & 0x400000) !== 0 && this.protectedMode && !this.v86;
    this.ss32 = (this.segAccess[C.SS] & 0x400000) !== 0 && this.protectedMode && !this.v86;
    const user = this.cpl === 3;
    this.tlbR = user ? this.tlbUsrR : this.tlbSupR;
    this.tlbW = user ? this.tlbUsrW : this.tlbSupW;
    this.csBase = this.segBase[C.CS];
    this.eipMask = this.cs32 ? -1 : 0xffff;
    this.fetchPage = FETCH_NONE;
    this.prefixDirty = true; // o32/a32 follow cs32
  }

  setCpl(cpl: number): void {
    this.cpl = cpl;
    this.updateModeCaches();
  }

  // =====================================================================================
  // Segmentation
  // =====================================================================================

  /** Fill a descriptor cache from base, byte-granular limit and access rights (bits 8-23 of the high dword). */
  setSegCache(s: number, base: number, limit: number, access: number): void {
    this.segBase[s] = base;
    this.segLimit[s] = limit >>> 0;
    this.segAccess[s] = access << 8;
    this.computeSegRange(s);
  }

  /** Access byte given as the raw descriptor high dword's bits 8-23 (already shifted into place). */
  setSegCacheRaw(s: number, base: number, limit: number, hiDword: number): void {
    this.segBase[s] = base;
    this.segLimit[s] = limit >>> 0;
    this.segAccess[s] = hiDword & 0x00f0ff00;
    this.computeSegRange(s);
  }

  private computeSegRange(s: number): void {
    if (s === C.CS) {
      this.csBase = this.segBase[C.CS];
      this.fetchPage = FETCH_NONE;
      this.prefixDirty = true; // fetchEnd follows the CS limit
    }
    const acc = this.segAccess[s];
    const limit = this.segLimit[s];
    const type = (acc >> 8) & 0xf;
    const isCode = (type & 8) !== 0;
    const present = (acc & 0x8000) !== 0;
    if (!this.protectedMode || this.v86) {
      // Real and v86 mode check limits only: every segment reads and writes (SDM vol.3 §20.1).
      this.segRights[s] = 3;
    } else if (!present) {
      this.segRights[s] = 0;
    } else if (isCode) {
      this.segRights[s] = (type & 2) !== 0 ? 1 : 0; // readable code; never writable
      if (s === C.CS) this.segRights[s] |= 4; // executable
    } else {
      this.segRights[s] = 1 | ((type & 2) !== 0 ? 2 : 0);
    }
    if (!isCode && (type & 4) !== 0) {
      // Expand-down: valid offsets are limit+1 .. 0xFFFF or 0xFFFFFFFF (SDM vol.3 §5.3).
      this.segLo[s] = (limit + 1) >>> 0;
      this.segHi[s] = (acc & 0x400000) !== 0 ? 0xffffffff : 0xffff;
      if (limit === 0xffffffff) { this.segLo[s] = 1; this.segHi[s] = 0; }
    } else {
      this.segLo[s] = 0;
      this.segHi[s] = limit;
    }
  }

  /** Real-mode style load: only selector and base change (descriptor caches stay: unreal mode). */
  private setSegReal(s: number, sel: number, limit: number, access: number): void {
    this.sreg[s] = sel;
    this.segBase[s] = sel << 4;
    this.segLimit[s] = limit;
    this.segAccess[s] = access << 8;
    this.computeSegRange(s);
  }

  /** MOV Sreg / POP Sreg / LDS... : load a data or stack segment register (SDM vol.2 MOV, vol.3 §5.4.4). */
  loadSeg(s: number, sel: number): void {
    sel &= 0xffff;
    if (!this.protectedMode) {
      this.sreg[s] = sel;
      this.segBase[s] = sel << 4;
      if (s === C.CS) {
        this.csBase = sel << 4;
        this.fetchPage = FETCH_NONE;
      }
      return;
    }
    if (this.v86) {
      this.sreg[s] = sel;
      this.setSegCache(s, sel << 4, 0xffff, s === C.CS ? 0xfb : 0xf3);
      if (s === C.CS || s === C.SS) this.updateModeCaches();
      return;
    }
    const rpl = sel & 3;
    if ((sel & 0xfffc) === 0) {
      if (s === C.SS) this.fault(C.GP, 0);
      // A null selector may be loaded into DS/ES/FS/GS; using it faults (#GP(0)).
      this.sreg[s] = sel;
      this.segBase[s] = 0;
      this.segLimit[s] = 0;
      this.segAccess[s] = 0;
      this.segRights[s] = 0;
      this.segLo[s] = 1;
      this.segHi[s] = 0;
      return;
    }
    if (!this.readDescriptor(sel)) this.fault(C.GP, sel & 0xfffc);
    const hi = this.descHi;
    const dpl = (hi >> 13) & 3;
    const type = (hi >> 8) & 0x1f; // S bit + type
    if (s === C.SS) {
      // Writable data segment with RPL = DPL = CPL.
      if ((type & 0x1a) !== 0x12 || rpl !== this.cpl || dpl !== this.cpl) this.fault(C.GP, sel & 0xfffc);
      if ((hi & 0x8000) === 0) this.fault(C.SS_VEC, sel & 0xfffc);
    } else {
      // Data or readable code; for data and non-conforming code, max(CPL, RPL) <= DPL.
      if ((type & 0x10) === 0 || (type & 0x1a) === 0x18) this.fault(C.GP, sel & 0xfffc);
      const conforming = (type & 0x1c) === 0x1c;
      if (!conforming && (rpl > dpl || this.cpl > dpl)) this.fault(C.GP, sel & 0xfffc);
      if ((hi & 0x8000) === 0) this.fault(C.NP, sel & 0xfffc);
    }
    this.setAccessedBit(sel);
    this.sreg[s] = sel;
    this.setSegCacheRaw(s, this.descBase(), this.descLimit(), this.descHi | 0x100);
    if (s === C.SS) this.updateModeCaches();
  }

  /** Scratch for the descriptor last read: low and high dwords. */
  descLo = 0;
  descHi = 0;

  /** Read the descriptor of `sel` from the GDT or LDT; false if outside the table's limit. */
  readDescriptor(sel: number): boolean {
    const index = sel & 0xfff8;
    let base: number, limit: number;
    if (sel & 4) {
      if ((this.ldtr & 0xfffc) === 0) return false;
      base = this.ldtrBase;
      limit = this.ldtrLimit;
    } else {
      base = this.gdtrBase;
      limit = this.gdtrLimit;
    }
    if (index + 7 > limit) return false;
    this.descLo = this.readSys32(base + index);
    this.descHi = this.readSys32(base + index + 4);
    return true;
  }

  descBase(): number {
    return ((this.descLo >>> 16) | ((this.descHi & 0xff) << 16) | (this.descHi & 0xff000000)) | 0;
  }

  descLimit(): number {
    const raw = (this.descLo & 0xffff) | (this.descHi & 0xf0000);
    return (this.descHi & 0x800000) !== 0 ? ((raw << 12) | 0xfff) >>> 0 : raw;
  }

  /** Set the accessed bit of a descriptor (a locked read-modify-write on real hardware). */
  setAccessedBit(sel: number): void {
    if ((this.descHi & 0x100) !== 0) return;
    const base = sel & 4 ? this.ldtrBase : this.gdtrBase;
    this.writeSys32(base + (sel & 0xfff8) + 4, this.descHi | 0x100);
  }

  // =====================================================================================
  // Memory: segment checks, then the TLB
  // =====================================================================================

  /** Linear address of seg:off for a read of `size` bytes, after limit and rights checks. */
  linR(s: number, off: number, size: number): number {
    off >>>= 0;
    if ((this.segRights[s] & 1) === 0 || off < this.segLo[s] || off + size - 1 > this.segHi[s]) this.segFault(s, off, size);
    return (this.segBase[s] + off) | 0;
  }

  linW(s: number, off: number, size: number): number {
    off >>>= 0;
    if ((this.segRights[s] & 2) === 0 || off < this.segLo[s] || off + size - 1 > this.segHi[s]) this.segFault(s, off, size);
    return (this.segBase[s] + off) | 0;
  }

  private segFault(s: number, off: number, size: number): never {
    // Real mode and v86: a limit violation is #GP(0) or #SS(0) (segment overrun).
    const inLimit = !(off < this.segLo[s] || off + size - 1 > this.segHi[s]);
    if (s === C.SS && (inLimit || this.segRights[s] !== 0)) this.fault(C.SS_VEC, 0);
    void inLimit;
    this.fault(C.GP, 0);
  }

  read8(s: number, off: number): number {
    return this.readLin8(this.linR(s, off, 1));
  }

  read16(s: number, off: number): number {
    return this.readLin16(this.linR(s, off, 2));
  }

  read32(s: number, off: number): number {
    return this.readLin32(this.linR(s, off, 4));
  }

  write8(s: number, off: number, v: number): void {
    this.writeLin8(this.linW(s, off, 1), v);
  }

  write16(s: number, off: number, v: number): void {
    this.writeLin16(this.linW(s, off, 2), v);
  }

  write32(s: number, off: number, v: number): void {
    this.writeLin32(this.linW(s, off, 4), v);
  }

  readLin8(lin: number): number {
    const e = this.tlbR[lin >>> 12];
    if ((e & 0xfff) === 0) return this.ram[(e >>> 0) + (lin & 0xfff)];
    return this.mem.read8(this.translateSlow(lin, false, e));
  }

  readLin16(lin: number): number {
    if ((lin & 0xfff) <= 0xffe) {
      const e = this.tlbR[lin >>> 12];
      if ((e & 0xfff) === 0) {
        const p = (e >>> 0) + (lin & 0xfff);
        return this.ram[p] | (this.ram[p + 1] << 8);
      }
      return this.mem.read16(this.translateSlow(lin, false, e));
    }
    return this.readLin8(lin) | (this.readLin8((lin + 1) | 0) << 8);
  }

  readLin32(lin: number): number {
    if ((lin & 0xfff) <= 0xffc) {
      const e = this.tlbR[lin >>> 12];
      if ((e & 0xfff) === 0) {
        const p = (e >>> 0) + (lin & 0xfff);
        if ((p & 3) === 0) return this.ram32[p >>> 2];
        const ram = this.ram;
        return ram[p] | (ram[p + 1] << 8) | (ram[p + 2] << 16) | (ram[p + 3] << 24);
      }
      return this.mem.read32(this.translateSlow(lin, false, e));
    }
    // Crossing a page: both pages are checked before anything is returned.
    const lo = this.readLin16(lin);
    return lo | (this.readLin16((lin + 2) | 0) << 16);
  }

  writeLin8(lin: number, v: number): void {
    const e = this.tlbW[lin >>> 12];
    if ((e & 0xfff) === 0) {
      this.ram[(e >>> 0) + (lin & 0xfff)] = v;
      return;
    }
    this.mem.write8(this.translateSlow(lin, true, e), v & 0xff);
  }

  writeLin16(lin: number, v: number): void {
    if ((lin & 0xfff) <= 0xffe) {
      const e = this.tlbW[lin >>> 12];
      if ((e & 0xfff) === 0) {
        const p = (e >>> 0) + (lin & 0xfff);
        this.ram[p] = v;
        this.ram[p + 1] = v >> 8;
        return;
      }
      this.mem.write16(this.translateSlow(lin, true, e), v & 0xffff);
      return;
    }
    // Page-crossing write: translate both pages first so a fault leaves memory unchanged.
    const p0 = this.translate(lin, true);
    const p1 = this.translate((lin + 1) | 0, true);
    this.mem.write8(p0, v & 0xff);
    this.mem.write8(p1, (v >> 8) & 0xff);
  }

  writeLin32(lin: number, v: number): void {
    if ((lin & 0xfff) <= 0xffc) {
      const e = this.tlbW[lin >>> 12];
      if ((e & 0xfff) === 0) {
        const p = (e >>> 0) + (lin & 0xfff);
        if ((p & 3) === 0) {
          this.ram32[p >>> 2] = v;
          return;
        }
        const ram = this.ram;
        ram[p] = v;
        ram[p + 1] = v >> 8;
        ram[p + 2] = v >> 16;
        ram[p + 3] = v >> 24;
        return;
      }
      this.mem.write32(this.translateSlow(lin, true, e), v | 0);
      return;
    }
    const phys = [0, 0, 0, 0];
    for (let i = 0; i < 4; i++) phys[i] = this.translate((lin + i) | 0, true);
    for (let i = 0; i < 4; i++) this.mem.write8(phys[i], (v >>> (i * 8)) & 0xff);
  }

  /** Check that a write would succeed (for read-modify-write operands) without writing. */
  probeWrite(lin: number, size: number): void {
    if ((this.tlbW[lin >>> 12] & 0xfff) !== 0) this.translate(lin, true);
    if (((lin + size - 1) ^ lin) & ~0xfff) this.translate((lin + size - 1) | 0, true);
  }

  private translateSlow(lin: number, write: boolean, e: number): number {
    if (e !== C.TLB_MISS) return (e & ~0xfff) | (lin & 0xfff);
    return this.translate(lin, write);
  }

  /** Physical address of a system-structure access (GDT, IDT, TSS): always supervisor. */
  readSys32(lin: number): number {
    const phys = this.translateAs(lin, false, false);
    return this.mem.read32(phys) | 0;
  }

  readSys16(lin: number): number {
    return this.mem.read16(this.translateAs(lin, false, false));
  }

  readSys8(lin: number): number {
    return this.mem.read8(this.translateAs(lin, false, false));
  }

  writeSys32(lin: number, v: number): void {
    this.mem.write32(this.translateAs(lin, true, false), v | 0);
  }

  writeSys16(lin: number, v: number): void {
    this.mem.write16(this.translateAs(lin, true, false), v & 0xffff);
  }

  /** Translate with the current privilege; fills the TLB. */
  translate(lin: number, write: boolean): number {
    return this.translateAs(lin, write, this.cpl === 3);
  }

  /**
   * The page walk (SDM vol.3 §4.3 32-bit paging, with PSE 4 MiB pages and global pages).
   * Accessed and dirty bits are set only on a successful walk, never on a not-present entry.
   */
  translateAs(lin: number, write: boolean, user: boolean): number {
    const page = lin >>> 12;
    let phys: number;
    let writable = true;
    let global = false;
    if ((this.cr0 & C.CR0_PG) === 0) {
      phys = lin & this.a20Mask;
    } else {
      const pdeAddr = ((this.cr3 & ~0xfff) + ((lin >>> 22) << 2)) & this.a20Mask;
      const pde = this.mem.read32(pdeAddr) | 0;
      if ((pde & C.PTE_P) === 0) this.pageFault(lin, 0, write, user);
      const wp = (this.cr0 & C.CR0_WP) !== 0;
      if ((pde & C.PTE_PS) !== 0 && (this.cr4 & C.CR4_PSE) !== 0) {
        const ok = this.permitted(pde, write, user, wp);
        if (!ok) this.pageFault(lin, 1, write, user);
        const want = pde | C.PTE_A | (write ? C.PTE_D : 0);
        if (want !== pde) this.mem.write32(pdeAddr, want);
        phys = ((pde & 0xffc00000) | (lin & 0x3ff000) | (lin & 0xfff)) & this.a20Mask;
        writable = (want & C.PTE_D) !== 0 && this.permitted(pde, true, user, wp);
        global = (pde & C.PTE_G) !== 0 && (this.cr4 & C.CR4_PGE) !== 0;
      } else {
        const pteAddr = ((pde & ~0xfff) + (((lin >>> 12) & 0x3ff) << 2)) & this.a20Mask;
        const pte = this.mem.read32(pteAddr) | 0;
        if ((pte & C.PTE_P) === 0) this.pageFault(lin, 0, write, user);
        const combined = pde & pte;
        if (!this.permitted(combined, write, user, wp)) this.pageFault(lin, 1, write, user);
        if ((pde & C.PTE_A) === 0) this.mem.write32(pdeAddr, pde | C.PTE_A);
        const want = pte | C.PTE_A | (write ? C.PTE_D : 0);
        if (want !== pte) this.mem.write32(pteAddr, want);
        phys = ((pte & ~0xfff) | (lin & 0xfff)) & this.a20Mask;
        writable = (want & C.PTE_D) !== 0 && this.permitted(combined, true, user, wp);
        global = (pte & C.PTE_G) !== 0 && (this.cr4 & C.CR4_PGE) !== 0;
      }
    }
    // Fill the TLB of this privilege class.
    const ppage = phys >>> 12;
    const pa = this.pageAccess[ppage];
    const base = phys & ~0xfff;
    const rEntry = (pa & PAGE_DIRECT_READ) !== 0 ? base : base | C.TLB_SLOW;
    const wEntry = (pa & PAGE_DIRECT_WRITE) !== 0 && this.codePages[ppage] === 0 ? base : base | C.TLB_SLOW;
    const tr = user ? this.tlbUsrR : this.tlbSupR;
    const tw = user ? this.tlbUsrW : this.tlbSupW;
    tr[page] = rEntry;
    if (writable) tw[page] = wEntry;
    if (global) this.tlbGlobal[page] = 1;
    if (this.tlbLogged[page] === 0) {
      if (this.tlbLogLength < TLB_LOG_SIZE) {
        this.tlbLog[this.tlbLogLength++] = page;
        this.tlbLogged[page] = 1;
      } else this.tlbOverflow = true;
    }
    return phys;
  }

  private permitted(entry: number, write: boolean, user: boolean, wp: boolean): boolean {
    if (user) {
      if ((entry & C.PTE_US) === 0) return false;
      if (write && (entry & C.PTE_RW) === 0) return false;
      return true;
    }
    // Supervisor writes to read-only pages fault only with CR0.WP (SDM vol.3 §4.6).
    return !(write && wp && (entry & C.PTE_RW) === 0);
  }

  private pageFault(lin: number, present: number, write: boolean, user: boolean): never {
    this.cr2 = lin;
    this.fault(C.PF_VEC, present | (write ? 2 : 0) | (user ? 4 : 0));
  }

  /** Flush the TLB: everything, or all but global pages (MOV CR3 with CR4.PGE). */
  flushTlb(all: boolean): void {
    this.fetchPage = FETCH_NONE;
    if (this.tlbOverflow) {
      this.tlbSupR.fill(C.TLB_MISS);
      this.tlbSupW.fill(C.TLB_MISS);
      this.tlbUsrR.fill(C.TLB_MISS);
      this.tlbUsrW.fill(C.TLB_MISS);
      this.tlbGlobal.fill(0);
      this.tlbLogged.fill(0);
      this.tlbLogLength = 0;
      this.tlbOverflow = false;
      return;
    }
    let kept = 0;
    for (let i = 0; i < this.tlbLogLength; i++) {
      const page = this.tlbLog[i];
      if (!all && this.tlbGlobal[page]) {
        this.tlbLog[kept++] = page;
        continue;
      }
      this.tlbSupR[page] = C.TLB_MISS;
      this.tlbSupW[page] = C.TLB_MISS;
      this.tlbUsrR[page] = C.TLB_MISS;
      this.tlbUsrW[page] = C.TLB_MISS;
      this.tlbGlobal[page] = 0;
      this.tlbLogged[page] = 0;
    }
    this.tlbLogLength = kept;
  }

  /**
   * Physical page `ppage` now holds translated code: no TLB entry may write it directly
   * any more, so every store reaches the memory's write watch (jit/block-cache.ts).
   */
  protectCodePage(ppage: number): void {
    const sup = this.tlbSupW, usr = this.tlbUsrW;
    const fix = (tlb: Int32Array, page: number): void => {
      const e = tlb[page];
      if ((e & 0xfff) === 0 && e >>> 12 === ppage) tlb[page] = e | C.TLB_SLOW;
    };
    if (this.tlbOverflow) {
      for (let page = 0; page < 1 << 20; page++) {
        fix(sup, page);
        fix(usr, page);
      }
      return;
    }
    for (let i = 0; i < this.tlbLogLength; i++) {
      fix(sup, this.tlbLog[i]);
      fix(usr, this.tlbLog[i]);
    }
  }

  /**
   * Run 32-bit code as translated blocks from now on. The memory must be able to watch
   * writes (PhysicalBus.watchWrites): without that, translations could go stale.
   * `wasm` (off by default) compiles the regions jit/wasm-region.ts can take to WebAssembly.
   */
  enableBlockCache(hotThreshold?: number, log?: (message: string) => void, promoteThreshold?: number, wasm = false): void {
    if (this.blocks !== null) return;
    if (this.mem.watchWrites === undefined) throw new Error('this memory cannot watch writes to code; translated blocks need it');
    const cache = new BlockCache(this, hotThreshold, log, promoteThreshold, wasm);
    this.blocks = cache;
    this.codePages = cache.codePages;
    this.mem.watchWrites(cache.codePages, (page) => cache.invalidatePage(page));
  }

  /** INVLPG: drop one linear page from every TLB (SDM vol.3 §4.10.4.1). */
  invalidatePage(lin: number): void {
    const page = lin >>> 12;
    this.fetchPage = FETCH_NONE;
    this.tlbSupR[page] = C.TLB_MISS;
    this.tlbSupW[page] = C.TLB_MISS;
    this.tlbUsrR[page] = C.TLB_MISS;
    this.tlbUsrW[page] = C.TLB_MISS;
    this.tlbGlobal[page] = 0;
  }

  // =====================================================================================
  // Instruction fetch and operand decoding
  // =====================================================================================

  /**
   * Instruction fetch. The current code page's RAM offset is cached (fetchPage/fetchPhys),
   * so a fetch is a compare and a typed-array read; everything else takes fetchSlow.
   * fetchEnd bounds the fast path by the CS limit and, with prefixes, the 15-byte limit.
   */
  fetch8(): number {
    const eip = this.eip;
    const lin = (this.csBase + eip) | 0;
    let v: number;
    if ((eip >>> 0) <= this.fetchEnd && (lin & ~0xfff) === this.fetchPage) v = this.ram[this.fetchPhys + (lin & 0xfff)];
    else v = this.fetchSlow(eip, lin);
    this.eip = (eip + 1) & this.eipMask;
    return v;
  }

  private fetchSlow(eip: number, lin: number): number {
    if ((eip >>> 0) > this.segHi[C.CS]) this.fault(C.GP, 0);
    if ((((eip - this.instrStart) & this.eipMask) >>> 0) > 14) this.fault(C.GP, 0);
    const v = this.readLin8(lin);
    const e = this.tlbR[lin >>> 12];
    if ((e & 0xfff) === 0) {
      this.fetchPage = lin & ~0xfff;
      this.fetchPhys = e >>> 0;
      // The CS limit may have changed with the page (a CS load resets fetchPage); in a
      // prefixed instruction the 15-byte limit stays.
      this.fetchEnd = this.prefixDirty ? this.fifteenBytes() : this.segHi[C.CS];
    }
    return v;
  }

  fetch16(): number {
    const eip = this.eip;
    const lin = (this.csBase + eip) | 0;
    if ((((eip + 1) >>> 0) <= this.fetchEnd) && (lin & 0xfff) <= 0xffe && (lin & ~0xfff) === this.fetchPage) {
      const p = this.fetchPhys + (lin & 0xfff);
      this.eip = (eip + 2) & this.eipMask;
      return this.ram[p] | (this.ram[p + 1] << 8);
    }
    return this.fetch8() | (this.fetch8() << 8);
  }

  fetch32(): number {
    const eip = this.eip;
    const lin = (this.csBase + eip) | 0;
    if ((((eip + 3) >>> 0) <= this.fetchEnd) && (lin & 0xfff) <= 0xffc && (lin & ~0xfff) === this.fetchPage) {
      const p = this.fetchPhys + (lin & 0xfff);
      const ram = this.ram;
      this.eip = (eip + 4) & this.eipMask;
      return ram[p] | (ram[p + 1] << 8) | (ram[p + 2] << 16) | (ram[p + 3] << 24);
    }
    return this.fetch16() | (this.fetch16() << 16);
  }

  fetchS8(): number {
    return (this.fetch8() << 24) >> 24;
  }

  /** Read a ModRM byte and, for memory forms, the effective address (SDM vol.2 §2.1.5 tables 2-1, 2-2). */
  decodeModrm(): void {
    const m = this.fetch8();
    this.modrm = m;
    // Register forms end here: small enough for V8 to inline into every handler, so only
    // memory forms pay a call (decodeEa).
    if (m < 0xc0) this.decodeEa(m);
  }

  /** The effective address of a memory-form ModRM `m` (its SIB and displacement follow in the code). */
  private decodeEa(m: number): void {
    const mod = m >> 6;
    const rm = m & 7;
    let seg = C.DS;
    let off: number;
    if (!this.a32) {
      switch (rm) {
        case 0: off = this.r16[C.EBX << 1] + this.r16[C.ESI << 1]; break;
        case 1: off = this.r16[C.EBX << 1] + this.r16[C.EDI << 1]; break;
        case 2: off = this.r16[C.EBP << 1] + this.r16[C.ESI << 1]; seg = C.SS; break;
        case 3: off = this.r16[C.EBP << 1] + this.r16[C.EDI << 1]; seg = C.SS; break;
        case 4: off = this.r16[C.ESI << 1]; break;
        case 5: off = this.r16[C.EDI << 1]; break;
        case 6:
          if (mod === 0) off = this.fetch16();
          else { off = this.r16[C.EBP << 1]; seg = C.SS; }
          break;
        default: off = this.r16[C.EBX << 1]; break;
      }
      if (mod === 1) off += this.fetchS8();
      else if (mod === 2) off += this.fetch16();
      off &= 0xffff;
    } else {
      if (rm === 4) {
        const sib = this.fetch8();
        const base = sib & 7;
        const index = (sib >> 3) & 7;
        if (base === 5 && mod === 0) off = this.fetch32();
        else {
          off = this.r32[base];
          if (base === C.ESP || base === C.EBP) seg = C.SS;
        }
        if (index !== 4) off = (off + (this.r32[index] << (sib >> 6))) | 0;
      } else if (rm === 5 && mod === 0) {
        off = this.fetch32();
      } else {
        off = this.r32[rm];
        if (rm === C.EBP) seg = C.SS;
      }
      if (mod === 1) off = (off + this.fetchS8()) | 0;
      else if (mod === 2) off = (off + this.fetch32()) | 0;
    }
    this.eaOff = off;
    this.eaSeg = this.segOverride >= 0 ? this.segOverride : seg;
  }

  /** Offset of the next byte/word of the memory operand (wrapping in 16-bit addressing). */
  eaPlus(n: number): number {
    return this.a32 ? (this.eaOff + n) | 0 : (this.eaOff + n) & 0xffff;
  }

  get regField(): number {
    return (this.modrm >> 3) & 7;
  }

  rm8(): number {
    return this.modrm >= 0xc0 ? this.getReg8(this.modrm & 7) : this.read8(this.eaSeg, this.eaOff);
  }

  rm16(): number {
    return this.modrm >= 0xc0 ? this.r16[(this.modrm & 7) << 1] : this.read16(this.eaSeg, this.eaOff);
  }

  rm32(): number {
    return this.modrm >= 0xc0 ? this.r32[this.modrm & 7] : this.read32(this.eaSeg, this.eaOff);
  }

  setRm8(v: number): void {
    if (this.modrm >= 0xc0) this.setReg8(this.modrm & 7, v);
    else this.write8(this.eaSeg, this.eaOff, v);
  }

  setRm16(v: number): void {
    if (this.modrm >= 0xc0) this.r16[(this.modrm & 7) << 1] = v;
    else this.write16(this.eaSeg, this.eaOff, v);
  }

  setRm32(v: number): void {
    if (this.modrm >= 0xc0) this.r32[this.modrm & 7] = v;
    else this.write32(this.eaSeg, this.eaOff, v);
  }

  /** Read a read-modify-write operand: the write is checked first, so a fault leaves state unchanged. */
  rmw8(): number {
    if (this.modrm >= 0xc0) return this.getReg8(this.modrm & 7);
    const lin = this.linW(this.eaSeg, this.eaOff, 1);
    this.probeWrite(lin, 1);
    return this.readLin8(lin);
  }

  rmw16(): number {
    if (this.modrm >= 0xc0) return this.r16[(this.modrm & 7) << 1];
    const lin = this.linW(this.eaSeg, this.eaOff, 2);
    this.probeWrite(lin, 2);
    return this.readLin16(lin);
  }

  rmw32(): number {
    if (this.modrm >= 0xc0) return this.r32[this.modrm & 7];
    const lin = this.linW(this.eaSeg, this.eaOff, 4);
    this.probeWrite(lin, 4);
    return this.readLin32(lin);
  }

  /** Data segment of string sources and moffs operands, honouring overrides. */
  dataSeg(): number {
    return this.segOverride >= 0 ? this.segOverride : C.DS;
  }

  // =====================================================================================
  // Stack
  // =====================================================================================

  get sp(): number {
    return this.ss32 ? this.r32[C.ESP] : this.r16[C.ESP << 1];
  }

  set sp(v: number) {
    if (this.ss32) this.r32[C.ESP] = v;
    else this.r16[C.ESP << 1] = v;
  }

  push16(v: number): void {
    const sp = this.ss32 ? (this.r32[C.ESP] - 2) | 0 : (this.r16[C.ESP << 1] - 2) & 0xffff;
    this.write16(C.SS, sp, v);
    this.sp = sp;
  }

  push32(v: number): void {
    const sp = this.ss32 ? (this.r32[C.ESP] - 4) | 0 : (this.r16[C.ESP << 1] - 4) & 0xffff;
    this.write32(C.SS, sp, v);
    this.sp = sp;
  }

  push(v: number): void {
    if (this.o32) this.push32(v);
    else this.push16(v);
  }

  pop16(): number {
    const sp = this.sp;
    const v = this.read16(C.SS, sp);
    this.sp = this.ss32 ? (sp + 2) | 0 : (sp + 2) & 0xffff;
    return v;
  }

  pop32(): number {
    const sp = this.sp;
    const v = this.read32(C.SS, sp);
    this.sp = this.ss32 ? (sp + 4) | 0 : (sp + 4) & 0xffff;
    return v;
  }

  pop(): number {
    return this.o32 ? this.pop32() : this.pop16();
  }

  /** Read the stack at SP + n without popping. */
  peek(n: number, size: number): number {
    const off = this.ss32 ? (this.r32[C.ESP] + n) | 0 : (this.r16[C.ESP << 1] + n) & 0xffff;
    return size === 4 ? this.read32(C.SS, off) : this.read16(C.SS, off);
  }

  // =====================================================================================
  // Exceptions and interrupts
  // =====================================================================================

  /** Abandon the current instruction with an exception (SDM vol.3 ch.6). */
  fault(vector: number, errorCode = -1): never {
    this.pendingVector = vector;
    this.pendingError = errorCode;
    throw FAULT;
  }

  /** #UD */
  undefinedOpcode(): never {
    this.fault(C.UD);
  }

  /** Deliver the pending exception, escalating to #DF and triple fault per SDM vol.3 table 6-5. */
  private deliverPending(): void {
    const vector = this.pendingVector;
    const error = C.hasErrorCode(vector) ? (this.pendingError < 0 ? 0 : this.pendingError) : -1;
    this.pendingVector = -1;
    const prev = this.delivering;
    if (prev === C.DF_VEC) {
      this.tripleFault(vector);
      return;
    }
    if (prev >= 0) {
      const benign = !C.isContributory(prev) && prev !== C.PF_VEC;
      const escalate = (C.isContributory(prev) && C.isContributory(vector)) ||
        (prev === C.PF_VEC && (C.isContributory(vector) || vector === C.PF_VEC));
      if (escalate && !benign) {
        this.delivering = C.DF_VEC;
        this.interrupt(C.DF_VEC, 0, false, true);
        return;
      }
    }
    this.delivering = vector;
    this.lastException = vector;
    this.interrupt(vector, error, false, true);
  }

  /** The last exception delivered (for tests and diagnostics). */
  lastException = -1;

  private tripleFault(vector: number): void {
    const where = `${this.sreg[C.CS].toString(16).padStart(4, '0')}:${(this.instrStart >>> 0).toString(16).padStart(this.cs32 ? 8 : 4, '0')}`;
    let text = '?';
    try {
      const bytes = new Uint8Array(15);
      for (let i = 0; i < 15; i++) bytes[i] = this.mem.read8((this.segBase[C.CS] + this.instrStart + i) & this.a20Mask);
      text = disassemble(bytes, 0, this.cs32).text;
    } catch {
      // the disassembly is only a courtesy in the message
    }
    const reason = `triple fault: ${C.EXCEPTION_NAMES[vector] ?? `vector ${vector}`} while delivering a double fault, at ${where} (${text})`;
    this.delivering = -1;
    this.halted = true;
    this.stopSlice = true;
    this.host.shutdown(reason);
  }

  /**
   * Deliver an interrupt or exception through the IVT (real mode) or the IDT.
   * `soft` marks INT n/INT3/INTO (privilege check against the gate's DPL; v86 IOPL rule).
   */
  interrupt(vector: number, error: number, soft: boolean, exception = false): void {
    const flags = exception && C.isFaultClass(vector) ? this.getFlags() | C.RF : this.getFlags();
    if (!this.protectedMode) {
      // Real mode: IVT entry of 4 bytes at IDTR.base (SDM vol.3 §20.1.4).
      if (vector * 4 + 3 > this.idtrLimit) this.fault(exception ? C.DF_VEC : C.GP, 0);
      const ip = this.readSys16((this.idtrBase + vector * 4) | 0);
      const cs = this.readSys16((this.idtrBase + vector * 4 + 2) | 0);
      this.push16(flags);
      this.push16(this.sreg[C.CS]);
      this.push16(this.eip);
      this.loadSeg(C.CS, cs);
      this.eip = ip;
      this.flags &= ~(C.IF | C.TF | C.AC | C.RF);
      this.delivering = -1;
      return;
    }
    this.interruptProtected(vector, error, soft, flags);
    this.delivering = -1;
  }

  private interruptProtected(vector: number, error: number, soft: boolean, flags: number): void {
    if (vector * 8 + 7 > this.idtrLimit) this.fault(C.GP, vector * 8 + 2 + (soft ? 0 : 1));
    const lo = this.readSys32((this.idtrBase + vector * 8) | 0);
    const hi = this.readSys32((this.idtrBase + vector * 8 + 4) | 0);
    const type = (hi >> 8) & 0x1f;
    const dpl = (hi >> 13) & 3;
    const ext = soft ? 0 : 1;
    if (type !== 0x05 && type !== 0x06 && type !== 0x07 && type !== 0x0e && type !== 0x0f) this.fault(C.GP, vector * 8 + 2 + ext);
    // INT n from a lower privilege than the gate's DPL: #GP (SDM vol.3 §6.12.1.1). In v86 with IOPL<3, INT n is #GP(0).
    if (soft) {
      if (this.v86 && ((this.flags & C.IOPL) >> 12) < 3) this.fault(C.GP, 0);
      if (dpl < this.cpl) this.fault(C.GP, vector * 8 + 2);
    }
    if ((hi & 0x8000) === 0) this.fault(C.NP, vector * 8 + 2 + ext);
    if (type === 0x05) {
      this.taskGate(lo >>> 16, error, ext);
      return;
    }
    const gate32 = (type & 8) !== 0;
    const selector = lo >>> 16;
    const offset = gate32 ? (lo & 0xffff) | (hi & 0xffff0000) : lo & 0xffff;
    if ((selector & 0xfffc) === 0) this.fault(C.GP, ext);
    if (!this.readDescriptor(selector)) this.fault(C.GP, (selector & 0xfffc) + ext);
    const cdHi = this.descHi;
    const cdLo = this.descLo;
    const ctype = (cdHi >> 8) & 0x1f;
    if ((ctype & 0x18) !== 0x18) this.fault(C.GP, (selector & 0xfffc) + ext);
    const cdpl = (cdHi >> 13) & 3;
    if (cdpl > this.cpl) this.fault(C.GP, (selector & 0xfffc) + ext);
    if ((cdHi & 0x8000) === 0) this.fault(C.NP, (selector & 0xfffc) + ext);
    const conforming = (ctype & 4) !== 0;
    const wasV86 = this.v86;
    const oldCs = this.sreg[C.CS];
    const oldEip = this.eip;
    if (!conforming && cdpl < this.cpl) {
      // Inter-privilege: new stack from the TSS (SDM vol.3 §6.12.1, figure 6-4).
      if (wasV86 && cdpl !== 0) this.fault(C.GP, (selector & 0xfffc) + ext);
      const { ss, esp } = this.stackFromTss(cdpl, ext);
      const oldSs = this.sreg[C.SS];
      const oldEsp = this.r32[C.ESP];
      // Load the new SS from its descriptor (checks per §6.12.1.1 happen in stackFromTss).
      this.readDescriptor(ss);
      this.sreg[C.SS] = ss;
      this.setSegCacheRaw(C.SS, this.descBase(), this.descLimit(), this.descHi | 0x100);
      this.descLo = cdLo;
      this.descHi = cdHi;
      this.setCpl(cdpl);
      this.ss32 = (this.segAccess[C.SS] & 0x400000) !== 0;
      this.r32[C.ESP] = esp;
      if (!this.ss32) this.r32[C.ESP] = esp & 0xffff;
      const push = gate32 ? (v: number) => this.push32(v) : (v: number) => this.push16(v);
      if (wasV86) {
        push(this.sreg[C.GS]);
        push(this.sreg[C.FS]);
        push(this.sreg[C.DS]);
        push(this.sreg[C.ES]);
        for (const s of [C.GS, C.FS, C.DS, C.ES]) {
          this.sreg[s] = 0;
          this.segAccess[s] = 0;
          this.segRights[s] = 0;
          this.segBase[s] = 0;
          this.segLo[s] = 1;
          this.segHi[s] = 0;
        }
      }
      push(oldSs);
      push(oldEsp);
      push(flags);
      push(oldCs);
      push(oldEip);
      if (error >= 0) push(error);
    } else {
      if (wasV86) this.fault(C.GP, (selector & 0xfffc) + ext);
      if (gate32) {
        this.push32(flags);
        this.push32(oldCs);
        this.push32(oldEip);
        if (error >= 0) this.push32(error);
      } else {
        this.push16(flags);
        this.push16(oldCs);
        this.push16(oldEip);
        if (error >= 0) this.push16(error);
      }
    }
    this.descLo = cdLo;
    this.descHi = cdHi;
    const newCpl = conforming ? this.cpl : cdpl;
    this.sreg[C.CS] = (selector & 0xfffc) | newCpl;
    this.setSegCacheRaw(C.CS, this.descBase(), this.descLimit(), cdHi | 0x100);
    this.eip = offset;
    // Interrupt gates clear IF; both clear TF, NT, VM, RF (SDM vol.3 §6.12.1.3).
    this.flags &= ~(C.TF | C.NT | C.VM | C.RF);
    if ((type & 1) === 0) this.flags &= ~C.IF;
    this.setCpl(newCpl);
  }

  /** SS:ESP for privilege `dpl` from the current TSS (32-bit or 16-bit). */
  stackFromTss(dpl: number, ext: number): { ss: number; esp: number } {
    const tss32 = (this.trType & 8) !== 0;
    let ss: number, esp: number;
    if (tss32) {
      const at = 4 + dpl * 8;
      if (at + 5 > this.trLimit) this.fault(C.TS, (this.tr & 0xfffc) + ext);
      esp = this.readSys32((this.trBase + at) | 0);
      ss = this.readSys16((this.trBase + at + 4) | 0);
    } else {
      const at = 2 + dpl * 4;
      if (at + 3 > this.trLimit) this.fault(C.TS, (this.tr & 0xfffc) + ext);
      esp = this.readSys16((this.trBase + at) | 0);
      ss = this.readSys16((this.trBase + at + 2) | 0);
    }
    if ((ss & 0xfffc) === 0) this.fault(C.TS, ext);
    if (!this.readDescriptor(ss)) this.fault(C.TS, (ss & 0xfffc) + ext);
    const hi = this.descHi;
    if ((ss & 3) !== dpl || ((hi >> 13) & 3) !== dpl || ((hi >> 8) & 0x1a) !== 0x12) this.fault(C.TS, (ss & 0xfffc) + ext);
    if ((hi & 0x8000) === 0) this.fault(C.SS_VEC, (ss & 0xfffc) + ext);
    return { ss, esp };
  }

  /** An interrupt or exception through a task gate: switch to the gate's TSS (task.ts). */
  taskGate(selector: number, error: number, ext: number): void {
    taskSwitch(this, selector, 'interrupt', error, ext);
  }

  /** IRET with NT set: back to the task named by the current TSS's previous-task link. */
  taskReturn(): void {
    taskSwitch(this, this.readSys16(this.trBase), 'iret', -1, 0);
  }

  // =====================================================================================
  // Control registers
  // =====================================================================================

  setCr0(v: number): void {
    // Setting PG without PE is #GP; so is NW without CD (SDM vol.3 §2.5, MOV CR).
    if ((v & C.CR0_PG) && !(v & C.CR0_PE)) this.fault(C.GP, 0);
    if ((v & C.CR0_NW) && !(v & C.CR0_CD)) this.fault(C.GP, 0);
    const changed = this.cr0 ^ v;
    this.cr0 = v | C.CR0_ET;
    if (changed & (C.CR0_PG | C.CR0_WP | C.CR0_PE)) this.flushTlb(true);
    if (changed & C.CR0_PE) {
      if (!(v & C.CR0_PE)) this.setCpl(0);
      for (let s = 0; s < 6; s++) this.computeSegRange(s);
      this.updateModeCaches();
    }
  }

  setCr3(v: number): void {
    this.cr3 = v;
    this.flushTlb((this.cr4 & C.CR4_PGE) === 0);
  }

  setCr4(v: number): void {
    // Reserved bits (and PAE, VME which this CPU does not offer) are #GP (SDM vol.3 §2.5).
    if (v & ~(C.CR4_TSD | C.CR4_DE | C.CR4_PSE | C.CR4_PGE | C.CR4_PCE | C.CR4_OSFXSR | C.CR4_OSXMMEXCPT | C.CR4_MCE)) this.fault(C.GP, 0);
    const changed = this.cr4 ^ v;
    this.cr4 = v;
    if (changed & (C.CR4_PSE | C.CR4_PGE)) this.flushTlb(true);
  }

  // =====================================================================================
  // Run loop
  // =====================================================================================

  /** Execute up to `max` instructions; returns how many retired. Stops early when halted. */
  run(max: number): number {
    let n = 0;
    this.retired = 0;
    this.stopSlice = false;
    while (n < max) {
      if (this.halted) {
        if (!this.wakeFromHalt()) break;
      }
      // The instruction after STI, MOV SS or POP SS runs alone: interrupts are looked at
      // right after it, so it may not start a translated block.
      let shadowed = false;
      if (this.interruptShadow > 0) {
        this.interruptShadow--;
        shadowed = true;
      } else if (this.nmiReady || ((this.flags & C.IF) !== 0 && this.intrLine)) this.serviceInterrupt();
      try {
        n = this.runStraight(n, max, shadowed);
      } catch (e) {
        if (e !== FAULT) throw e;
        // `retired` is the count before the faulting instruction (a block keeps it exact too).
        n = this.retired + 1;
        this.eip = this.instrStart;
        this.rep = 0;
        try {
          this.deliverPending();
        } catch (e2) {
          if (e2 !== FAULT) throw e2;
          this.eip = this.instrStart;
          try {
            this.deliverPending();
          } catch (e3) {
            if (e3 !== FAULT) throw e3;
            this.tripleFault(this.pendingVector);
          }
        }
      }
      // HLT, a mode switch, a reset request or a long REP: hand control back to the machine.
      if (this.stopSlice) {
        this.stopSlice = false;
        break;
      }
    }
    this.instructionCount += n;
    return n;
  }

  /**
   * run()'s inner loop: straight-line execution, translated blocks and interpreted
   * instructions, until the budget `end` is spent, a fault is thrown or a state change
   * (an interrupt, an interrupt shadow, a stop request) needs run()'s attention; returns
   * the new count. A method of its own, not a loop nested in run(), because V8 compiles a
   * hot nested loop "on stack" for that loop alone and throws the code away each time the
   * loop is left (deopt reason "exit from OSR'd inner loop"): in Chromium that happened
   * about 70 times per tiny-linux boot, each followed by another compile of run() with
   * the interpreter inlined.
   */
  private runStraight(n: number, end: number, shadowed: boolean): number {
    // Look for a block only where one can start: after a transfer, a block, or an
    // instruction a block cannot continue past; and where a translation of the code
    // before would have ended (a page end, MAX_INSTRUCTIONS straight-line instructions),
    // so every part of a long unrolled function grows hot at the same pace as its entry.
    let boundary = true;
    let straight = 0;
    while (n < end) {
      if (boundary && this.blocks !== null && !shadowed) {
        straight = 0;
        const m = this.runBlock(this.blocks, n, end);
        if (m >= 0) {
          n = m;
          this.retired = n;
          if (this.stopSlice || this.interruptShadow > 0) break;
          if (this.nmiReady || ((this.flags & C.IF) !== 0 && this.intrLine)) break;
          continue;
        }
      }
      this.step();
      this.retired = ++n;
      shadowed = false;
      if (this.blocks !== null) {
        const kind = STRAIGHT_LINE[this.lastOp];
        const length = (this.eip - this.instrStart) >>> 0;
        boundary = (kind === FALLS_THROUGH ? length > 15 : length !== kind) // moved EIP
          || ++straight >= MAX_INSTRUCTIONS || ((this.eip ^ this.instrStart) & ~0xfff) !== 0;
      }
      if (this.stopSlice || this.interruptShadow > 0) break;
      if (this.nmiReady || ((this.flags & C.IF) !== 0 && this.intrLine)) break;
    }
    return n;
  }

  /**
   * The translated block for the code at CS:EIP, run, if there is one and it fits the
   * budget and the CS limit, then the blocks that follow it (block chaining): returns the
   * new count, or -1 to interpret the instruction.
   * (Kept out of runStraight() so the interpreter's step() stays inlined there.)
   *
   * Chaining: after a block, the next one is run from here rather than from
   * runStraight(), found through the links of the block just run (BlockCache.chain: the
   * blocks it led to before, checked by physical address and validity) rather than the
   * cache's lookup, as QEMU chains translated blocks. Between two blocks everything
   * runStraight() and the first entry check is checked again, so interrupts, the slice
   * budget, a stop request, a write to translated code (blockExit), and a change of mode,
   * CS, CPL, paging or A20 (through CS's fields, EFLAGS and the TLB entry read again for
   * the new EIP: a flushed entry is not direct) all end the chain exactly where the run
   * loop would have seen them.
   */
  private runBlock(cache: BlockCache, n: number, end: number): number {
    if (!this.cs32 || (this.flags & (C.TF | C.RF)) !== 0) return -1;
    let eip = this.eip;
    let lin = (this.csBase + eip) | 0;
    let e = this.tlbR[lin >>> 12];
    if ((e & 0xfff) !== 0) return -1;
    let block = cache.lookup((e >>> 0) + (lin & 0xfff));
    if (block === null || n + block.count > end || (eip >>> 0) + block.bytes - 1 > this.segHi[C.CS] || (eip >>> 0) < block.before) return -1;
    const start = n;
    let entries = 0;
    for (;;) {
      this.blockExit = false;
      const after = block.run(this, n, end);
      // A block whose first basic block found a reason to leave before it ran anything: the
      // interpreter takes the instruction (so the run loop always moves on).
      if (after === n) break;
      n = after;
      this.retired = n;
      entries++;
      // What runStraight() checks after a block, and blockExit (a write to translated code:
      // the links of its page are stale; a risen INTR line).
      if (this.blockExit || this.stopSlice || this.interruptShadow > 0 || this.nmiReady || ((this.flags & C.IF) !== 0 && this.intrLine)) break;
      // The first entry's checks for the next block.
      if (!this.cs32 || (this.flags & (C.TF | C.RF)) !== 0) break;
      eip = this.eip;
      lin = (this.csBase + eip) | 0;
      e = this.tlbR[lin >>> 12];
      if ((e & 0xfff) !== 0) break;
      const next = cache.chain(block, (e >>> 0) + (lin & 0xfff));
      if (next === null || n + next.count > end || (eip >>> 0) + next.bytes - 1 > this.segHi[C.CS] || (eip >>> 0) < next.before) break;
      block = next.tier === 1 ? cache.entered(next) : next;
      if (block !== next && (n + block.count > end || (eip >>> 0) + block.bytes - 1 > this.segHi[C.CS] || (eip >>> 0) < block.before)) break;
    }
    if (n === start) return -1;
    cache.stats.executed += n - start;
    cache.stats.entries += entries;
    return n;
  }

  private wakeFromHalt(): boolean {
    if (this.nmiReady || ((this.flags & C.IF) !== 0 && this.intrLine)) {
      this.halted = false;
      return true;
    }
    return false;
  }

  private serviceInterrupt(): void {
    try {
      this.instrStart = this.eip;
      if (this.nmiReady) {
        this.nmiPending = false;
        this.nmiMasked = true;
        this.nmiReady = false;
        this.interrupt(C.NMI, -1, false);
        return;
      }
      if ((this.flags & C.IF) !== 0 && this.intrLine) {
        const vector = this.host.intrAcknowledge();
        this.interrupt(vector & 0xff, -1, false);
      }
    } catch (e) {
      if (e !== FAULT) throw e;
      this.eip = this.instrStart;
      this.deliverPending();
    }
  }

  /** The interrupt controller's INTR output changed. */
  setIntr(level: boolean): void {
    this.intrLine = level;
    if (level) this.blockExit = true;
  }

  /** The machine needs control back after the current instruction (a reset or power-off request from a device). */
  requestStop(): void {
    this.stopSlice = true;
    this.blockExit = true;
  }

  /** Raise NMI (the platform's NMI pin). */
  nmi(): void {
    this.nmiPending = true;
    this.nmiReady = !this.nmiMasked;
    if (this.nmiReady) this.blockExit = true;
  }

  /**
   * IRET ends the blocking of NMIs that the delivery of one began, even if the IRET then
   * faults (SDM vol.3 §6.7.1); an NMI that arrived meanwhile is taken after it.
   */
  unblockNmi(): void {
    this.nmiMasked = false;
    if (this.nmiPending) {
      this.nmiReady = true;
      this.blockExit = true;
    }
  }

  /** Whether an NMI waits to be delivered (pending and not blocked). */
  get nmiDeliverable(): boolean {
    return this.nmiReady;
  }

  /** Execute one instruction: prefixes, then the handler of its opcode. */
  step(): void {
    this.instrStart = this.eip;
    if (this.prefixDirty) this.clearPrefixes();
    let op = this.fetch8();
    if (IS_PREFIX[op] !== 0) op = this.prefixed(op);
    else if (op === 0x0f) op = 0x100 | this.fetch8();
    this.lastOp = op;
    // Single-step (SDM vol.3 §17.3.1.4): TF at the start of an instruction traps after it.
    // RF (left by an IRET to a faulting instruction) lasts until one instruction completes.
    if ((this.flags & (C.TF | C.RF)) !== 0) {
      this.traced(op);
      return;
    }
    OPS[op](this);
  }

  /** An unprefixed instruction's decoding state: operand and address size from CS, no override, no REP or LOCK. */
  private clearPrefixes(): void {
    this.prefixDirty = false;
    this.o32 = this.cs32;
    this.a32 = this.cs32;
    this.segOverride = -1;
    this.rep = 0;
    this.lock = false;
    this.fetchEnd = this.segHi[C.CS];
  }

  /** The last offset a prefixed instruction may fetch: 15 bytes from its start or the CS limit, whichever comes first. */
  private fifteenBytes(): number {
    const end = (this.instrStart + 14) >>> 0;
    const limit = this.segHi[C.CS];
    return end < limit ? end : limit;
  }

  /** The rest of decoding once a prefix was seen: the opcode, and LOCK's check (only prefixes set it). */
  private prefixed(first: number): number {
    this.prefixDirty = true;
    this.fetchEnd = this.fifteenBytes();
    let op = this.prefixes(first);
    if (op === 0x0f) op = 0x100 | this.fetch8();
    if (this.lock && !LOCKABLE[op]) this.checkLock(op);
    return op;
  }

  /**
   * An instruction run with TF or RF set: with TF, the #DB trap after it, unless it
   * suppressed that; with RF, RF clear once it completes (SDM vol.3 §17.3.1.1), unless it
   * is the IRET that loaded RF again.
   */
  private traced(op: number): void {
    const tf = (this.flags & C.TF) !== 0;
    const rf = (this.flags & C.RF) !== 0;
    this.suppressTrap = false;
    OPS[op](this);
    if (rf && op !== 0xcf) this.flags &= ~C.RF;
    if (tf && !this.suppressTrap && this.interruptShadow === 0) this.singleStepTrap();
  }

  /** Prefixes (SDM vol.2 §2.1.1): any number, in any order; returns the opcode after them. */
  private prefixes(op: number): number {
    for (;;) {
      switch (op) {
        case 0x26: this.segOverride = C.ES; break;
        case 0x2e: this.segOverride = C.CS; break;
        case 0x36: this.segOverride = C.SS; break;
        case 0x3e: this.segOverride = C.DS; break;
        case 0x64: this.segOverride = C.FS; break;
        case 0x65: this.segOverride = C.GS; break;
        case 0x66: this.o32 = !this.cs32; break;
        case 0x67: this.a32 = !this.cs32; break;
        case 0xf0: this.lock = true; break;
        case 0xf2: this.rep = 0xf2; break;
        case 0xf3: this.rep = 0xf3; break;
        default: return op;
      }
      op = this.fetch8();
    }
  }

  /** Set by INT n/INT3/INTO: the handler starts with TF clear and no trap is taken after the INT. */
  suppressTrap = false;

  private singleStepTrap(): void {
    this.dr[6] |= 0x4000; // DR6.BS
    this.interrupt(C.DB, -1, false);
  }

  /**
   * LOCK is valid only on the read-modify-write instructions with a memory destination;
   * anything else raises #UD on the 386 and later (SDM vol.2 "LOCK").
   */
  private checkLock(op: number): void {
    void op;
    this.fault(C.UD);
  }

  /** Called by the LOCK-able handlers once the ModRM is known: a register destination is #UD. */
  checkLockMemory(): void {
    if (this.lock && this.modrm >= 0xc0) this.fault(C.UD);
  }

  // =====================================================================================
  // Time stamp counter
  // =====================================================================================

  readTsc(): number {
    return this.host.readTsc() + this.tscOffset;
  }

  // =====================================================================================
  // Save/restore: plain data (DESIGN.md seam 2)
  // =====================================================================================

  saveState(): CpuState {
    this.materializeFlags();
    return {
      regs: Array.from(this.r32), eip: this.eip, flags: this.flags,
      sreg: Array.from(this.sreg), segBase: Array.from(this.segBase), segLimit: Array.from(this.segLimit), segAccess: Array.from(this.segAccess),
      cr0: this.cr0, cr2: this.cr2, cr3: this.cr3, cr4: this.cr4, dr: Array.from(this.dr),
      gdtr: [this.gdtrBase, this.gdtrLimit], idtr: [this.idtrBase, this.idtrLimit],
      ldtr: [this.ldtr, this.ldtrBase, this.ldtrLimit], tr: [this.tr, this.trBase, this.trLimit, this.trType],
      cpl: this.cpl, sysenter: [this.sysenterCs, this.sysenterEsp, this.sysenterEip], tscOffset: this.tscOffset,
      halted: this.halted, interruptShadow: this.interruptShadow, nmiPending: this.nmiPending, nmiMasked: this.nmiMasked,
      instructionCount: this.instructionCount,
      fpu: this.fpu?.saveState(),
    };
  }

  loadState(s: CpuState): void {
    this.r32.set(s.regs);
    this.eip = s.eip;
    this.flags = s.flags;
    this.lzMask = 0;
    this.sreg.set(s.sreg);
    this.segBase.set(s.segBase);
    this.segLimit.set(s.segLimit);
    this.segAccess.set(s.segAccess);
    this.cr0 = s.cr0; this.cr2 = s.cr2; this.cr3 = s.cr3; this.cr4 = s.cr4;
    this.dr.set(s.dr);
    [this.gdtrBase, this.gdtrLimit] = s.gdtr;
    [this.idtrBase, this.idtrLimit] = s.idtr;
    [this.ldtr, this.ldtrBase, this.ldtrLimit] = s.ldtr;
    [this.tr, this.trBase, this.trLimit, this.trType] = s.tr;
    this.cpl = s.cpl;
    [this.sysenterCs, this.sysenterEsp, this.sysenterEip] = s.sysenter;
    this.tscOffset = s.tscOffset;
    this.halted = s.halted;
    this.interruptShadow = s.interruptShadow;
    this.nmiPending = s.nmiPending;
    this.nmiMasked = s.nmiMasked;
    this.nmiReady = s.nmiPending && !s.nmiMasked;
    this.instructionCount = s.instructionCount;
    if (this.fpu && s.fpu !== undefined) this.fpu.loadState(s.fpu);
    for (let i = 0; i < 6; i++) this.computeSegRange(i);
    this.updateModeCaches();
    this.flushTlb(true);
    // RAM was replaced under the translations.
    this.blocks?.invalidateAll();
  }
}

export interface CpuState {
  regs: number[]; eip: number; flags: number;
  sreg: number[]; segBase: number[]; segLimit: number[]; segAccess: number[];
  cr0: number; cr2: number; cr3: number; cr4: number; dr: number[];
  gdtr: [number, number]; idtr: [number, number]; ldtr: [number, number, number]; tr: [number, number, number, number];
  cpl: number; sysenter: [number, number, number]; tscOffset: number;
  halted: boolean; interruptShadow: number; nmiPending: boolean; nmiMasked: boolean; instructionCount: number;
  /** The x87's own plain-data state (fpu/x87.ts X87State), when one is installed. */
  fpu?: unknown;
}

/** What the CPU needs of the x87 (src/emulator/cpu/fpu): execute one escape instruction. */
export interface FpuPort {
  exec(op: number, modrm: number, lin: number, seg: number, off: number, o32: boolean, pm: boolean, cs: number, eip: number): void;
  fwait(): void;
  reset(): void;
  /** FXSAVE/FXRSTOR of the 512-byte image at a linear address (already limit-checked). */
  fxsave(lin: number): void;
  fxrstor(lin: number): void;
  saveState(): unknown;
  loadState(state: unknown): void;
}

/** Parity of each byte value: 1 when the number of set bits is even (PF). */
export const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let b = i, p = 1;
  while (b) { p ^= b & 1; b >>= 1; }
  PARITY[i] = p;
}

/**
 * How each opcode continues, for the run loop's choice of where to look for a block:
 *  - FALLS_THROUGH: to the next instruction without ending a translated block (the
 *    common integer forms; FF's CALL/JMP move EIP and are caught as transfers);
 *  - the length of a Jcc (2, or 6 for 0F 8x): a block continues past a Jcc not taken,
 *    recognised by EIP having moved by just that (a taken jump there lands on the same
 *    address; a prefixed one only costs a needless lookup);
 *  - 0: anything else; the run loop asks the block cache about the next instruction.
 */
const STRAIGHT_LINE = new Uint8Array(512);
const FALLS_THROUGH = 1;
for (let op = 0; op < 0x40; op++) if ((op & 7) < 6) STRAIGHT_LINE[op] = FALLS_THROUGH;
for (let cc = 0; cc < 16; cc++) {
  STRAIGHT_LINE[0x70 + cc] = 2;
  STRAIGHT_LINE[0x180 + cc] = 6;
}
for (const [lo, hi] of [[0x40, 0x5f], [0x68, 0x6b], [0x80, 0x8b], [0x8d, 0x8d], [0x90, 0x99], [0xa0, 0xa9], [0xb0, 0xbf],
  [0xc0, 0xc1], [0xc6, 0xc7], [0xd0, 0xd3], [0xf6, 0xf7], [0xfe, 0xff], [0x140, 0x14f], [0x190, 0x19f],
  [0x1a3, 0x1a5], [0x1ab, 0x1ad], [0x1af, 0x1b1], [0x1b3, 0x1b3], [0x1b6, 0x1bf], [0x1c0, 0x1c1], [0x1c8, 0x1cf]]) {
  for (let op = lo; op <= hi; op++) STRAIGHT_LINE[op] = FALLS_THROUGH;
}

/** Prefix bytes (SDM vol.2 §2.1.1). */
const IS_PREFIX = new Uint8Array(256);
for (const p of [0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3]) IS_PREFIX[p] = 1;

/** Opcodes that accept LOCK (with a memory destination): SDM vol.2 "LOCK—Assert LOCK# Signal Prefix". */
export const LOCKABLE = new Uint8Array(512);
for (const op of [0x00, 0x01, 0x08, 0x09, 0x10, 0x11, 0x18, 0x19, 0x20, 0x21, 0x28, 0x29, 0x30, 0x31,
  0x80, 0x81, 0x82, 0x83, 0x86, 0x87, 0xf6, 0xf7, 0xfe, 0xff,
  0x1ab, 0x1b3, 0x1bb, 0x1ba, 0x1b0, 0x1b1, 0x1c0, 0x1c1, 0x1c7]) LOCKABLE[op] = 1;
