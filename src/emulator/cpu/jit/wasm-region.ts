/**
 * The first translated form of the WebAssembly tier (docs/cpu-speed.md, issue 25): a loop
 * within one page whose instructions are all register-only and in a small subset,
 * compiled to one WebAssembly function (wasm-emit.ts) with the guest registers and the
 * lazy-flag record in wasm locals: passed in as parameters, handed back by one call out.
 * Off by default: BlockCache uses it for a region (tier 2) only when asked
 * (Cpu.enableBlockCache's `wasm` option); anything else stays with codegen.ts.
 *
 * The form (translateWasmLoop): from the entry, straight on, instructions of the subset
 *   MOV r32,r32 / MOV r32,imm32; ADD OR AND SUB XOR CMP r32,r32 and r32,imm; TEST r32,r32;
 *   INC/DEC r32; SHL/SAL/SHR/SAR r32 by a constant 1..31;
 * with forward Jccs inside the loop (nested, as `jnc .no_poly` in a CRC loop), ending in a
 * Jcc (not P/NP) or LOOP back to the entry. Anything else (a prefix, a memory operand, a
 * branch elsewhere, another opcode, a flag read whose setter depends on the path taken)
 * and the code is not this form: null, and the JavaScript translator takes it.
 *
 * Exactness with the interpreter, as codegen.ts's regions keep it:
 *  - the budget: each basic block of the loop checks on arrival that its instructions fit
 *    in what the run loop allows (as a region's basic block does), so it never retires
 *    past `end`, and leaves with EIP at its start otherwise;
 *  - nothing in the subset touches memory, faults, or changes IF/TF/mode, so the only
 *    exits are the budget and the closing branch not taken (EIP after it);
 *  - the flags: each instruction leaves the lazy record (lzOp, lzA, lzB, lzR, lzBits,
 *    lzMask) and `flags` exactly as alu.ts/codegen.ts do (a logic result leaves lzA/lzB as
 *    they were; INC/DEC first fold the current CF into `flags`), and a Jcc reads the
 *    condition from the record of the instruction that set it (known here).
 */
import * as C from '../constants.ts';
import type { Cpu } from '../cpu.ts';
import { Body, encodeModule, OP } from './wasm-emit.ts';

const LAZY_ADD = 0, LAZY_SUB = 1, LAZY_LOGIC = 2, LAZY_SHIFT = 3;
const ARITH = C.ARITH_FLAGS;
const MAX_LOOP = 48;

/** What set the flags last: the lazy kind, and whether CF is in `flags` (INC/DEC). */
interface FlagKind { op: number; cfInFlags: boolean }

type Insn =
  | { kind: 'mov'; dst: number; src: number }
  | { kind: 'movi'; dst: number; imm: number }
  | { kind: 'alu'; aop: number; dst: number; src: number; imm: number | null }
  | { kind: 'test'; dst: number; src: number }
  | { kind: 'incdec'; dec: boolean; reg: number }
  | { kind: 'shift'; sop: number; reg: number; k: number }
  | { kind: 'jcc'; cc: number }
  | { kind: 'loop' }
  /** A Jcc forward to instruction `to` of the loop (skipping the ones between when taken). */
  | { kind: 'skip'; cc: number; to: number };

/** The translated loop: a Block's function and sizes (block-cache.ts). */
export interface WasmLoop {
  readonly run: (c: Cpu, n: number, end: number) => number;
  readonly count: number;
  readonly bytes: number;
  /** Bytes read, for a memo of compiled modules (equal bytes, equal code). */
  readonly key: string;
}

/** Decodes the loop at physical `phys`, or null when the code there is not this form. */
function decodeLoop(ram: Uint8Array, phys: number): { insns: Insn[]; starts: number[]; bytes: number } | null {
  const pageEnd = (phys & ~0xfff) + 0x1000;
  let pos = phys;
  const byte = (): number => {
    if (pos >= pageEnd) throw RangeError('page end');
    return ram[pos++];
  };
  const imm32 = (): number => byte() | (byte() << 8) | (byte() << 16) | (byte() << 24);
  const imm8s = (): number => (byte() << 24) >> 24;
  const insns: Insn[] = [];
  /** Offsets of the instructions from the entry, and the forward targets of skips (offsets). */
  const starts: number[] = [];
  const skipTargets: number[] = [];
  try {
    while (insns.length < MAX_LOOP) {
      starts.push(pos - phys);
      const op = byte();
      if ((op & 0xc4) === 0 && (op & 7) < 4 && (op & 1) === 1 && op !== 0x11 && op !== 0x13 && op !== 0x19 && op !== 0x1b) {
        // ALU Ev,Gv (x1) / Gv,Ev (x3): ADD OR AND SUB XOR CMP (op >> 3); not ADC/SBB.
        const m = byte();
        if (m < 0xc0) return null;
        const g = (m >> 3) & 7, e = m & 7;
        insns.push((op & 2) === 0 ? { kind: 'alu', aop: op >> 3, dst: e, src: g, imm: null } : { kind: 'alu', aop: op >> 3, dst: g, src: e, imm: null });
      } else if (op === 0x81 || op === 0x83) {
        const m = byte();
        const aop = (m >> 3) & 7;
        if (m < 0xc0 || aop === 2 || aop === 3) return null;
        insns.push({ kind: 'alu', aop, dst: m & 7, src: -1, imm: op === 0x81 ? imm32() : imm8s() });
      } else if (op === 0x85) {
        const m = byte();
        if (m < 0xc0) return null;
        insns.push({ kind: 'test', dst: m & 7, src: (m >> 3) & 7 });
      } else if (op === 0x89 || op === 0x8b) {
        const m = byte();
        if (m < 0xc0) return null;
        const g = (m >> 3) & 7, e = m & 7;
        insns.push(op === 0x89 ? { kind: 'mov', dst: e, src: g } : { kind: 'mov', dst: g, src: e });
      } else if (op >= 0xb8 && op <= 0xbf) {
        insns.push({ kind: 'movi', dst: op & 7, imm: imm32() });
      } else if (op >= 0x40 && op <= 0x4f) {
        insns.push({ kind: 'incdec', dec: op >= 0x48, reg: op & 7 });
      } else if (op === 0xc1 || op === 0xd1) {
        const m = byte();
        const sop = (m >> 3) & 7;
        if (m < 0xc0 || sop < 4) return null;
        const k = op === 0xd1 ? 1 : byte() & 31;
        if (k === 0) return null;
        insns.push({ kind: 'shift', sop, reg: m & 7, k });
      } else if ((op >= 0x70 && op <= 0x7f) || op === 0xe2 || op === 0x0f) {
        let cc = op & 15, rel: number;
        if (op === 0x0f) {
          const op2 = byte();
          if (op2 < 0x80 || op2 > 0x8f) return null;
          cc = op2 & 15;
          rel = imm32();
        } else rel = imm8s();
        if (op !== 0xe2 && (cc === 10 || cc === 11)) return null;
        const target = (pos + rel) | 0;
        if (op !== 0xe2 && rel > 0 && target < pageEnd) {
          // A forward Jcc inside the loop (jnc .skip / xor / .skip:): kept if its target
          // turns out to be an instruction of the loop (checked at the end).
          insns.push({ kind: 'skip', cc, to: -1 });
          skipTargets.push(target - phys);
          continue;
        }
        // Otherwise only a branch back to the entry: the loop.
        if (target !== (phys | 0)) return null;
        insns.push(op === 0xe2 ? { kind: 'loop' } : { kind: 'jcc', cc });
        // Each skip's target: an instruction of the loop after it, up to the closing
        // branch, and skips nested (a later skip inside an earlier one ends by its end).
        let k = 0;
        const open: number[] = [];
        for (let i = 0; i < insns.length; i++) {
          while (open.length > 0 && open[open.length - 1] === i) open.pop();
          const insn = insns[i];
          if (insn.kind !== 'skip') continue;
          const to = starts.indexOf(skipTargets[k++]);
          if (to <= i || (open.length > 0 && to > open[open.length - 1])) return null;
          insn.to = to;
          open.push(to);
        }
        return { insns, starts, bytes: pos - phys };
      } else return null;
    }
  } catch {
    return null;
  }
  return null;
}

/**
 * Compiles the loop at physical `phys` (WebAssembly, synchronously: the module is small),
 * or null when the code there is not this form or the host cannot compile WebAssembly.
 */
export function translateWasmLoop(ram: Uint8Array, phys: number, memo?: Map<string, WebAssembly.Module>): WasmLoop | null {
  const d = decodeLoop(ram, phys);
  if (d === null) return null;
  const { insns, starts, bytes } = d;
  const last = insns[insns.length - 1];
  // A Jcc needs an instruction of the loop that sets the flags it reads.
  const setsFlags = (i: Insn): boolean => i.kind !== 'mov' && i.kind !== 'movi' && i.kind !== 'jcc' && i.kind !== 'loop' && i.kind !== 'skip';
  const anySetter = insns.some(setsFlags);
  if (last.kind === 'jcc' && !anySetter) return null;
  const key = Array.from(ram.subarray(phys, phys + bytes), (b) => b.toString(16).padStart(2, '0')).join('');
  let module = memo?.get(key);
  if (module === undefined) {
    try {
      module = new WebAssembly.Module(emit(insns, starts, bytes));
    } catch {
      return null;
    }
    memo?.set(key, module);
  }
  // State crosses in as the function's parameters and out as the arguments of one call
  // (`out`): a WebAssembly.Global's value is a call into the engine each time, which cost
  // more than a short loop's passes.
  let target: Cpu | null = null;
  const out = (r0: number, r1: number, r2: number, r3: number, r4: number, r5: number, r6: number, r7: number,
    flags: number, lzOp: number, lzA: number, lzB: number, lzR: number, lzMask: number, lzBits: number, exit: number): void => {
    const c = target!;
    const r = c.r32;
    r[0] = r0; r[1] = r1; r[2] = r2; r[3] = r3; r[4] = r4; r[5] = r5; r[6] = r6; r[7] = r7;
    c.flags = flags;
    c.lzOp = lzOp;
    c.lzA = lzA;
    c.lzB = lzB;
    c.lzR = lzR;
    c.lzMask = lzMask;
    c.lzBits = lzBits;
    c.eip = (c.eip + exit) | 0;
  };
  const run = (new WebAssembly.Instance(module, { env: { out } }).exports as unknown as { run: (...args: number[]) => number }).run;
  const count = insns.length;
  const firstSetter = insns.find(setsFlags);
  // INC/DEC before any other flag setter reads the CF the loop was entered with.
  const needsCf = firstSetter !== undefined && firstSetter.kind === 'incdec';
  const fn = (c: Cpu, n: number, end: number): number => {
    // What a region's basic block checks first (codegen.ts): the budget (the run loop
    // checked it for this entry), blockExit and stopSlice.
    if (c.blockExit || c.stopSlice) return n;
    const r = c.r32;
    target = c;
    return n + run(Math.min(end - n, 0x7fffffff), needsCf && c.cf() ? 1 : 0, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
      c.flags, c.lzOp, c.lzA, c.lzB, c.lzR, c.lzMask, c.lzBits);
  };
  return { run: fn, count, bytes, key };
}

function emit(insns: Insn[], starts: number[], bytes: number): Uint8Array<ArrayBuffer> {
  // (left, cfIn, EAX..EDI, flags, lzOp, lzA, lzB, lzR, lzMask, lzBits) -> instructions retired
  const b = new Body(17);
  const LEFT = 0, CF_IN = 1;
  const reg = [2, 3, 4, 5, 6, 7, 8, 9];
  const FL = 10, LOP = 11, LA = 12, LB = 13, LR = 14, LMASK = 15, LBITS = 16;
  const DONE = b.local(), ITER0 = b.local(), T = b.local(), U = b.local(), EXIT = b.local();
  const len = insns.length;
  const locals = [...reg, FL, LOP, LA, LB, LR, LMASK, LBITS];
  b.const(1).set(ITER0);

  /** Pushes CF (0/1) as the record of `k` gives it. */
  const cf = (k: FlagKind): void => {
    if (k.cfInFlags) b.get(FL).const(1).op(OP.i32_and);
    else if (k.op === LAZY_ADD) b.get(LA).get(LB).op(OP.i32_and).get(LA).get(LB).op(OP.i32_or).get(LR).const(-1).op(OP.i32_xor).op(OP.i32_and).op(OP.i32_or).const(31).op(OP.i32_shr_u);
    else if (k.op === LAZY_SUB) b.get(LA).const(-1).op(OP.i32_xor).get(LB).op(OP.i32_and).get(LA).const(-1).op(OP.i32_xor).get(LB).op(OP.i32_or).get(LR).op(OP.i32_and).op(OP.i32_or).const(31).op(OP.i32_shr_u);
    else if (k.op === LAZY_SHIFT) b.get(LA).const(1).op(OP.i32_and);
    else b.const(0);
  };
  const of = (k: FlagKind): void => {
    if (k.op === LAZY_ADD) b.get(LA).get(LR).op(OP.i32_xor).get(LB).get(LR).op(OP.i32_xor).op(OP.i32_and).const(31).op(OP.i32_shr_u);
    else if (k.op === LAZY_SUB) b.get(LA).get(LB).op(OP.i32_xor).get(LA).get(LR).op(OP.i32_xor).op(OP.i32_and).const(31).op(OP.i32_shr_u);
    else if (k.op === LAZY_SHIFT) b.get(LB).const(1).op(OP.i32_and);
    else b.const(0);
  };
  const zf = (): void => void b.get(LR).op(OP.i32_eqz);
  const sf = (): void => void b.get(LR).const(31).op(OP.i32_shr_u);
  /** Pushes whether condition cc holds (SDM vol.2 Jcc; P/NP are not in the subset). */
  const cond = (cc: number, k: FlagKind): void => {
    switch (cc >> 1) {
      case 0: of(k); break;
      case 1: cf(k); break;
      case 2: zf(); break;
      case 3: cf(k); zf(); b.op(OP.i32_or); break;
      case 4: sf(); break;
      case 6: sf(); of(k); b.op(OP.i32_ne); break;
      case 7: sf(); of(k); b.op(OP.i32_ne); zf(); b.op(OP.i32_or); break;
    }
    if (cc & 1) b.op(OP.i32_eqz);
  };
  const lazy = (op: number, a: number, bv: number | null, mask: number): void => {
    // a and b in locals (T holds the result); a logic result leaves lzA/lzB unchanged.
    b.const(op).set(LOP);
    if (op !== LAZY_LOGIC) {
      b.get(a).set(LA);
      if (bv === null) b.get(U).set(LB);
      else b.const(bv).set(LB);
    }
    b.get(T).set(LR);
    b.const(mask).set(LMASK);
    b.const(32).set(LBITS);
  };

  // The flag kind the previous pass ended with (what INC/DEC reads first on later passes).
  let lastKind: FlagKind | null = null;
  for (const i of insns) {
    if (i.kind === 'alu' || i.kind === 'test') lastKind = { op: i.kind === 'test' || [1, 4, 6].includes(i.aop) ? LAZY_LOGIC : i.aop === 0 ? LAZY_ADD : LAZY_SUB, cfInFlags: false };
    else if (i.kind === 'incdec') lastKind = { op: i.dec ? LAZY_SUB : LAZY_ADD, cfInFlags: true };
    else if (i.kind === 'shift') lastKind = { op: LAZY_SHIFT, cfInFlags: false };
  }

  // Basic blocks: the entry, after each skip, and each skip's target. Each checks the
  // budget for its own length on arrival and counts its instructions (codegen.ts: a basic
  // block leaves with EIP at its start when `n + length > end`).
  const skips = insns.some((i) => i.kind === 'skip');
  const leader = new Uint8Array(len + 1);
  leader[0] = 1;
  insns.forEach((i, at) => {
    if (i.kind === 'skip') leader[at + 1] = leader[i.to] = 1;
  });
  // With skips, INC/DEC reading the flags of the pass before, or flags read where two paths
  // leave different records, are not this form.
  const ambiguous = (): never => {
    throw new Error('flags not known statically');
  };
  b.block().loop();
  /** Kind of the last flag setter at each point: null at the pass's start, 'mixed' after a merge of different ones. */
  let kind: FlagKind | null | 'mixed' = null;
  const closeAt: { at: number; kind: FlagKind | null | 'mixed' }[] = [];
  const same = (x: FlagKind | null | 'mixed', y: FlagKind | null | 'mixed'): boolean =>
    x === y || (x !== null && y !== null && x !== 'mixed' && y !== 'mixed' && x.op === y.op && x.cfInFlags === y.cfInFlags);
  const known = (): FlagKind => (kind === null || kind === 'mixed' ? ambiguous() : kind);
  for (let at = 0; at < len; at++) {
    const i = insns[at];
    while (closeAt.length > 0 && closeAt[closeAt.length - 1].at === at) {
      const taken = closeAt.pop()!.kind;
      b.end();
      if (!same(taken, kind)) kind = 'mixed';
    }
    if (leader[at]) {
      let n = 1;
      while (at + n < len && !leader[at + n]) n++;
      b.get(LEFT).const(n).op(OP.i32_lt_s).if().const(starts[at]).set(EXIT).br(closeAt.length + 2).end();
      b.get(DONE).const(n).op(OP.i32_add).set(DONE);
      b.get(LEFT).const(n).op(OP.i32_sub).set(LEFT);
    }
    switch (i.kind) {
      case 'skip':
        b.block();
        cond(i.cc, known());
        b.brIf(0);
        closeAt.push({ at: i.to, kind });
        break;
      case 'mov': b.get(reg[i.src]).set(reg[i.dst]); break;
      case 'movi': b.const(i.imm).set(reg[i.dst]); break;
      case 'alu': case 'test': {
        const aop = i.kind === 'test' ? 4 : i.aop;
        // U holds b; the first operand is read from its register.
        if (i.kind === 'alu' && i.imm !== null) b.const(i.imm).set(U);
        else b.get(reg[i.src]).set(U);
        b.get(reg[i.dst]).get(U);
        b.op(aop === 0 ? OP.i32_add : aop === 1 ? OP.i32_or : aop === 4 ? OP.i32_and : aop === 6 ? OP.i32_xor : OP.i32_sub).set(T);
        const op = aop === 0 ? LAZY_ADD : aop === 5 || aop === 7 ? LAZY_SUB : LAZY_LOGIC;
        lazy(op, reg[i.dst], null, ARITH);
        if (i.kind === 'alu' && aop !== 7) b.get(T).set(reg[i.dst]);
        kind = { op, cfInFlags: false };
        break;
      }
      case 'incdec': {
        // alu.ts incDec: CF as it stands goes into flags, the rest is lazy.
        if (kind === null && skips) ambiguous();
        const prior = kind === null ? lastKind! : kind === 'mixed' ? ambiguous() : kind;
        if (kind === null) {
          // First setter of the pass: on the first pass CF is what the loop was entered with.
          b.get(CF_IN);
          cf(prior);
          b.get(ITER0).op(OP.select);
        } else cf(prior);
        b.set(U);
        b.get(FL).const(~C.CF).op(OP.i32_and).get(U).op(OP.i32_or).set(FL);
        b.get(reg[i.reg]).const(1).op(i.dec ? OP.i32_sub : OP.i32_add).set(T);
        lazy(i.dec ? LAZY_SUB : LAZY_ADD, reg[i.reg], 1, ARITH & ~C.CF);
        b.get(T).set(reg[i.reg]);
        kind = { op: i.dec ? LAZY_SUB : LAZY_ADD, cfInFlags: true };
        break;
      }
      case 'shift': {
        // codegen.ts shiftInline at 32 bits: CF (u) the last bit shifted out, OF (f2).
        const a = reg[i.reg], k = i.k;
        if (i.sop === 4 || i.sop === 6) {
          b.get(a).const(32 - k).op(OP.i32_shr_u).const(1).op(OP.i32_and).set(U);
          b.get(a).const(k).op(OP.i32_shl).set(T);
          b.get(T).const(31).op(OP.i32_shr_u).get(U).op(OP.i32_xor).set(LB);
        } else if (i.sop === 5) {
          b.get(a).const(k - 1).op(OP.i32_shr_u).const(1).op(OP.i32_and).set(U);
          if (k === 1) b.get(a).const(31).op(OP.i32_shr_u).set(LB);
          else b.const(0).set(LB);
          b.get(a).const(k).op(OP.i32_shr_u).set(T);
        } else {
          b.get(a).const(k - 1).op(OP.i32_shr_s).const(1).op(OP.i32_and).set(U);
          b.const(0).set(LB);
          b.get(a).const(k).op(OP.i32_shr_s).set(T);
        }
        b.const(LAZY_SHIFT).set(LOP).get(U).set(LA).get(T).set(LR).const(ARITH).set(LMASK).const(32).set(LBITS);
        b.get(T).set(a);
        kind = { op: LAZY_SHIFT, cfInFlags: false };
        break;
      }
      case 'loop':
      case 'jcc':
        break;
    }
  }
  // The branch back (taken: the next pass) or out.
  b.const(0).set(ITER0);
  const end = insns[insns.length - 1];
  if (end.kind === 'loop') {
    // LOOP with a 32-bit address size: ECX - 1, taken while not zero (flags unchanged).
    b.get(reg[C.ECX]).const(1).op(OP.i32_sub).tee(reg[C.ECX]).brIf(0);
  } else if (end.kind === 'jcc') {
    cond(end.cc, known());
    b.brIf(0);
  }
  b.const(bytes).set(EXIT);
  b.end().end();
  for (const l of locals) b.get(l);
  b.get(EXIT).call(0);
  b.get(DONE);
  return encodeModule({ imports: [{ module: 'env', name: 'out', params: 16, results: 0 }], funcs: [{ name: 'run', params: 17, results: 1, body: b }] });
}
