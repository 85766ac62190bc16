/**
 * Runner for the SingleStepTests 80286 real-mode vectors (../shared/testdata/sst-286,
 * see its README): each test gives registers and memory before and after one
 * instruction captured on a real 80C286; Trapdoor's CPU runs it in a flat 16 MiB machine
 * and must agree, bit for bit, except where the suite marks flags undefined and where an
 * i686 rightly differs from a 286 (listed in I686_DIFFERENCES with the manual's reason).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Cpu, FAULT, LOCKABLE } from './cpu.ts';
import * as C from './constants.ts';
import { FlatTestMachine } from './flat-machine.ts';
import { disassemble } from './disasm.ts';
import { x87OperandSize } from './ops.ts';

const REGS = ['ax', 'bx', 'cx', 'dx', 'cs', 'ss', 'ds', 'es', 'sp', 'bp', 'si', 'di', 'ip', 'flags'] as const;
type RegName = (typeof REGS)[number];
type Regs = Partial<Record<RegName, number>>;

interface SstTest {
  idx: number;
  name: string;
  bytes: number[];
  initial: { regs: Regs; ram: [number, number][] };
  final: { regs: Regs; ram: [number, number][] };
  exception?: { number: number; flag_address: number };
  hash: string;
}

interface FlagsInfo { 'flags-mask'?: number }
interface OpcodeMeta extends FlagsInfo { reg?: Record<string, FlagsInfo> }

export interface FormResult {
  form: string;
  passed: number;
  failed: number;
  /** Tests that an i686 answers differently by design, each checked against the i686 behaviour. */
  i686: number;
  example?: string;
  /** Up to `examplesWanted` failure descriptions. */
  examples: string[];
}

/** Load one form's tests (e.g. F6.6.json.gz). */
export function loadForm(file: string): { form: string; tests: SstTest[] } {
  const data = JSON.parse(zlib.gunzipSync(fs.readFileSync(file)).toString('utf8')) as { form: string; tests: SstTest[] };
  return data;
}

function loadMeta(dir: string): Record<string, OpcodeMeta> {
  const file = path.join(dir, 'metadata.json');
  if (!fs.existsSync(file)) return {};
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { opcodes: Record<string, OpcodeMeta> }).opcodes;
}

function loadRevoked(dir: string): Set<string> {
  const file = path.join(dir, 'revocation_list.txt');
  if (!fs.existsSync(file)) return new Set();
  return new Set(fs.readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
}

/** Undefined-flags mask of a form: bits set are compared. The 286 keeps FLAGS 12-15 apart (README). */
function flagsMask(meta: Record<string, OpcodeMeta>, form: string): number {
  const [op, reg] = form.split('.');
  const m = meta[op.toUpperCase()];
  const info = reg !== undefined && m?.reg ? m.reg[reg] : m;
  return (info?.['flags-mask'] ?? 0xffff) & 0x0fff;
}

/** Where the instruction proper starts and which opcode it is, after the prefixes. */
function opcodeOf(bytes: number[]): { op: number; modrm: number } {
  let i = 0;
  while ([0x26, 0x2e, 0x36, 0x3e, 0xf0, 0xf2, 0xf3, 0x64, 0x65, 0x66, 0x67].includes(bytes[i])) i++;
  let op = bytes[i++];
  if (op === 0x0f) op = 0x100 | bytes[i++];
  return { op, modrm: bytes[i] ?? 0 };
}

/**
 * The memory operand of a 16-bit ModRM instruction (SDM vol.2 table 2-1): its segment base
 * (the default or the override) and offset, or null for a register operand.
 */
function operand16(t: SstTest): { base: number; offset: number; ss: boolean } | null {
  const r = t.initial.regs as Required<Regs>;
  let i = 0;
  let seg: number | null = null;
  while ([0x26, 0x2e, 0x36, 0x3e, 0xf0, 0xf2, 0xf3].includes(t.bytes[i])) {
    const b = t.bytes[i++];
    if (b === 0x26) seg = r.es;
    else if (b === 0x2e) seg = r.cs;
    else if (b === 0x36) seg = r.ss;
    else if (b === 0x3e) seg = r.ds;
  }
  const modrm = t.bytes[i + 1];
  const mod = modrm >> 6;
  const rm = modrm & 7;
  if (mod === 3) return null;
  const disp = mod === 1 ? (t.bytes[i + 2] << 24) >> 24 : mod === 2 || (mod === 0 && rm === 6) ? t.bytes[i + 2] | (t.bytes[i + 3] << 8) : 0;
  const bases = [r.bx + r.si, r.bx + r.di, r.bp + r.si, r.bp + r.di, r.si, r.di, mod === 0 ? 0 : r.bp, r.bx];
  const viaBp = rm === 2 || rm === 3 || (rm === 6 && mod !== 0);
  const segment = seg ?? (viaBp ? r.ss : r.ds);
  return { base: segment << 4, offset: (bases[rm] + disp) & 0xffff, ss: seg === null ? viaBp : seg === r.ss };
}

/** The byte the test's initial RAM holds at `addr` (0 where it holds none). */
function ramByte(t: SstTest, addr: number): number {
  return t.initial.ram.find(([a]) => a === addr)?.[1] ?? 0;
}

/**
 * Tests where a 286 and an i686 differ by design. Each returns the reason when it applies;
 * the runner then checks the i686 behaviour (the named exception) instead of the 286 result.
 */
const I686_DIFFERENCES: {
  reason: string;
  expect: number | ((t: SstTest) => number);
  applies(t: SstTest): boolean;
  /** A further check of memory after the instruction ran as expected. */
  check?(t: SstTest, ram: Uint8Array): string | null;
}[] = [
  // LOCK comes first: its #UD is raised at decode, before anything the other rules describe.
  {
    // SDM vol.2, "LOCK": on the 386 and later LOCK is only valid on the read-modify-write
    // instructions with a memory destination; elsewhere it raises #UD. The 286 ignored it.
    reason: 'LOCK prefix on a non-lockable instruction is #UD on the i686',
    expect: C.UD,
    applies(t) {
      if (!t.bytes.slice(0, t.bytes.length - 1).some((b, i) => b === 0xf0 && isPrefixPosition(t.bytes, i))) return false;
      const { op, modrm } = opcodeOf(t.bytes);
      if (!LOCKABLE[op] || modrm >= 0xc0) return true;
      const reg = (modrm >> 3) & 7;
      if (op === 0xf6 || op === 0xf7) return reg !== 2 && reg !== 3;
      if (op === 0xfe || op === 0xff) return reg > 1;
      if (op >= 0x80 && op <= 0x83) return reg === 7;
      return false;
    },
  },
  {
    // SDM vol.2 CALL/JMP ("far pointer in memory": m16:16), LES/LDS, LEA, BOUND: the
    // operand must be memory; a register operand (mod = 11b) raises #UD on the 386 and later.
    reason: 'a register operand where memory is required is #UD on the i686',
    expect: C.UD,
    applies(t) {
      const { op, modrm } = opcodeOf(t.bytes);
      if (modrm < 0xc0) return false;
      const reg = (modrm >> 3) & 7;
      return op === 0xc4 || op === 0xc5 || op === 0x8d || op === 0x62 || (op === 0xff && (reg === 3 || reg === 5));
    },
  },
  {
    // SDM vol.2 MOV (8C/8E): Sreg 4 and 5 are FS and GS on the 386 and later; the 286 had
    // no such registers and raised #UD. Those tests must run normally here.
    reason: 'MOV to/from FS or GS exists on the i686',
    expect: -1,
    applies(t) {
      const { op, modrm } = opcodeOf(t.bytes);
      const reg = (modrm >> 3) & 7;
      return (op === 0x8c || op === 0x8e) && (reg === 4 || reg === 5) && t.exception?.number === 6;
    },
  },
  {
    // SDM vol.2 appendix A, table A-6: 8F /1-7 and C6/C7 /1-7 are undefined encodings, #UD
    // on the i686; the 286 executed them as aliases.
    reason: 'an undefined group encoding (8F, C6, C7 with reg != 0) is #UD on the i686',
    expect: C.UD,
    applies(t) {
      const { op, modrm } = opcodeOf(t.bytes);
      return (op === 0x8f || op === 0xc6 || op === 0xc7) && ((modrm >> 3) & 7) !== 0;
    },
  },
  {
    // SDM vol.2 §2.3.11: the 386 and later accept instructions up to 15 bytes; the 286 raised
    // #GP beyond 10. Such a test must run normally here (expect = -1: no exception).
    reason: 'instructions of 11-15 bytes run on the i686 (the 286 limit was 10)',
    expect: -1,
    applies(t) {
      return t.exception?.number === 13 && t.bytes.length - 1 > 10 && t.bytes.length - 1 <= 15;
    },
  },
  {
    // SDM vol.2 INT n/INTO: the return address pushed is CS then IP. In two captures the 286
    // left SS's value in the CS slot of the frame (with CS itself loaded correctly); the
    // i686 must push CS there, which `check` verifies, and go on to the handler's HLT.
    reason: 'INT n/INTO push CS in the frame (the 286 capture holds SS there)',
    expect: -1,
    applies(t) {
      const { op } = opcodeOf(t.bytes);
      if ((op !== 0xcd && op !== 0xce && op !== 0xcc) || !t.exception) return false;
      const r = t.initial.regs as Required<Regs>;
      const slot = t.exception.flag_address - 2;
      const lo = t.final.ram.find(([a]) => a === slot)?.[1];
      const hi = t.final.ram.find(([a]) => a === slot + 1)?.[1];
      return lo !== undefined && hi !== undefined && (lo | (hi << 8)) === r.ss && r.ss !== r.cs;
    },
    check(t, ram) {
      const slot = t.exception!.flag_address - 2;
      const cs = (t.initial.regs as Required<Regs>).cs;
      const got = ram[slot] | (ram[slot + 1] << 8);
      return got === cs ? null : `pushed CS ${hex(got)}, expected ${hex(cs)}`;
    },
  },
  {
    // SDM vol.3 §6.5: faults are restartable, so POP to a memory operand that faults leaves
    // SP as it was; the 286 had already added 2 to SP when the write faulted.
    reason: 'POP m16 whose destination faults leaves SP unchanged on the i686',
    // (A limit violation through SS is #SS on the i686 where the 286 raised #GP, as in runOne.)
    expect: (t) => (t.exception!.number === C.GP && operand16(t)?.ss ? C.SS_VEC : t.exception!.number),
    applies(t) {
      const { op, modrm } = opcodeOf(t.bytes);
      return op === 0x8f && ((modrm >> 3) & 7) === 0 && (t.exception?.number === C.GP || t.exception?.number === C.SS_VEC);
    },
  },
  {
    // SDM vol.2 AAM: with an immediate of 0 the divide raises #DE and there is no result to
    // set SF, ZF and PF from; the 286 set them before faulting. The exception is what counts.
    reason: 'AAM 0 raises #DE (its flags are not the 286\'s)',
    expect: C.DE,
    applies(t) {
      const { op } = opcodeOf(t.bytes);
      return op === 0xd4 && t.bytes[t.bytes.indexOf(0xd4) + 1] === 0 && t.exception?.number === C.DE;
    },
  },
  {
    // SDM vol.2 IDIV: "IF (temp > 7FH) or (temp < 80H) THEN #DE". Some 8-bit divisions whose
    // quotient does not fit returned 80H (-128) on the 286 without faulting; the i686 raises #DE.
    reason: 'IDIV r/m8 whose quotient does not fit in a byte raises #DE on the i686',
    expect: C.DE,
    applies(t) {
      const { op, modrm } = opcodeOf(t.bytes);
      if (op !== 0xf6 || ((modrm >> 3) & 7) !== 7 || t.exception) return false;
      const r = t.initial.regs as Required<Regs>;
      const mem = operand16(t);
      const regs8 = [r.ax & 0xff, r.cx & 0xff, r.dx & 0xff, r.bx & 0xff, r.ax >> 8, r.cx >> 8, r.dx >> 8, r.bx >> 8];
      const byte = mem ? ramByte(t, (mem.base + mem.offset) & 0xffffff) : regs8[modrm & 7];
      const d = (byte << 24) >> 24;
      if (d === 0) return false;
      const q = Math.trunc(((r.ax << 16) >> 16) / d);
      return q > 127 || q < -128;
    },
  },
  {
    // SDM vol.1 §8.1.9 and vol.3 §6.15: an x87 instruction's memory operand is checked
    // against the segment limit like any other; an i686 always has its x87. The 286 of the
    // suite had no coprocessor and let ESC run past offset FFFF without a fault.
    reason: 'an ESC memory operand beyond the segment limit is #GP (#SS through SS) on the i686',
    expect: (t) => (operand16(t)!.ss ? C.SS_VEC : C.GP),
    applies(t) {
      const { op, modrm } = opcodeOf(t.bytes);
      if (op < 0xd8 || op > 0xdf || t.exception) return false;
      const mem = operand16(t);
      return mem !== null && mem.offset + x87OperandSize(op, (modrm >> 3) & 7, false) > 0x10000;
    },
  },
];

const STRING_OPS = new Set([0x6c, 0x6d, 0x6e, 0x6f, 0xa4, 0xa5, 0xa6, 0xa7, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf]);

function isPrefixPosition(bytes: number[], i: number): boolean {
  for (let j = 0; j < i; j++) if (![0x26, 0x2e, 0x36, 0x3e, 0xf0, 0xf2, 0xf3].includes(bytes[j])) return false;
  return true;
}

export class SstRunner {
  /** 16 MiB of flat memory with no 1 MiB wrap; ports read all-ones (the suite's README). */
  readonly machine = new FlatTestMachine(16);
  readonly cpu = new Cpu(this.machine);
  private readonly meta: Record<string, OpcodeMeta>;
  private readonly revoked: Set<string>;

  constructor(readonly dir: string) {
    this.meta = loadMeta(dir);
    this.revoked = loadRevoked(dir);
  }

  forms(): string[] {
    return fs.readdirSync(this.dir).filter((f) => f.endsWith('.json.gz')).map((f) => f.replace(/\.json\.gz$/, '')).sort();
  }

  runForm(form: string, limit = Infinity, examplesWanted = 1): FormResult {
    const { tests } = loadForm(path.join(this.dir, `${form}.json.gz`));
    const mask = flagsMask(this.meta, form);
    const result: FormResult = { form, passed: 0, failed: 0, i686: 0, examples: [] };
    for (const t of tests.slice(0, limit)) {
      if (this.revoked.has(t.hash)) continue;
      const diff = I686_DIFFERENCES.find((d) => d.applies(t));
      const expect = diff ? (typeof diff.expect === 'number' ? diff.expect : diff.expect(t)) : 0;
      const problem = diff ? this.runExpectingException(t, expect, diff.check) : this.runOne(t, mask);
      if (problem === null) {
        result.passed++;
        if (diff || this.lastWasI686) result.i686++;
      } else {
        result.failed++;
        const text = `${t.name} [${t.bytes.map((b) => b.toString(16).padStart(2, '0')).join(' ')}] (trapdoor: ${disassemble(Uint8Array.from(t.bytes), 0, false).text}): ${problem}${diff ? ` (expected ${diff.reason})` : ''}`;
        result.example ??= text;
        if (result.examples.length < examplesWanted) result.examples.push(`${text}\n      initial ${JSON.stringify(t.initial.regs)} final ${JSON.stringify(t.final.regs)} ram ${JSON.stringify(t.final.ram)}${t.exception ? ` exception ${JSON.stringify(t.exception)}` : ''}`);
      }
    }
    return result;
  }

  private load(t: SstTest): void {
    const c = this.cpu;
    const r = t.initial.regs as Required<Regs>;
    c.reset();
    const ram = this.machine.ram;
    for (const [a, v] of t.initial.ram) ram[a] = v;
    c.r16[C.EAX << 1] = r.ax;
    c.r16[C.EBX << 1] = r.bx;
    c.r16[C.ECX << 1] = r.cx;
    c.r16[C.EDX << 1] = r.dx;
    c.r16[C.ESP << 1] = r.sp;
    c.r16[C.EBP << 1] = r.bp;
    c.r16[C.ESI << 1] = r.si;
    c.r16[C.EDI << 1] = r.di;
    for (const [s, v] of [[C.CS, r.cs], [C.SS, r.ss], [C.DS, r.ds], [C.ES, r.es]] as const) {
      c.sreg[s] = v;
      c.setSegCache(s, v << 4, 0xffff, s === C.CS ? 0x9b : 0x93);
    }
    c.updateModeCaches();
    c.eip = r.ip;
    c.setFlags(r.flags);
  }

  private clear(t: SstTest): void {
    const ram = this.machine.ram;
    for (const [a] of t.initial.ram) ram[a] = 0;
    for (const [a] of t.final.ram) ram[a] = 0;
  }

  /** Set by runOne when the test passed as a documented i686 difference. */
  lastWasI686 = false;

  /** Run until the HLT that ends the test; null when everything matches, else what differed. */
  runOne(t: SstTest, mask: number): string | null {
    const c = this.cpu;
    this.load(t);
    let problem: string | null;
    this.lastWasI686 = false;
    c.lastException = -1;
    try {
      c.run(1);
      // SDM vol.3 §6.15 (interrupt 12): a limit violation through SS is #SS on the 386 and
      // later, where the 286 raised #GP for the same stack wrap at offset FFFF.
      if (t.exception?.number === C.GP && c.lastException === C.SS_VEC) {
        this.lastWasI686 = true;
        this.clear(t);
        return null;
      }
      for (let i = 0; i < 64 && !c.halted; i++) c.run(1);
      if (!c.halted) problem = 'did not reach the terminating HLT';
      else problem = this.compare(t, mask);
    } catch (e) {
      problem = `host exception: ${(e as Error).message}`;
    }
    this.clear(t);
    return problem;
  }

  private runExpectingException(t: SstTest, vector: number, check?: (t: SstTest, ram: Uint8Array) => string | null): string | null {
    const c = this.cpu;
    this.load(t);
    let got = -1;
    let problem: string | null = null;
    try {
      c.step();
      const { op } = opcodeOf(t.bytes);
      if (vector < 0 && (op === 0x9a || op === 0xea)) {
        // A far CALL or JMP the 286 refused goes where its pointer says (the test has no
        // HLT there): the target is what to check.
        const at = t.bytes.indexOf(op);
        const ip = t.bytes[at + 1] | (t.bytes[at + 2] << 8);
        const cs = t.bytes[at + 3] | (t.bytes[at + 4] << 8);
        if (c.sreg[C.CS] !== cs || (c.eip & 0xffff) !== ip) problem = `expected a transfer to ${hex(cs)}:${hex(ip)}, got ${hex(c.sreg[C.CS])}:${hex(c.eip & 0xffff)}`;
        this.clear(t);
        return problem;
      }
      // Without a fault it must go on to the terminating HLT.
      if (vector < 0) c.step();
      if (vector < 0 && !c.halted) problem = 'did not reach the terminating HLT';
      problem ??= check?.(t, this.machine.ram) ?? null;
    } catch (e) {
      if (e !== FAULT) throw e;
      got = c.pendingVector;
    }
    this.clear(t);
    if (problem) return problem;
    return got === vector ? null : `expected ${vector < 0 ? 'no exception' : `exception ${vector}`}, got ${got < 0 ? 'none' : got}`;
  }

  /**
   * A string instruction that faulted: SI, DI and CX must describe exactly the iterations
   * that completed (the i686 restarts it from there); the 286 stepped them past the fault.
   */
  private checkStringFault(t: SstTest, got: Record<RegName, number>): string | null {
    const init = t.initial.regs as Required<Regs>;
    const { op } = opcodeOf(t.bytes);
    const rep = t.bytes.slice(0, t.bytes.indexOf(op)).some((b) => b === 0xf2 || b === 0xf3);
    const size = op & 1 ? 2 : 1;
    const step = init.flags & C.DF ? -size : size;
    const done = rep ? (init.cx - got.cx) & 0xffff : 0;
    if (!rep && got.cx !== init.cx) return `cx changed by a non-repeated string instruction`;
    const usesSi = op !== 0x6c && op !== 0x6d && op !== 0xaa && op !== 0xab && op !== 0xae && op !== 0xaf;
    const usesDi = op !== 0x6e && op !== 0x6f && op !== 0xac && op !== 0xad;
    const si = usesSi ? (init.si + done * step) & 0xffff : init.si;
    const di = usesDi ? (init.di + done * step) & 0xffff : init.di;
    if (got.si !== si || got.di !== di) return `after ${done} iterations si:di should be ${hex(si)}:${hex(di)}, got ${hex(got.si)}:${hex(got.di)}`;
    return null;
  }

  private compare(t: SstTest, mask: number): string | null {
    const c = this.cpu;
    const init = t.initial.regs as Required<Regs>;
    const fin = t.final.regs;
    const got: Record<RegName, number> = {
      ax: c.r16[C.EAX << 1], bx: c.r16[C.EBX << 1], cx: c.r16[C.ECX << 1], dx: c.r16[C.EDX << 1],
      cs: c.sreg[C.CS], ss: c.sreg[C.SS], ds: c.sreg[C.DS], es: c.sreg[C.ES],
      sp: c.r16[C.ESP << 1], bp: c.r16[C.EBP << 1], si: c.r16[C.ESI << 1], di: c.r16[C.EDI << 1],
      ip: c.eip & 0xffff, flags: c.getFlags() & 0xffff,
    };
    const diffs: string[] = [];
    // SDM vol.3 §6.5: faults are restartable, so a string instruction that faults leaves
    // SI/DI unchanged; the 286 had already stepped them when it faulted at offset FFFF.
    const stringFault = t.exception !== undefined && STRING_OPS.has(opcodeOf(t.bytes).op);
    if (stringFault) {
      const problem = this.checkStringFault(t, got);
      if (problem) diffs.push(problem);
    }
    for (const r of REGS) {
      const want = fin[r] ?? init[r];
      if (stringFault && (r === 'si' || r === 'di' || r === 'cx')) continue;
      if (r === 'flags') {
        if ((want & mask) !== (got.flags & mask)) diffs.push(`flags ${hex(want & mask)} != ${hex(got.flags & mask)}`);
      } else if (want !== got[r]) diffs.push(`${r} ${hex(want)} != ${hex(got[r])}`);
    }
    const ram = this.machine.ram;
    // Masked flag bytes: the suite's flag_address and where the frame really is (odd SP).
    const flagBytes = new Map<number, number>();
    for (const at of [t.exception?.flag_address, pushedFlagsAddress(t)]) {
      if (at === undefined) continue;
      flagBytes.set(at, mask & 0xff);
      flagBytes.set(at + 1, (mask >> 8) & 0xff);
    }
    for (const [a, v] of t.final.ram) {
      // The flags pushed by an exception have undefined bits too (README).
      const m = flagBytes.get(a) ?? 0xff;
      if ((ram[a] & m) !== (v & m)) diffs.push(`[${hex(a)}] ${hex(v)} != ${hex(ram[a])}`);
    }
    return diffs.length ? `expected vs got: ${diffs.join(', ')}` : null;
  }
}

/**
 * Where PUSHF, INT n, INT3 and INTO leave FLAGS on the stack: their bits 12-15 are the
 * 286's real-mode zeros there too, and the suite masks them like the FLAGS register.
 */
function pushedFlagsAddress(t: SstTest): number | undefined {
  const { op } = opcodeOf(t.bytes);
  if (op !== 0x9c && op !== 0xcc && op !== 0xcd && op !== 0xce && !t.exception && !((t.initial.regs.flags ?? 0) & C.TF)) return undefined;
  const r = t.initial.regs as Required<Regs>;
  return (r.ss << 4) + ((r.sp - 2) & 0xffff);
}

function hex(v: number): string {
  return v.toString(16).padStart(4, '0');
}
