/**
 * Block translation: decode a run of 32-bit instructions from guest RAM and emit one
 * JavaScript function for it, so the common instructions run without the interpreter's
 * fetch, prefix and ModRM decoding and its dispatch through OPS (DESIGN.md seam 7).
 *
 * What a block is (translateBlock):
 *  - it starts at a physical address in 32-bit code (CS.D=1) and never leaves its 4 KiB page;
 *  - it is a region: the code reachable from its entry within the page, straight on and
 *    through conditional branches and direct jumps to the targets its caller lets it
 *    follow, in basic blocks of at most MAX_INSTRUCTIONS. The block cache asks for two
 *    sizes (block-cache.ts): first a straight line (a taken branch leaves, unless it goes
 *    back to the entry: a loop), and, once that stays hot, a region of up to MAX_REGION
 *    instructions over the hot code of the page. A jump to a basic block of the region
 *    stays in the function (a loop over a switch), so a loop of several basic blocks runs
 *    without returning to the run loop; it leaves at a transfer out of the region (CALL,
 *    RET, an indirect JMP/CALL, a jump elsewhere), before an instruction that did not
 *    fit, and after an instruction it hands to the interpreter whole ("terminal");
 *  - each basic block first checks the run loop's budget (`end`) for its own length;
 *  - memory operands, PUSH/POP/CALL/RET on a flat stack included, are read and written
 *    inline when the segment is flat, the TLB entry direct and the access aligned (plain
 *    RAM: no fault, no device); anything else calls the Cpu's accessors;
 *  - its code is position independent in EIP: `e0`, the EIP it was entered at, is the base of
 *    every offset, so the same bytes give the same source (and one compiled function).
 *
 * Exactness with the interpreter, instruction for instruction, is the contract:
 *  - before anything that can fault (on an inline access: before its slow path only),
 *    `c.instrStart` and `c.retired` are where the
 *    interpreter would have them, so a fault restarts the right instruction and the run
 *    loop counts exactly the instructions that retired; devices that read the clock during
 *    an access see the same sub-slice time;
 *  - after an instruction whose memory access took the slow path (`x`) the block leaves if `c.blockExit` is set
 *    (the INTR line rose because a device answered a read or write, a device asked for
 *    the machine back with Cpu.requestStop, or a store hit a page holding translated
 *    code), so interrupts are taken at the same instruction boundary as in the interpreter;
 *  - everything not translated here runs through `c.step()`, the interpreter itself:
 *    "pure" instructions (no mode, flag-IF/TF or control effects) continue the block,
 *    everything else ends it.
 * Flags stay lazy: translated arithmetic writes the lz* fields Cpu.setLazy would, and a
 * Jcc/SETcc/CMOVcc right after a CMP, SUB, TEST or logic instruction tests that
 * instruction's operands directly (fusedCondition) instead of reading them back (after an
 * inline shift, CF is the bit shifted out); an instruction whose flags the next flag-setting
 * instruction of its basic block replaces, with nothing between that could see them (a
 * read, a fault, a call, an exit), stores none (withoutDeadFlags).
 * The lockstep tests (jit.test.ts, boot-lockstep.test.ts) hold all this to the interpreter.
 */
import * as C from '../constants.ts';
import { LOCKABLE } from '../cpu.ts';

/** Longest block, in instructions: bounds the work a block can do before interrupts are seen. */
export const MAX_INSTRUCTIONS = 48;

/** The result of translating one block. */
export interface BlockSource {
  /** Body of `function (c, n, end)`: returns n plus the instructions retired, never more than end. */
  readonly source: string;
  /**
   * Instructions of the first basic block: the run loop checks its budget for these on
   * entry; every later basic block checks its own.
   */
  readonly count: number;
  /** Bytes from the entry to the end of the region's last instruction (the CS limit check). */
  readonly bytes: number;
  /** Bytes of the region before the entry (code a loop jumps back to): EIP may not wrap below 0. */
  readonly before: number;
}

const ARITH = C.ARITH_FLAGS;
const LAZY_ADD = 0;
const LAZY_SUB = 1;
const LAZY_LOGIC = 2;
const LAZY_SHIFT = 3;

/** Ran past the page (or the 15-byte limit) while decoding: the instruction is not in the block. */
const OUT_OF_BYTES = { outOfBytes: true } as const;

/** Opcodes the interpreter runs inside a block without ending it: no control, mode, IF or TF effects. */
const PURE = new Uint8Array(512);
for (const op of [
  0x27, 0x2f, 0x37, 0x3f, // DAA DAS AAA AAS
  0x9e, 0x9f, // SAHF LAHF
  0xa4, 0xa5, 0xa6, 0xa7, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, // string instructions (REP included)
  0xc0, 0xc1, 0xd0, 0xd1, 0xd2, 0xd3, // shifts and rotates not translated (RCL/RCR, 16-bit)
  0xc9, // LEAVE
  0xd4, 0xd5, 0xd6, 0xd7, // AAM AAD SALC XLAT
  0xf5, 0xf8, 0xf9, // CMC CLC STC
  0xf6, 0xf7, // MUL IMUL DIV IDIV
  0x8f, // POP Ev
  0x1a3, 0x1ab, 0x1b3, 0x1bb, 0x1ba, 0x1bc, 0x1bd, // BT BTS BTR BTC, BSF BSR
  0x1a4, 0x1a5, 0x1ac, 0x1ad, // SHLD SHRD
  0x1b0, 0x1b1, 0x1c0, 0x1c1, 0x1c7, // CMPXCHG XADD CMPXCHG8B
  0x1c8, 0x1c9, 0x1ca, 0x1cb, 0x1cc, 0x1cd, 0x1ce, 0x1cf, // BSWAP
  0x1af, // IMUL Gv,Ev (16-bit form)
  0x69, 0x6b, // IMUL Gv,Ev,I (16-bit form)
  // Port I/O and RDTSC: a device (or the clock) answers with the instruction count set,
  // as anywhere the interpreter runs; an interrupt it raises, a reset or stop it asks
  // for, is seen right after (interpret() leaves on blockExit/stopSlice/a moved EIP).
  // Calibration and delay loops (in al,61h; rdtsc; out 80h,al) spin on them.
  0xe4, 0xe5, 0xe6, 0xe7, 0xec, 0xed, 0xee, 0xef, 0x131,
]) PURE[op] = 1;

/** Whether opcode `op` (0x100 | byte for 0F xx) has a ModRM byte (SDM vol.2 appendix A opcode maps). */
function hasModrm(op: number): boolean {
  if (op < 0x100) {
    if (op < 0x40) return (op & 7) < 4;
    return (op >= 0x62 && op <= 0x63) || op === 0x69 || op === 0x6b || (op >= 0x80 && op <= 0x8f) ||
      op === 0xc0 || op === 0xc1 || (op >= 0xc4 && op <= 0xc7) || (op >= 0xd0 && op <= 0xd3) ||
      (op >= 0xd8 && op <= 0xdf) || op === 0xf6 || op === 0xf7 || op === 0xfe || op === 0xff;
  }
  const o = op & 0xff;
  return (o >= 0x40 && o <= 0x4f) || (o >= 0x90 && o <= 0x9f) || o === 0xa3 || o === 0xa4 || o === 0xa5 ||
    o === 0xab || o === 0xac || o === 0xad || o === 0xaf || o === 0xb0 || o === 0xb1 || o === 0xb3 ||
    (o >= 0xb6 && o <= 0xbf && o !== 0xb8 && o !== 0xb9) || o === 0xba || o === 0xc0 || o === 0xc1 || o === 0xc7;
}

/** Immediate bytes of a pure opcode (to find the next instruction); o16 is the 66 prefix in 32-bit code. */
function pureImmediate(op: number, reg: number, o16: boolean): number {
  switch (op) {
    case 0xc0: case 0xc1: case 0xd4: case 0xd5: case 0x1a4: case 0x1ac: case 0x1ba: case 0x6b: case 0xe4: case 0xe5: case 0xe6: case 0xe7: return 1;
    case 0x69: return o16 ? 2 : 4;
    case 0xf6: return reg < 2 ? 1 : 0;
    case 0xf7: return reg < 2 ? (o16 ? 2 : 4) : 0;
    default: return 0;
  }
}

function reg8(i: number): string {
  return `r8[${i < 4 ? i << 2 : ((i - 4) << 2) + 1}]`;
}
function reg(bits: number, i: number): string {
  return bits === 32 ? `r[${i}]` : bits === 16 ? `r16[${i << 1}]` : reg8(i);
}
function maskOf(bits: number): number {
  return bits === 32 ? -1 : (1 << bits) - 1;
}
function hex(v: number): string {
  return v < 0 ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}
function lazy(op: number, a: string, b: string, bits: number, mask: number): string {
  // A logic result's flags depend on the result alone (Cpu.lazyCF/lazyOF/af give 0 for it).
  const operands = op === LAZY_LOGIC ? '' : `c.lzA = ${a}; c.lzB = ${b}; `;
  return `c.lzOp = ${op}; ${operands}c.lzR = t; c.lzBits = ${bits}; c.lzMask = ${mask};`;
}

/** What the locals a, b, t hold after an ALU instruction: enough to test a condition directly. */
interface FlagSource {
  /**
   * INC_DEC: t is the result, but CF is the one before (only ZF and SF can be fused).
   * LAZY_SHIFT (an inline SHL/SHR/SAR by a constant, shiftInline): t is the result and u
   * the last bit shifted out, CF.
   */
  readonly kind: typeof LAZY_ADD | typeof LAZY_SUB | typeof LAZY_LOGIC | typeof LAZY_SHIFT | typeof INC_DEC;
  readonly bits: number;
}
const INC_DEC = 9;

/**
 * CF after the instruction just before, as 0 or 1 from the locals, when it set the flags
 * from a, b and t with 32-bit operands (SDM vol.1 §3.4.3.1); null when c.cf() must say.
 */
function carryOf(f: FlagSource | null): string | null {
  if (f !== null && f.kind === LAZY_SHIFT) return 'u';
  if (f === null || f.bits !== 32) return null;
  if (f.kind === LAZY_SUB) return '((a >>> 0) < (b >>> 0) ? 1 : 0)';
  if (f.kind === LAZY_ADD) return '((t >>> 0) < (a >>> 0) ? 1 : 0)';
  if (f.kind === LAZY_LOGIC) return '0';
  return null;
}

/**
 * Condition `cc` (SDM vol.2 appendix B.1.4.7) computed from the operands and result of
 * the instruction just before, when it set the flags from a, b and t: `cmp eax, ebx; jb`
 * becomes an unsigned compare of a and b. Null when c.cond() must read the flags.
 * 32-bit values are int32 (registers, reads and immediates all are), so signed compares
 * are JavaScript's and unsigned ones go through >>> 0.
 */
function fusedCondition(cc: number, f: FlagSource | null): string | null {
  if (f === null) return null;
  if (cc === 4) return 't === 0';
  if (cc === 5) return 't !== 0';
  // After a shift, CF is the bit shifted out, whatever the width: shr edx, 1; jnc (CRC loops).
  if (f.kind === LAZY_SHIFT && (cc === 2 || cc === 3)) return cc === 2 ? 'u !== 0' : 'u === 0';
  if (f.bits !== 32) return null;
  if (cc === 8) return 't < 0';
  if (cc === 9) return 't >= 0';
  if (f.kind === LAZY_SUB) {
    switch (cc) {
      case 2: return '(a >>> 0) < (b >>> 0)';
      case 3: return '(a >>> 0) >= (b >>> 0)';
      case 6: return '(a >>> 0) <= (b >>> 0)';
      case 7: return '(a >>> 0) > (b >>> 0)';
      case 12: return 'a < b';
      case 13: return 'a >= b';
      case 14: return 'a <= b';
      case 15: return 'a > b';
    }
  } else if (f.kind === LAZY_LOGIC) {
    // CF = OF = 0: B never, AE always, L is SF, LE is ZF or SF.
    switch (cc) {
      case 2: return 'false';
      case 3: return 'true';
      case 6: return 't === 0';
      case 7: return 't !== 0';
      case 12: return 't < 0';
      case 13: return 't >= 0';
      case 14: return 't <= 0';
      case 15: return 't > 0';
    }
  }
  return null;
}

/**
 * ALU operation `op` (ADD OR ADC SBB AND SUB XOR CMP, the order of opcodes 00-3F) on the
 * variables a and b into t, with the lazy flags alu.ts sets.
 */
function aluOp(op: number, bits: number): string {
  const m = maskOf(bits);
  switch (op) {
    case 0: return `t = (a + b) & ${m}; ${lazy(LAZY_ADD, 'a', 'b', bits, ARITH)}`;
    case 1: return `t = (a | b) & ${m}; ${lazy(LAZY_LOGIC, 'a', 'b', bits, ARITH)}`;
    case 2: return `t = H.alu(c, 2, a, b, ${bits});`;
    case 3: return `t = H.alu(c, 3, a, b, ${bits});`;
    case 4: return `t = a & b & ${m}; ${lazy(LAZY_LOGIC, 'a', 'b', bits, ARITH)}`;
    case 5: case 7: return `t = (a - b) & ${m}; ${lazy(LAZY_SUB, 'a', 'b', bits, ARITH)}`;
    default: return `t = (a ^ b) & ${m}; ${lazy(LAZY_LOGIC, 'a', 'b', bits, ARITH)}`;
  }
}

/**
 * SHL/SAL, SHR and SAR of `a` by a constant count 1..bits-1 into t, with the flags
 * alu.ts's shift() leaves (lazy, LAZY_SHIFT: CF in lzA, OF in lzB); null for the other
 * operations and counts, which go through shift() itself. `a` is already within `bits`
 * (a register view or a read of that size).
 */
function shiftInline(sop: number, k: number, bits: number): string | null {
  if (k === 0 || k >= bits || sop < 4) return null;
  const m = maskOf(bits), top = bits - 1;
  let code: string;
  if (sop === 4 || sop === 6) code = `u = (a >>> ${bits - k}) & 1; t = (a << ${k}) & ${m}; f2 = ((t >>> ${top}) & 1) ^ u;`;
  else if (sop === 5) code = `u = (a >>> ${k - 1}) & 1; t = a >>> ${k}; f2 = ${k === 1 ? `(a >>> ${top}) & 1` : '0'};`;
  else {
    const sv = bits === 32 ? 'a' : `((a << ${32 - bits}) >> ${32 - bits})`;
    code = `u = (${sv} >> ${k - 1}) & 1; t = (${sv} >> ${k}) & ${m}; f2 = 0;`;
  }
  return `${code} c.lzOp = ${LAZY_SHIFT}; c.lzA = u; c.lzB = f2; c.lzR = t; c.lzBits = ${bits}; c.lzMask = ${ARITH};`;
}

/**
 * The inline fast path's condition beyond a direct TLB entry: a word or dword access
 * aligned to its size. Within one page then, and, as a flat segment's base is aligned
 * too (see the region prologue), its offset cannot wrap past 4 GiB.
 */
function aligned(bits: number): string {
  return bits === 32 ? ' && (lin & 3) === 0' : bits === 16 ? ' && (lin & 1) === 0' : '';
}
/** Read `bits` from RAM offset `p` (an expression) into `into`, as Cpu.readLin* reads it. */
function ramRead(bits: number, p: string, into: string): string {
  if (bits === 32) return `${into} = ram32[(${p}) >>> 2];`;
  if (bits === 16) return `{ p = ${p}; ${into} = ram[p] | (ram[p + 1] << 8); }`;
  return `${into} = ram[${p}];`;
}
function ramWrite(bits: number, p: string, value: string): string {
  if (bits === 32) return `ram32[(${p}) >>> 2] = ${value};`;
  if (bits === 16) return `p = ${p}; ram[p] = ${value}; ram[p + 1] = ${value} >> 8;`;
  return `ram[${p}] = ${value};`;
}

/**
 * Within a basic block, the lazy-flag fields that hold a value known at translation time
 * (the operation, width and mask an ALU instruction stored), so a later instruction
 * storing the same value leaves the store out: `sub; sbb; cmp` stores lzOp, lzBits and
 * lzMask once. What the generated code calls (H.*, the interpreter) may store other
 * values: after such a line nothing is known. Faults leave the block, and memory accesses
 * and devices never touch the flags.
 */
class LazyStores {
  private readonly known = new Map<string, string>();

  prune(line: string): string {
    if (line.includes('H.') || line.includes('c.step()')) {
      this.known.clear();
      return line;
    }
    return line.replace(/c\.(lzOp|lzBits|lzMask) = (\d+); ?/g, (store: string, field: string, value: string) => {
      if (this.known.get(field) === value) return '';
      this.known.set(field, value);
      return store;
    });
  }
}

/** An instruction's stores of the lazy-flag record (Cpu.setLazy's fields). */
const LAZY_STORE = /c\.lz(?:Op|A|B|R|Bits|Mask) = [^;]+; ?/g;
/** INC/DEC's CF, kept from the flags before (and read from them unless the locals hold it). */
const KEEP_CF = new RegExp(`u = [^;]*; c\\.flags = \\(c\\.flags & ${~C.CF}\\) \\| u; ?`, 'g');
/** Anything left that may read the flags, fault, call out or leave: after it the flags must be in the record. */
const FLAG_BARRIER = /\bc\.|\bH\.|\breturn\b|\bcontinue\b|\bthrow\b/;

/**
 * The lines of a basic block's instructions with the flag work nobody can see left out
 * ("flags computed only when read"): an instruction that defines all six status flags
 * (a lazy record with the whole ARITH mask, or INC/DEC's record and kept CF) stores
 * nothing when a later instruction of the same basic block defines them all again and
 * nothing in between can read them, fault, call out or leave (pure register arithmetic
 * and moves). `inc esi; xor edx, eax` then costs no c.cf() and no stores for the INC.
 * Everything that stays reads its flags from the record exactly as before; the locals a,
 * b, t, u that fused conditions read are still computed.
 */
function withoutDeadFlags(decoded: readonly Decoded[]): string[][] {
  const out = decoded.map((d) => d.lines);
  let live = true; // the flags are read after the basic block (its exits, the next block)
  for (let j = decoded.length - 1; j >= 0; j--) {
    const d = decoded[j];
    const text = d.lines.join('\n');
    const keepsCf = text.replace(KEEP_CF, '') !== text;
    const rest = text.replace(LAZY_STORE, '').replace(KEEP_CF, '');
    const full = text.includes(`c.lzMask = ${ARITH};`) || (keepsCf && text.includes(`c.lzMask = ${ARITH & ~C.CF};`));
    if (d.kind !== FALLS || FLAG_BARRIER.test(rest)) live = true;
    else if (full) {
      if (!live) out[j] = d.lines.map((line) => line.replace(LAZY_STORE, '').replace(KEEP_CF, '')); // before it, nothing is read
      else live = keepsCf && text.includes('c.cf()'); // it defines them all, reading only INC/DEC's CF
    } else if (text !== rest) live = true; // a partial record: keep everything before it
  }
  return out;
}

/**
 * What an instruction's code may not do for the flag source of the instruction before it
 * to carry over it: set the flags (the lazy record, EFLAGS, a helper or the interpreter
 * may), or assign a, b, t or u, the locals a fused condition reads.
 */
const CLOBBERS_FLAG_SOURCE = /(?:^|[^\w.])[abtu] [-+*/&|^]?= |\bc\.lz|\bc\.flags\b|\bH\.|\bc\.step\(/;

/**
 * Whether the flags and the locals a, b, t, u after `d` are those before it: a MOV, LEA,
 * MOVZX, load, store, PUSH or POP, a SETcc or CMOVcc, a conditional branch not taken. A
 * fused condition can then test the flag setter before it (`cmp al, 0e8h; lea eax, [edi+1];
 * jne`: t !== 0, not c.cond()). Its memory slow paths may call the Cpu, which cannot see
 * the function's locals; a fault leaves the block with the record stored.
 */
function keepsFlagSource(d: Decoded): boolean {
  return (d.kind === FALLS || d.kind === JCC) && !d.lines.some((line) => CLOBBERS_FLAG_SOURCE.test(line));
}

/** A decoded ModRM operand: a register, or a memory offset expression in a segment. */
interface Operand {
  readonly reg: number; // -1 for memory
  readonly off: string;
  readonly seg: number;
}

/** How a decoded instruction continues. */
const FALLS = 0; // on to the next instruction
const ENDS = 1; // its code leaves the block (a transfer out, or an instruction for the interpreter)
const JCC = 2; // to `target` when `cond`, else on
const JMP = 3; // to `target`

/** One instruction decoded, with its code for a given place in its basic block. */
interface Decoded {
  /** Physical addresses of its first byte and of the byte after it. */
  readonly start: number;
  readonly next: number;
  readonly lines: string[];
  readonly kind: typeof FALLS | typeof ENDS | typeof JCC | typeof JMP;
  /** JCC/JMP: the physical address jumped to (maybe outside the page). */
  readonly target: number;
  /** JCC: the condition, an expression. */
  readonly cond: string;
  /** What the locals a, b, t hold after it (for the next instruction's fused condition). */
  readonly flags: FlagSource | null;
}

/** Instructions after which a translation follows no further jumps (a path in progress runs on to a MAX_INSTRUCTIONS boundary). */
export const MAX_REGION = 48;

/**
 * Translate the code reachable from `phys` within its page (its bytes read from `ram`)
 * into one function: a region of basic blocks, following conditional branches both ways
 * and direct jumps, up to MAX_REGION instructions. A jump between two instructions of the
 * region stays in the function (`pc` selects the basic block in a switch inside a loop),
 * so a loop of several blocks never returns to the run loop; only jumps out of the
 * region, calls, returns and instructions left to the interpreter do. Each basic block
 * starts with the run loop's budget check for its own length, so the region never
 * retires more than `end` and stops where the interpreter would look at a rising INTR.
 * `follow` says which jump targets to take into the region (the block cache passes the
 * starts of code that already ran hot: a path V8 compiled but never ran gives it no type
 * feedback, and the first run of such a path throws the optimized function away).
 * `stop` says where a path ends before an instruction it would fall into (the head of a
 * loop the block cache runs as WebAssembly: the region leaves there, as at a cut path).
 * Returns null when not even the first instruction can be translated.
 */
export function translateBlock(ram: Uint8Array, phys: number, maxRegion = MAX_REGION, inlineMemory = true, follow: (target: number) => boolean = () => true,
  stop: ((at: number) => boolean) | null = null): BlockSource | null {
  const pageStart = phys & ~0xfff;
  const insns = new Map<number, Decoded>();
  /** Bytes of the page that decoded instructions cover: a path meeting one mid-instruction stops. */
  const covered = new Uint8Array(0x1000);
  const leaders = new Set<number>([phys]);
  /** Segments the inline memory accesses use (the prologue loads what they need). */
  const segs = new Set<number>();
  const work = [phys];
  while (work.length > 0 && insns.size < maxRegion) {
    let p = work.pop()!;
    // A full region cuts a path only where the interpreter would look for a block (a whole
    // number of MAX_INSTRUCTIONS from where the path was jumped to), so the code after the
    // cut grows hot at the pace of the rest (see Cpu.runStraight).
    let pathLength = 0;
    while (!(insns.size >= maxRegion && pathLength % MAX_INSTRUCTIONS === 0) && !insns.has(p) && covered[p - pageStart] === 0) {
      if (stop !== null && p !== phys && stop(p)) break;
      let d: Decoded;
      try {
        d = decodeOne(ram, phys, p, 0, null, segs, inlineMemory);
      } catch (e) {
        if (e !== OUT_OF_BYTES) throw e;
        break;
      }
      let overlaps = false;
      for (let q = p; q < d.next; q++) if (covered[q - pageStart] !== 0) overlaps = true;
      if (overlaps) break;
      covered.fill(1, p - pageStart, d.next - pageStart);
      insns.set(p, d);
      pathLength++;
      const inPage = d.target >= pageStart && d.target < pageStart + 0x1000;
      if ((d.kind === JCC || d.kind === JMP) && inPage && (d.target === phys || (follow(d.target) && !(stop !== null && stop(d.target))))) {
        leaders.add(d.target);
        work.push(d.target);
      }
      if (d.kind !== FALLS && d.kind !== JCC) break;
      p = d.next;
    }
  }
  if (!insns.has(phys)) {
    // The first instruction does not fit in the page (or is over-long): the interpreter
    // runs it as a block of one.
    return { source: 'const e0 = c.eip;\nc.eip = e0; c.retired = n; c.step(); return n + 1;', count: 1, bytes: 1, before: 0 };
  }
  // Basic blocks in address order: a new one at each jump target, after anything that
  // does not fall through, and after MAX_INSTRUCTIONS (so a budget check comes at least
  // that often). A conditional branch does not end one: its taken side leaves from the
  // middle, as a side exit does.
  const starts = [...insns.keys()].sort((x, y) => x - y);
  const blocks: number[][] = [];
  let prev: Decoded | null = null;
  for (const at of starts) {
    const current = blocks.length > 0 ? blocks[blocks.length - 1] : null;
    if (current !== null && prev !== null && (prev.kind === FALLS || prev.kind === JCC) && prev.next === at && !leaders.has(at) && current.length < MAX_INSTRUCTIONS) current.push(at);
    else blocks.push([at]);
    prev = insns.get(at)!;
  }
  const blockAt = new Map<number, number>(blocks.map((b, k) => [b[0], k]));
  const out: string[] = [];
  let jumps = false; // some transfer stays in the region: the body needs its loop and switch
  const emitted: string[][] = [];
  for (let k = 0; k < blocks.length; k++) {
    const block = blocks[k];
    const lines: string[] = [];
    const len = block.length;
    let flags: FlagSource | null = null;
    /** A jump to `to` from the instruction `from` with `count` instructions of this basic block retired. */
    const jumpTo = (to: number, from: Decoded, count: number): void => {
      if (blockAt.has(to)) {
        lines.push(`n += ${count}; pc = ${blockAt.get(to)}; continue;`);
        jumps = true;
      } else {
        // Out of the region: the CS limit check of jump() in ops.ts, then back to the run loop.
        lines.push(`t = (e0 + ${to - phys}) | 0; if ((t >>> 0) > c.segHi[${C.CS}]) { c.instrStart = (e0 + ${from.start - phys}) | 0; c.retired = n + ${count - 1}; c.fault(${C.GP}, 0); }`);
        lines.push(`c.eip = t; return n + ${count};`);
      }
    };
    const fallTo = (to: number): void => {
      if (k + 1 < blocks.length && blocks[k + 1][0] === to) lines.push(`n += ${len};`);
      else if (blockAt.has(to)) {
        lines.push(`n += ${len}; pc = ${blockAt.get(to)}; continue;`);
        jumps = true;
      } else lines.push(`c.eip = (e0 + ${to - phys}) | 0; return n + ${len};`);
    };
    let last: Decoded | null = null;
    const lazyKnown = new LazyStores();
    const decoded: Decoded[] = [];
    for (let j = 0; j < len; j++) {
      const d = decodeOne(ram, phys, block[j], j, flags, segs, inlineMemory);
      flags = d.flags ?? (keepsFlagSource(d) ? flags : null);
      decoded.push(d);
    }
    const code = withoutDeadFlags(decoded);
    for (let j = 0; j < len; j++) {
      last = decoded[j];
      lines.push(`// +${block[j] - phys}`, ...code[j].map((line) => lazyKnown.prune(line)));
      if (last.kind === JCC) {
        // Taken: to its target; not taken: on in this basic block (or, at its end, to the next).
        lines.push(`if (${last.cond}) {`);
        jumpTo(last.target, last, j + 1);
        lines.push('}');
      }
    }
    const end = last!;
    if (end.kind === JMP) jumpTo(end.target, end, len);
    else if (end.kind === FALLS || end.kind === JCC) fallTo(end.next);
    emitted.push(lines);
  }
  const first = blocks[blockAt.get(phys)!];
  let low = phys, high = phys;
  for (const d of insns.values()) {
    if (d.start < low) low = d.start;
    if (d.next > high) high = d.next;
  }
  if (!jumps && blocks.length === 1) out.push(...emitted[0]);
  else if (blocks.length === 1) {
    // One basic block jumping back to itself: a loop, no switch.
    out.push('let pc = 0;', 'for (;;) {', `if (n + ${blocks[0].length} > end || c.blockExit || c.stopSlice) { c.eip = e0; return n; }`, ...emitted[0], '}');
  } else {
    // `pc` is the index of the basic block to run next: dense case labels let V8 dispatch
    // through a jump table rather than a chain of compares.
    out.push(`let pc = ${blockAt.get(phys)};`, 'for (;;) {', 'switch (pc) {');
    for (let k = 0; k < blocks.length; k++) {
      const at = blocks[k][0] - phys;
      // Each basic block checks the budget for its own length (the run loop did for the
      // first on entry) and whether anything asked the block to leave.
      out.push(`case ${k}: if (n + ${blocks[k].length} > end || c.blockExit || c.stopSlice) { c.eip = (e0 + ${at}) | 0; return n; }`);
      out.push(...emitted[k]);
    }
    // Every basic block ends in a return, a jump to another or a fall into the next.
    out.push('}', "throw new Error('translated region: no basic block ' + pc);", '}');
  }
  // For each segment an inline access uses: its base, and whether the fast path may use
  // it (readable and writable, base 0 mod 4, offsets 0..4 GiB-1, so an aligned access is
  // within the limit). Nothing a region runs can load a segment register or change CPL
  // (those instructions end it), so what is read here holds for the whole call.
  const prologue = [...segs].sort().map((sg) =>
    `const b${sg} = c.segBase[${sg}], k${sg} = (c.segRights[${sg}] & 3) === 3 && c.segLo[${sg}] === 0 && c.segHi[${sg}] === 0xffffffff && (b${sg} & 3) === 0;`);
  // The stack inline too when SS is flat and 32-bit (ESP, not SP, moves).
  if (segs.has(C.SS)) prologue.push(`const ks = k${C.SS} && c.ss32;`);
  const source = [
    'const r = c.r32, r16 = c.r16, r8 = c.r8, e0 = c.eip, tr = c.tlbR, tw = c.tlbW, ram = c.ram, ram32 = c.ram32;',
    ...prologue,
    'let a = 0, b = 0, t = 0, lin = 0, f = false, u = 0, f2 = 0, v = 0, e = 0, p = 0, x = 0;',
    ...out,
  ].join('\n');
  return { source, count: first.length, bytes: high - phys, before: phys - low };
}

function decodeOne(ram: Uint8Array, phys: number, start: number, index: number, flagsBefore: FlagSource | null, segs: Set<number>, inlineMemory: boolean): Decoded {
  const pageEnd = (phys & ~0xfff) + 0x1000;
  let pos = start; // decode position (physical)
  const limitPos = start + 15; // the instruction's 15 bytes end here
  const i = index;
  let ended = false;
  let flagSource: FlagSource | null = null;
  let kind: Decoded['kind'] = FALLS;
  let target = -1;
  let cond = '';

  const byte = (): number => {
    if (pos >= pageEnd || pos >= limitPos) throw OUT_OF_BYTES;
    return ram[pos++];
  };
  const imm8s = (): number => (byte() << 24) >> 24;
  const imm16 = (): number => byte() | (byte() << 8);
  const imm32 = (): number => byte() | (byte() << 8) | (byte() << 16) | (byte() << 24);

  const lines: string[] = [];
  let terminal = false;
  let accesses = false; // the instruction touches memory (set by pre())
  {
    {
      let seg = -1;
      let o16 = false;
      let a16 = false;
      let rep = 0;
      let lock = false;
      let op = byte();
      for (;;) {
        if (op === 0x26) seg = C.ES;
        else if (op === 0x2e) seg = C.CS;
        else if (op === 0x36) seg = C.SS;
        else if (op === 0x3e) seg = C.DS;
        else if (op === 0x64) seg = C.FS;
        else if (op === 0x65) seg = C.GS;
        else if (op === 0x66) o16 = true;
        else if (op === 0x67) a16 = true;
        else if (op === 0xf0) lock = true;
        else if (op === 0xf2 || op === 0xf3) rep = op;
        else break;
        op = byte();
      }
      if (op === 0x0f) op = 0x100 | byte();
      // The ALU instruction just before this one, if its a, b, t are still in the locals.
      const alu = (aop: number, bits: number): string => {
        flagSource = aop === 5 || aop === 7 ? { kind: LAZY_SUB, bits } : aop === 0 ? { kind: LAZY_ADD, bits } : aop === 1 || aop === 4 || aop === 6 ? { kind: LAZY_LOGIC, bits } : null;
        return aluOp(aop, bits);
      };
      const condition = (cc: number): string => fusedCondition(cc, flagsBefore) ?? `c.cond(${cc})`;
      const next = (): string => `(e0 + ${pos - phys}) | 0`;
      const here = `(e0 + ${start - phys}) | 0`;
      /**
       * Before a memory access: where a fault would restart, and how many instructions
       * retired before this one (the clock a device reads during the access). The access
       * may also change the INTR line or hit translated code: checked after the instruction.
       */
      const state = `x = 1; c.instrStart = ${here}; c.retired = n + ${i};`;
      const pre = (): void => {
        lines.push(state);
        accesses = true;
      };
      /**
       * An instruction whose memory accesses all go through read/write/rmwRead/rmwWrite
       * below: their fast path (a flat segment, a direct TLB entry, an aligned access) is
       * plain RAM, which can neither fault nor reach a device, so only their slow path
       * sets what pre() sets.
       */
      const mem = (): void => {
        accesses = true;
      };
      const interpret = (pure: boolean): void => {
        // The interpreter runs this instruction from its first prefix byte.
        lines.push(`c.eip = ${here}; c.retired = n + ${i}; c.step();`);
        if (pure) lines.push(`if (c.eip !== (${next()}) || c.stopSlice || c.blockExit) return n + ${i + 1};`);
        else {
          lines.push(`return n + ${i + 1};`);
          terminal = true;
        }
      };
      /** Skip a ModRM operand's bytes (for instructions left to the interpreter). */
      const skipModrm = (): number => {
        const m = byte();
        if (m >= 0xc0) return m;
        const mod = m >> 6, rm = m & 7;
        if (a16) {
          if (mod === 0 && rm === 6) pos += 2;
          else if (mod === 1) pos += 1;
          else if (mod === 2) pos += 2;
        } else {
          let base = rm;
          if (rm === 4) base = byte() & 7;
          if (mod === 0 && base === 5) pos += 4;
          else if (mod === 1) pos += 1;
          else if (mod === 2) pos += 4;
        }
        if (pos > pageEnd || pos > limitPos) throw OUT_OF_BYTES;
        return m;
      };
      /** Decode a ModRM byte with 32-bit addressing (SDM vol.2 tables 2-2, 2-3). */
      const modrm = (): { m: number; rm: Operand } => {
        const m = byte();
        if (m >= 0xc0) return { m, rm: { reg: m & 7, off: '', seg: -1 } };
        const mod = m >> 6, rm = m & 7;
        let def = C.DS;
        const parts: string[] = [];
        let disp = 0;
        if (rm === 4) {
          const sib = byte();
          const base = sib & 7, index = (sib >> 3) & 7, scale = sib >> 6;
          if (base === 5 && mod === 0) disp = imm32();
          else {
            parts.push(`r[${base}]`);
            if (base === C.ESP || base === C.EBP) def = C.SS;
          }
          if (index !== 4) parts.push(scale ? `(r[${index}] << ${scale})` : `r[${index}]`);
        } else if (rm === 5 && mod === 0) {
          disp = imm32();
        } else {
          parts.push(`r[${rm}]`);
          if (rm === C.EBP) def = C.SS;
        }
        if (mod === 1) disp = imm8s();
        else if (mod === 2) disp = imm32();
        if (disp !== 0 || parts.length === 0) parts.push(hex(disp));
        const off = parts.length === 1 && parts[0].startsWith('r[') ? parts[0] : `(${parts.join(' + ')}) | 0`;
        return { m, rm: { reg: -1, off, seg: seg >= 0 ? seg : def } };
      };
      /** The value of operand o, as an expression; a memory operand is read into `v` first. */
      const read = (bits: number, o: Operand): string => {
        if (o.reg >= 0) return reg(bits, o.reg);
        if (!inlineMemory) {
          lines.push(`${state} v = c.read${bits}(${o.seg}, ${o.off});`);
          return 'v';
        }
        segs.add(o.seg);
        lines.push(`lin = (b${o.seg} + ${o.off}) | 0; e = tr[lin >>> 12];`);
        lines.push(`if (k${o.seg} && (e & 0xfff) === 0${aligned(bits)}) ${ramRead(bits, 'e | (lin & 0xfff)', 'v')}`);
        lines.push(`else { ${state} v = c.read${bits}(${o.seg}, ${o.off}); }`);
        return 'v';
      };
      /** Store `value` (an expression over locals) into operand o. */
      const write = (bits: number, o: Operand, value: string): void => {
        if (o.reg >= 0) lines.push(`${reg(bits, o.reg)} = ${value};`);
        else if (!inlineMemory) lines.push(`${state} c.write${bits}(${o.seg}, ${o.off}, ${value});`);
        else {
          segs.add(o.seg);
          lines.push(`v = ${value}; lin = (b${o.seg} + ${o.off}) | 0; e = tw[lin >>> 12];`);
          lines.push(`if (k${o.seg} && (e & 0xfff) === 0${aligned(bits)}) { ${ramWrite(bits, 'e | (lin & 0xfff)', 'v')} }`);
          lines.push(`else { ${state} c.write${bits}(${o.seg}, ${o.off}, v); }`);
        }
      };
      /**
       * Read-modify-write: `a` gets the old value (the write is probed first, as rmw8/16/32
       * do); `p` keeps the RAM offset for rmwWrite, or -1 after the slow path (then `lin`).
       */
      const rmwRead = (bits: number, o: Operand): void => {
        if (o.reg >= 0) lines.push(`a = ${reg(bits, o.reg)};`);
        else if (!inlineMemory) lines.push(`${state} lin = c.linW(${o.seg}, ${o.off}, ${bits >> 3}); c.probeWrite(lin, ${bits >> 3}); a = c.readLin${bits}(lin); p = -1;`);
        else {
          segs.add(o.seg);
          lines.push(`lin = (b${o.seg} + ${o.off}) | 0; e = tw[lin >>> 12];`);
          lines.push(`if (k${o.seg} && (e & 0xfff) === 0 && (tr[lin >>> 12] & 0xfff) === 0${aligned(bits)}) { p = e | (lin & 0xfff); ${ramRead(bits, 'p', 'a')} }`);
          lines.push(`else { ${state} lin = c.linW(${o.seg}, ${o.off}, ${bits >> 3}); c.probeWrite(lin, ${bits >> 3}); a = c.readLin${bits}(lin); p = -1; }`);
        }
      };
      const rmwWrite = (bits: number, o: Operand, value: string): void => {
        if (o.reg >= 0) lines.push(`${reg(bits, o.reg)} = ${value};`);
        else lines.push(`v = ${value}; if (p >= 0) { ${ramWrite(bits, 'p', 'v')} } else c.writeLin${bits}(lin, v);`);
      };
      /**
       * PUSH/POP of a dword on a flat 32-bit stack (`ks`, see the prologue) inline, as
       * Cpu.push32/pop32 do it; anything else through them, with the fault state set.
       */
      const push32 = (value: string): void => {
        accesses = true;
        if (!inlineMemory) {
          lines.push(`${state} c.push32(${value});`);
          return;
        }
        segs.add(C.SS);
        lines.push(`v = ${value}; lin = (b${C.SS} + r[4] - 4) | 0; e = tw[lin >>> 12];`);
        lines.push(`if (ks && (e & 0xfff) === 0 && (lin & 3) === 0) { ram32[(e | (lin & 0xfff)) >>> 2] = v; r[4] = (r[4] - 4) | 0; }`);
        lines.push(`else { ${state} c.push32(v); }`);
      };
      /** POP a dword into `into` (a register view or a local). */
      const pop32 = (into: string): void => {
        accesses = true;
        if (!inlineMemory) {
          lines.push(`${state} ${into} = c.pop32();`);
          return;
        }
        segs.add(C.SS);
        lines.push(`lin = (b${C.SS} + r[4]) | 0; e = tr[lin >>> 12];`);
        lines.push(`if (ks && (e & 0xfff) === 0 && (lin & 3) === 0) { v = ram32[(e | (lin & 0xfff)) >>> 2]; r[4] = (r[4] + 4) | 0; }`);
        lines.push(`else { ${state} v = c.pop32(); }`);
        lines.push(`${into} = v;`);
      };
      const memory = (o: Operand): boolean => o.reg < 0;
      /** A near transfer to `target` (an expression): the CS limit check of jump() in ops.ts. */
      const transfer = (target: string): void => {
        lines.push(`t = ${target}; if ((t >>> 0) > c.segHi[${C.CS}]) { c.instrStart = ${here}; c.retired = n + ${i}; c.fault(${C.GP}, 0); }`);
      };
      const exitTo = (): void => {
        lines.push(`c.eip = t; return n + ${i + 1};`);
        ended = true;
      };

      /** A pure instruction for the interpreter: its length is decoded so the block can go on after it. */
      const interpretPure = (): void => {
        if (hasModrm(op)) {
          const m = skipModrm();
          pos += pureImmediate(op, (m >> 3) & 7, o16);
        } else pos += pureImmediate(op, 0, o16);
        if (pos > pageEnd || pos > limitPos) throw OUT_OF_BYTES;
        interpret(true);
      };
      const v = o16 ? 16 : 32; // operand size of "v" forms
      const lockBad = lock && !LOCKABLE[op];
      if (a16 || lockBad || (rep !== 0 && ((op >= 0xa4 && op <= 0xa7) || (op >= 0xaa && op <= 0xaf) || (op >= 0x6c && op <= 0x6f)))) {
        // 16-bit addressing and invalid LOCKs are the interpreter's; so are REP strings (pure, below).
        if (PURE[op] && !lockBad) {
          interpretPure();
        } else interpret(false);
      } else if (op < 0x40 && (op & 7) < 6) {
        // 00-3F: ALU in six forms.
        const aop = op >> 3, form = op & 7, writes = aop !== 7;
        if (form === 4) {
          lines.push(`a = r8[0]; b = ${byte()}; ${alu(aop, 8)}`);
          if (writes) lines.push('r8[0] = t;');
        } else if (form === 5) {
          const b = v === 32 ? imm32() : imm16();
          lines.push(`a = ${reg(v, 0)}; b = ${hex(b)}; ${alu(aop, v)}`);
          if (writes) lines.push(`${reg(v, 0)} = t;`);
        } else {
          const bits = form & 1 ? v : 8;
          const { m, rm } = modrm();
          const r = (m >> 3) & 7;
          if (lock && !memory(rm)) interpret(false);
          else if (form < 2) {
            if (memory(rm)) mem();
            if (writes) rmwRead(bits, rm);
            else lines.push(`a = ${read(bits, rm)};`);
            lines.push(`b = ${reg(bits, r)}; ${alu(aop, bits)}`);
            if (writes) rmwWrite(bits, rm, 't');
          } else {
            if (memory(rm)) mem();
            lines.push(`a = ${reg(bits, r)}; b = ${read(bits, rm)}; ${alu(aop, bits)}`);
            if (writes) lines.push(`${reg(bits, r)} = t;`);
          }
        }
      } else if (op >= 0x40 && op <= 0x4f) {
        // INC/DEC r, as alu.ts's incDec: CF is kept (stored as it is now, from the
        // instruction before when the locals hold its operands), the rest lazy.
        const r = op & 7, dec = op >= 0x48;
        lines.push(`u = ${carryOf(flagsBefore) ?? '(c.cf() ? 1 : 0)'}; c.flags = (c.flags & ${~C.CF}) | u;`);
        lines.push(`a = ${reg(v, r)}; t = (a ${dec ? '-' : '+'} 1) & ${maskOf(v)}; c.lzOp = ${dec ? LAZY_SUB : LAZY_ADD}; c.lzA = a; c.lzB = 1; c.lzR = t; c.lzBits = ${v}; c.lzMask = ${ARITH & ~C.CF}; ${reg(v, r)} = t;`);
        flagSource = { kind: INC_DEC, bits: v };
      } else if (op >= 0x50 && op <= 0x57) {
        if (v === 32) push32(reg(32, op & 7));
        else {
          pre();
          lines.push(`c.push16(${reg(16, op & 7)});`);
        }
      } else if (op >= 0x58 && op <= 0x5f) {
        if (v === 32) pop32(reg(32, op & 7));
        else {
          pre();
          lines.push(`${reg(16, op & 7)} = c.pop16();`);
        }
      } else if (op === 0x68 || op === 0x6a) {
        const value = op === 0x6a ? (o16 ? imm8s() & 0xffff : imm8s()) : (o16 ? imm16() : imm32());
        if (v === 32) push32(hex(value));
        else {
          pre();
          lines.push(`c.push16(${hex(value)});`);
        }
      } else if ((op === 0x69 || op === 0x6b || op === 0x1af) && !o16) {
        // IMUL Gv, Ev(, imm): the 32-bit forms of imul3 and 0F AF.
        const { m, rm } = modrm();
        const r = (m >> 3) & 7;
        if (memory(rm)) mem();
        if (op === 0x1af) lines.push(`a = ${reg(32, r)}; b = ${read(32, rm)};`);
        else {
          lines.push(`a = ${read(32, rm)};`);
          lines.push(`b = ${hex(op === 0x6b ? imm8s() : imm32())};`);
        }
        lines.push(`t = H.mul32(a, b, true); ${reg(32, r)} = t; H.setMulFlags(c, H.MUL_HIGH[0] !== t >> 31, t, 32);`);
      } else if (op >= 0xe0 && op <= 0xe3 && !o16) {
        // LOOPNE, LOOPE, LOOP, JECXZ with ECX (the 67 prefix, CX, went to the interpreter
        // above): ECX counts down first, flags untouched, then a conditional branch.
        const rel = imm8s();
        if (op !== 0xe3) lines.push('r[1] = (r[1] - 1) | 0;');
        kind = JCC;
        cond = op === 0xe3 ? 'r[1] === 0' : op === 0xe2 ? 'r[1] !== 0' : `r[1] !== 0 && ${op === 0xe1 ? '' : '!'}(${condition(4)})`;
        target = pos + rel;
      } else if ((op >= 0x70 && op <= 0x7f) || (op >= 0x180 && op <= 0x18f)) {
        if (o16) {
          // A 16-bit Jcc truncates EIP: rare enough for the interpreter.
          interpret(false);
        } else {
          const rel = op < 0x100 ? imm8s() : imm32();
          // The branch itself is the region's to write (translateBlock): within the region
          // or out of it.
          kind = JCC;
          cond = condition(op & 0xf);
          target = pos + rel;
        }
      } else if (op >= 0x80 && op <= 0x83) {
        const bits = op === 0x81 || op === 0x83 ? v : 8;
        const { m, rm } = modrm();
        const aop = (m >> 3) & 7;
        let b: number;
        if (op === 0x81) b = v === 32 ? imm32() : imm16();
        else if (op === 0x83) b = v === 32 ? imm8s() : imm8s() & 0xffff;
        else b = byte();
        if ((lock && !memory(rm)) || (lock && aop === 7)) interpret(false);
        else {
          if (memory(rm)) mem();
          if (aop !== 7) rmwRead(bits, rm);
          else lines.push(`a = ${read(bits, rm)};`);
          lines.push(`b = ${hex(b)}; ${alu(aop, bits)}`);
          if (aop !== 7) rmwWrite(bits, rm, 't');
        }
      } else if (op === 0x84 || op === 0x85) {
        const bits = op === 0x85 ? v : 8;
        const { m, rm } = modrm();
        if (memory(rm)) mem();
        lines.push(`a = ${read(bits, rm)}; b = ${reg(bits, (m >> 3) & 7)}; ${alu(4, bits)}`);
      } else if (op === 0x86 || op === 0x87) {
        const bits = op === 0x87 ? v : 8;
        const { m, rm } = modrm();
        const r = (m >> 3) & 7;
        if (lock && !memory(rm)) interpret(false);
        else {
          if (memory(rm)) mem();
          rmwRead(bits, rm);
          rmwWrite(bits, rm, reg(bits, r));
          lines.push(`${reg(bits, r)} = a;`);
        }
      } else if (op >= 0x88 && op <= 0x8b) {
        const bits = op & 1 ? v : 8;
        const { m, rm } = modrm();
        const r = (m >> 3) & 7;
        if (memory(rm)) mem();
        if (op <= 0x89) write(bits, rm, reg(bits, r));
        else lines.push(`${reg(bits, r)} = ${read(bits, rm)};`);
      } else if (op === 0x8d) {
        const { m, rm } = modrm();
        if (!memory(rm)) interpret(false);
        else lines.push(`${reg(v, (m >> 3) & 7)} = ${rm.off};`);
      } else if (op === 0x90) {
        lines.push('// nop');
      } else if (op >= 0x118 && op <= 0x11f) {
        modrm(); // PREFETCH hints and NOP Ev (ENDBR32 among them): the operand is decoded, never accessed
        lines.push('// nop');
      } else if (op > 0x90 && op <= 0x97) {
        lines.push(`t = ${reg(v, 0)}; ${reg(v, 0)} = ${reg(v, op & 7)}; ${reg(v, op & 7)} = t;`);
      } else if (op === 0x98) {
        lines.push(o16 ? 'r16[0] = (r8[0] << 24) >> 24;' : 'r[0] = (r[0] << 16) >> 16;');
      } else if (op === 0x99) {
        lines.push(o16 ? 'r16[4] = (r16[0] & 0x8000) ? 0xffff : 0;' : 'r[2] = r[0] >> 31;');
      } else if (op >= 0xa0 && op <= 0xa3) {
        const off = hex(imm32());
        const s = seg >= 0 ? seg : C.DS;
        const bits = op & 1 ? v : 8;
        const o: Operand = { reg: -1, off, seg: s };
        mem();
        if (op <= 0xa1) lines.push(`${reg(bits, 0)} = ${read(bits, o)};`);
        else write(bits, o, reg(bits, 0));
      } else if (op === 0xa8 || op === 0xa9) {
        const bits = op === 0xa9 ? v : 8;
        const b = bits === 8 ? byte() : bits === 16 ? imm16() : imm32();
        lines.push(`a = ${reg(bits, 0)}; b = ${hex(b)}; ${alu(4, bits)}`);
      } else if (op >= 0xb0 && op <= 0xbf) {
        const bits = op >= 0xb8 ? v : 8;
        const value = bits === 8 ? byte() : bits === 16 ? imm16() : imm32();
        lines.push(`${reg(bits, op & 7)} = ${hex(value)};`);
      } else if (op === 0xc1 || op === 0xd1 || op === 0xd3 || op === 0xc0 || op === 0xd0 || op === 0xd2) {
        // Shifts and rotates: SHL/SHR/SAR by a constant inline (shiftInline), the rest
        // through alu.ts's shift(); RCL/RCR (2, 3) included.
        const bits = op & 1 ? v : 8;
        const { rm, m } = modrm();
        const sop = (m >> 3) & 7;
        const count = op === 0xc0 || op === 0xc1 ? byte() : op === 0xd0 || op === 0xd1 ? 1 : -1;
        if (lock) interpret(false);
        else {
          if (memory(rm)) mem();
          rmwRead(bits, rm);
          const inline = count >= 0 ? shiftInline(sop, count & 0x1f, bits) : null;
          lines.push(inline ?? `t = H.shift(c, ${sop}, a, ${count >= 0 ? count : 'r8[4]'}, ${bits});`);
          rmwWrite(bits, rm, 't');
          if (inline !== null) flagSource = { kind: LAZY_SHIFT, bits };
        }
      } else if (op === 0xc3 && !o16) {
        if (inlineMemory) {
          segs.add(C.SS);
          lines.push(`lin = (b${C.SS} + r[4]) | 0; e = tr[lin >>> 12];`);
          lines.push(`if (ks && (e & 0xfff) === 0 && (lin & 3) === 0) t = ram32[(e | (lin & 0xfff)) >>> 2]; else { ${state} t = c.peek(0, 4); }`);
          lines.push(`if ((t >>> 0) > c.segHi[${C.CS}]) { ${state} c.fault(${C.GP}, 0); }`);
        } else {
          pre();
          lines.push(`t = c.peek(0, 4); if ((t >>> 0) > c.segHi[${C.CS}]) c.fault(${C.GP}, 0);`);
        }
        lines.push(`if (c.ss32) r[4] = (r[4] + 4) | 0; else r16[8] = (r16[8] + 4) & 0xffff;`);
        exitTo();
      } else if ((op === 0xc6 || op === 0xc7)) {
        const bits = op === 0xc7 ? v : 8;
        const { m, rm } = modrm();
        const value = bits === 8 ? byte() : bits === 16 ? imm16() : imm32();
        if (((m >> 3) & 7) !== 0) interpret(false);
        else {
          if (memory(rm)) mem();
          write(bits, rm, hex(value));
        }
      } else if (op === 0xe8 && !o16) {
        const rel = imm32();
        transfer(`(e0 + ${pos - phys + rel}) | 0`);
        push32(next());
        exitTo();
      } else if ((op === 0xe9 || op === 0xeb) && !o16) {
        const rel = op === 0xeb ? imm8s() : imm32();
        kind = JMP;
        target = pos + rel;
      } else if (op === 0xfc || op === 0xfd) {
        lines.push(op === 0xfc ? `c.flags &= ${~C.DF};` : `c.flags |= ${C.DF};`);
      } else if ((op === 0xf6 || op === 0xf7) && [0, 2, 3].includes((ram[pos] >> 3) & 7) && pos < pageEnd) {
        // Group 3: TEST, NOT, NEG (MUL/IMUL/DIV/IDIV are pure interpreter instructions).
        const bits = op === 0xf7 ? v : 8;
        const { m, rm } = modrm();
        const g = (m >> 3) & 7;
        if (lock && g === 0) interpret(false);
        else if (g === 0) {
          const b = bits === 8 ? byte() : bits === 16 ? imm16() : imm32();
          if (memory(rm)) mem();
          lines.push(`a = ${read(bits, rm)}; b = ${hex(b)}; ${alu(4, bits)}`);
        } else if (lock && !memory(rm)) interpret(false);
        else {
          if (memory(rm)) mem();
          rmwRead(bits, rm);
          rmwWrite(bits, rm, g === 2 ? `~a & ${maskOf(bits)}` : `H.neg(c, a, ${bits})`);
        }
      } else if (op === 0xfe || op === 0xff) {
        const bits = op === 0xff ? v : 8;
        const g = pos < pageEnd ? (ram[pos] >> 3) & 7 : 7;
        if (g <= 1) {
          const { rm } = modrm();
          if (lock && !memory(rm)) interpret(false);
          else {
            if (memory(rm)) mem();
            rmwRead(bits, rm);
            rmwWrite(bits, rm, `H.incDec(c, a, ${g === 1}, ${bits})`);
          }
        } else if (op === 0xff && !o16 && !lock && (g === 2 || g === 4 || g === 6)) {
          const { rm } = modrm();
          pre();
          if (g === 6) push32(read(32, rm));
          else {
            transfer(read(32, rm));
            if (g === 2) push32(next());
            exitTo();
          }
        } else interpret(false);
      } else if (op >= 0x140 && op <= 0x14f) {
        const { m, rm } = modrm();
        if (memory(rm)) mem();
        // The source is read (and may fault) whatever the condition; the condition is taken first
        // because the read reuses a.
        lines.push(`f = ${condition(op & 0xf)}; a = ${read(v, rm)}; if (f) ${reg(v, (m >> 3) & 7)} = a;`);
      } else if (op >= 0x190 && op <= 0x19f) {
        const { rm } = modrm();
        if (memory(rm)) mem();
        write(8, rm, `(${condition(op & 0xf)}) ? 1 : 0`);
      } else if (op === 0x1b6 || op === 0x1b7 || op === 0x1be || op === 0x1bf) {
        const { m, rm } = modrm();
        const src = op & 1 ? 16 : 8;
        if (memory(rm)) mem();
        const value = read(src, rm);
        const ext = op < 0x1b8 ? value : src === 8 ? `(${value} << 24) >> 24` : `(${value} << 16) >> 16`;
        lines.push(`${reg(v, (m >> 3) & 7)} = ${ext};`);
      } else if (PURE[op]) {
        interpretPure();
      } else {
        interpret(false);
      }
    }
  }
  if (terminal || ended) kind = ENDS;
  else if (accesses && kind === FALLS) {
    // Leave after this instruction when the INTR line rose (a device answered the access)
    // or translated code was overwritten, as the interpreter would look after it.
    // Only a slow path can have set blockExit (`x`, set with the fault state): the inline
    // fast path is plain RAM, which neither answers with an interrupt nor holds translations.
    lines.push(`if (x !== 0) { x = 0; if (c.blockExit) { c.eip = (e0 + ${pos - phys}) | 0; return n + ${i + 1}; } }`);
  }
  return { start, next: pos, lines, kind, target, cond, flags: flagSource };
}
