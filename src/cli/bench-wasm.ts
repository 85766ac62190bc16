/**
 * The JavaScript-or-WebAssembly question of issue 25 (docs/cpu-speed.md), measured on one
 * hot loop: the bitwise CRC-32 of `npm run bench`'s CPU workload,
 *
 *     byte: movzx eax, byte [esi] / inc esi / xor edx, eax / mov ecx, 8
 *     bit:  shr edx, 1 / jnc next / xor edx, 0xEDB88320
 *     next: loop bit / dec ebx / jnz byte
 *
 * run four ways over the same bytes, each to the same EDX and instruction count:
 *  - `translator`: the Cpu with its block cache, the region tier at once: what Trapdoor runs today;
 *  - `js-locals`: the region as a translator could emit it with the guest registers in
 *    JavaScript locals across its basic blocks (loaded on entry, stored on exit), flags
 *    kept as the operands that produce them and read only where a branch needs them;
 *  - `wasm-locals`: the same region as a WebAssembly function built here byte by byte (no
 *    compiler: a few opcodes of the binary format, WebAssembly Core spec §5), registers in
 *    wasm locals, guest RAM and the TLB in its linear memory, dispatch by br_table in a loop
 *    (the shape v86 gives a page's hot code);
 *  - `wasm-memory`: that function with every register access a load or store of linear memory.
 * The region's memory read goes through the TLB inline in every form (a direct entry: RAM;
 * anything else leaves the region), and every basic block checks the instruction budget.
 * The hand-written forms leave the lazy-flag record out (one store sequence per exit, 38,000
 * instructions apart here); they stand for what generated code would be, not a translator.
 *
 * `node bin/run.mjs src/cli/bench-wasm.ts [SECONDS]` prints MIPS per form, per second on a
 * CPU (the thread's scheduler time) when Linux says, else per wall-clock second.
 */
import { pathToFileURL } from 'node:url';
import { Cpu } from '../emulator/cpu/cpu.ts';
import { FlatTestMachine } from '../emulator/cpu/flat-machine.ts';
import { X87 } from '../emulator/cpu/fpu/x87.ts';
import { assemble } from '../emulator/cpu/testing/nasm.ts';
import { LOAD_ADDRESS, protectedMode, startAtLoadAddress } from '../emulator/cpu/testing/programs.ts';
import { ownThreadTime } from './thread-time.ts';
import { sleb, uleb } from '../emulator/cpu/jit/wasm-emit.ts';

const DATA = 0x1000; // the CRC's 1024 bytes
const BYTES = 1024;
const TLB = 0x100000; // 256 entries: the first MiB, identity-mapped
const REGS = TLB + 0x400; // EAX..EDI as dwords, then the region's resume point
const PC = REGS + 32;
const MEMORY_PAGES = 17; // 1 MiB of RAM and the TLB/register page
const POLY = 0xedb88320 | 0;

/** Register indices (SDM order) of the ones the loop uses. */
const EAX = 0, ECX = 1, EDX = 2, EBX = 3, ESI = 6;

// ---- a few opcodes of the WebAssembly binary format (Core spec §5.4) ----
const I32 = 0x7f, VOID = 0x40;
const BLOCK = 0x02, LOOP = 0x03, IF = 0x04, END = 0x0b, BR = 0x0c, BR_TABLE = 0x0e;
const GET = 0x20, SET = 0x21, LOAD = 0x28, LOAD8U = 0x2d, STORE = 0x36, CONST = 0x41;
const EQZ = 0x45, GT_S = 0x4a, ADD = 0x6a, SUB = 0x6b, AND = 0x71, XOR = 0x73, SHL = 0x74, SHR_U = 0x76;

const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (s: string): number[] => [...uleb(s.length), ...Array.from(s, (ch) => ch.charCodeAt(0))];

/**
 * The region as a wasm function (n, end) -> n. `inLocals`: registers live in locals
 * (loaded once, stored once); otherwise every use is a load or store of REGS.
 */
export function regionModule(inLocals: boolean): Uint8Array<ArrayBuffer> {
  // Locals: 0 n, 1 end (parameters), 2 pc, 3 u, 4 e, 5 lin, then the registers.
  const N = 0, END_ = 1, PCL = 2, U = 3, E = 4, LIN = 5;
  const local: Record<number, number> = { [EAX]: 6, [ECX]: 7, [EDX]: 8, [EBX]: 9, [ESI]: 10 };
  const c = (v: number) => [CONST, ...sleb(v)];
  const get = (r: number) => (inLocals ? [GET, local[r]] : [...c(REGS + 4 * r), LOAD, 2, 0]);
  /** Set register r to the value `value` pushes. */
  const set = (r: number, value: number[]) => (inLocals ? [...value, SET, local[r]] : [...c(REGS + 4 * r), ...value, STORE, 2, 0]);
  const code: number[] = [];
  if (inLocals) for (const r of [EAX, ECX, EDX, EBX, ESI]) code.push(...c(REGS + 4 * r), LOAD, 2, 0, SET, local[r]);
  code.push(...c(PC), LOAD, 2, 0, SET, PCL);
  /** Leave at basic block `pc` when fewer than `count` instructions remain; `depth` is the exit label's. */
  const budget = (count: number, pc: number, depth: number) =>
    [GET, N, ...c(count), ADD, GET, END_, GT_S, IF, VOID, ...c(pc), SET, PCL, BR, depth + 1, END];
  code.push(BLOCK, VOID, LOOP, VOID, BLOCK, VOID, BLOCK, VOID, BLOCK, VOID);
  code.push(GET, PCL, BR_TABLE, ...vec([[0], [1], [2]]), 0, END);
  // Basic block 0 (labels out: b1 0, b2 1, loop 2, exit 3). movzx eax, byte [esi], through the TLB.
  code.push(...budget(4, 0, 3));
  code.push(...get(ESI), SET, LIN, GET, LIN, ...c(12), SHR_U, ...c(2), SHL, LOAD, 2, ...uleb(TLB), SET, E);
  code.push(GET, E, ...c(0xfff), AND, IF, VOID, ...c(0), SET, PCL, BR, 4, END); // not direct RAM: leave
  code.push(...set(EAX, [GET, E, GET, LIN, ...c(0xfff), AND, 0x72 /* or */, LOAD8U, 0, 0]));
  code.push(...set(ESI, [...get(ESI), ...c(1), ADD]));
  code.push(...set(EDX, [...get(EDX), ...get(EAX), XOR]));
  code.push(...set(ECX, c(8)));
  code.push(GET, N, ...c(4), ADD, SET, N, END);
  // Basic block 1 (labels out: b2 0, loop 1, exit 2). shr edx, 1; jnc; xor edx, poly.
  code.push(...budget(3, 1, 2));
  code.push(...get(EDX), ...c(1), AND, SET, U);
  code.push(...set(EDX, [...get(EDX), ...c(1), SHR_U]));
  code.push(GET, U, EQZ, IF, VOID, GET, N, ...c(2), ADD, SET, N, ...c(2), SET, PCL, BR, 2, END);
  code.push(...set(EDX, [...get(EDX), ...c(POLY), XOR]));
  code.push(GET, N, ...c(3), ADD, SET, N, END);
  // Basic block 2 (labels out: loop 0, exit 1). loop bit; dec ebx; jnz byte.
  code.push(...budget(3, 2, 1));
  code.push(...set(ECX, [...get(ECX), ...c(1), SUB]));
  code.push(...get(ECX), IF, VOID, GET, N, ...c(1), ADD, SET, N, ...c(1), SET, PCL, BR, 1, END);
  code.push(...set(EBX, [...get(EBX), ...c(1), SUB]));
  code.push(...get(EBX), IF, VOID, GET, N, ...c(3), ADD, SET, N, ...c(0), SET, PCL, BR, 1, END);
  code.push(GET, N, ...c(3), ADD, SET, N, ...c(3), SET, PCL, BR, 1); // past the loop
  code.push(END, END); // loop, exit block
  if (inLocals) for (const r of [EAX, ECX, EDX, EBX, ESI]) code.push(...c(REGS + 4 * r), GET, local[r], STORE, 2, 0);
  code.push(...c(PC), GET, PCL, STORE, 2, 0, GET, N, END);
  const body = [...vec([[inLocals ? 9 : 4, I32]]), ...code];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, ...vec([[I32], [I32]]), ...vec([[I32]])]])),
    ...section(3, vec([[0]])),
    ...section(5, vec([[0x00, ...uleb(MEMORY_PAGES)]])),
    ...section(7, vec([[...name('run'), 0x00, 0], [...name('mem'), 0x02, 0]])),
    ...section(10, vec([[...uleb(body.length), ...body]])),
  ]);
}

export type Region = (n: number, end: number) => number;

/** The region in JavaScript with the registers in locals, over the same memory layout. */
function jsLocals(buffer: ArrayBuffer): Region {
  const ram = new Uint8Array(buffer), tlb = new Int32Array(buffer, TLB, 256), regs = new Int32Array(buffer, REGS, 9);
  return (n, end) => {
    let eax = regs[EAX], ecx = regs[ECX], edx = regs[EDX], ebx = regs[EBX], esi = regs[ESI];
    let pc = regs[8];
    // The basic blocks in order, each falling into the next (a translator's switch would).
    for (;;) {
      if (pc === 0) {
        if (n + 4 > end) break;
        const e = tlb[esi >>> 12];
        if ((e & 0xfff) !== 0) break;
        eax = ram[e | (esi & 0xfff)];
        esi = (esi + 1) | 0;
        edx ^= eax;
        ecx = 8;
        n += 4;
        pc = 1;
      }
      if (pc === 1) {
        if (n + 3 > end) break;
        const u = edx & 1;
        edx = edx >>> 1;
        if (u === 0) {
          n += 2;
          pc = 2;
          continue;
        }
        edx = (edx ^ POLY) | 0;
        n += 3;
        pc = 2;
      }
      if (pc !== 2 || n + 3 > end) break;
      ecx = (ecx - 1) | 0;
      if (ecx !== 0) {
        n += 1;
        pc = 1;
        continue;
      }
      ebx = (ebx - 1) | 0;
      n += 3;
      pc = ebx !== 0 ? 0 : 3;
      if (pc === 3) break;
    }
    regs[EAX] = eax; regs[ECX] = ecx; regs[EDX] = edx | 0; regs[EBX] = ebx; regs[ESI] = esi; regs[8] = pc;
    return n;
  };
}

export interface WasmLoopResult {
  form: string;
  mips: number;
  /** Whether the MIPS are per second on a CPU (else per wall-clock second). */
  onCpu: boolean;
  crc: number;
  instructions: number;
}

function clock(): { wall: number; cpu: number | null } {
  return { wall: performance.now() / 1000, cpu: ownThreadTime()?.onCpu ?? null };
}

/** Runs `pass` (one CRC over the bytes, returning its instruction count) for `seconds`. */
function measure(form: string, seconds: number, pass: () => { crc: number; n: number }): WasmLoopResult {
  for (let i = 0; i < 200; i++) pass(); // let V8 optimise (or tier up the wasm)
  const t0 = clock();
  let instructions = 0, crc = 0, n = 0;
  while (clock().wall - t0.wall < seconds) {
    for (let i = 0; i < 50; i++) ({ crc, n } = pass());
    instructions += 50 * n;
  }
  const t1 = clock();
  const onCpu = t0.cpu !== null && t1.cpu !== null && t1.cpu > t0.cpu;
  const elapsed = onCpu ? t1.cpu! - t0.cpu! : t1.wall - t0.wall;
  return { form, mips: instructions / elapsed / 1e6, onCpu, crc: crc >>> 0, instructions: n };
}

const bytesOf = (): Uint8Array => Uint8Array.from({ length: BYTES }, (_, i) => (i * 167 + 13) & 0xff);

/** One pass over the bytes in a hand-written region (JS or wasm) sharing `buffer`'s layout. */
function handPass(buffer: ArrayBuffer, run: Region): () => { crc: number; n: number } {
  const regs = new Int32Array(buffer, REGS, 9);
  return () => {
    regs[ESI] = DATA; regs[EBX] = BYTES; regs[EDX] = -1; regs[8] = 0;
    const n = run(0, 1 << 30);
    return { crc: ~regs[EDX], n };
  };
}

function layout(buffer: ArrayBuffer): void {
  new Uint8Array(buffer, DATA, BYTES).set(bytesOf());
  const tlb = new Int32Array(buffer, TLB, 256);
  for (let i = 0; i < 256; i++) tlb[i] = i << 12;
}

/** One form of the loop: `pass` runs one CRC over the bytes and returns it with its instruction count. */
export interface LoopForm {
  form: string;
  pass: () => { crc: number; n: number };
}

/** Today's translator's guest program for the loop, as nasm source (assembled by loopForms, or by its caller). */
export function translatorSource(): string {
  // Today's translator, on the same loop in a flat 32-bit machine with paging.
  const program = `
    mov edi, 0x200000
    mov esi, data
    mov ecx, ${BYTES}
    rep movsb
again:
    mov esi, 0x200000
    mov ebx, ${BYTES}
    mov edx, 0xffffffff
byte_loop:
    movzx eax, byte [esi]
    inc esi
    xor edx, eax
    mov ecx, 8
bit_loop:
    shr edx, 1
    jnc no_poly
    xor edx, 0xedb88320
no_poly:
    loop bit_loop
    dec ebx
    jnz byte_loop
    hlt
    jmp again
data:
    db ${Array.from(bytesOf()).join(', ')}
`;
  return protectedMode(program);
}

/**
 * The four forms, each ready to run (the translator's first pass done). `code` is
 * translatorSource() assembled; a host without nasm (a browser's worker) passes it in.
 */
export function loopForms(code: Uint8Array = assemble(translatorSource())): LoopForm[] {
  const machine = new FlatTestMachine(32);
  machine.load(LOAD_ADDRESS, code);
  const cpu = new Cpu(machine);
  cpu.fpu = new X87(cpu);
  startAtLoadAddress(cpu);
  cpu.enableBlockCache(undefined, undefined, 1000);
  // Each pass resumes after HLT: JMP again, three MOVs, the loop, HLT; the loop alone is counted.
  const translatorPass = () => {
    const before = cpu.instructionCount;
    cpu.halted = false;
    while (!cpu.halted) cpu.run(1 << 20);
    return { crc: ~cpu.r32[EDX], n: cpu.instructionCount - before - 5 };
  };
  translatorPass(); // the copy, then the first pass
  const forms: LoopForm[] = [{ form: 'translator', pass: translatorPass }];
  const jsBuffer = new ArrayBuffer(MEMORY_PAGES * 65536);
  layout(jsBuffer);
  forms.push({ form: 'js-locals', pass: handPass(jsBuffer, jsLocals(jsBuffer)) });
  for (const inLocals of [true, false]) {
    const instance = new WebAssembly.Instance(new WebAssembly.Module(regionModule(inLocals)));
    const memory = instance.exports.mem as WebAssembly.Memory;
    layout(memory.buffer);
    forms.push({ form: inLocals ? 'wasm-locals' : 'wasm-memory', pass: handPass(memory.buffer, instance.exports.run as Region) });
  }
  return forms;
}

export function benchWasmLoop(seconds = 2): WasmLoopResult[] {
  return loopForms().map((f) => measure(f.form, seconds, f.pass));
}

// Run directly (tsx) or from its bundle (bin/run.mjs names the entry in argv[1]).
if (typeof process !== 'undefined' && (import.meta.url === pathToFileURL(process.argv[1] ?? '').href || /(^|\/)bench-wasm\.ts$/.test(process.argv[1] ?? ''))) {
  for (const r of benchWasmLoop(Number(process.argv[2] ?? 2))) {
    process.stdout.write(`${r.form}: ${r.mips.toFixed(0)} MIPS${r.onCpu ? ' on a CPU' : ''} (CRC ${r.crc.toString(16)}, ${r.instructions} instructions a pass)\n`);
  }
}
