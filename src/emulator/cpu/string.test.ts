/**
 * REP MOVS and REP STOS against a model that moves one element at a time (SDM vol.2
 * "MOVS", "STOS", "REP"): the interpreter copies and fills whole runs within a page at
 * once, and the result must be the element-by-element one whatever the overlap,
 * alignment, page crossings, direction flag or the 4096-element chunks a long REP is
 * split into for interrupts.
 */
import { describe, expect, it } from 'vitest';
import { boot, protectedMode, runToExit } from './testing/programs.ts';

const BASE = 0x200000;
/** Each case works in its own window of the pattern, so no case hides another's result. */
const WINDOW = 0x5000;

interface Case {
  op: 'movsb' | 'movsw' | 'movsd' | 'stosb' | 'stosw' | 'stosd';
  src: number; // offset in the case's window
  dst: number;
  count: number;
  down?: boolean;
}

const CASES: Case[] = [
  { op: 'movsd', src: 0x0010, dst: 0x2800, count: 2500 }, // across pages, not overlapping
  { op: 'movsd', src: 0x0000, dst: 0x0800, count: 4500 }, // overlapping forwards, past a chunk
  { op: 'movsb', src: 0x1000, dst: 0x1001, count: 300 }, // destination inside the source: a pattern repeats
  { op: 'movsb', src: 0x2003, dst: 0x2000, count: 9000 }, // destination before the source
  { op: 'movsb', src: 0x0ffd, dst: 0x3ffe, count: 17 }, // both cross a page at different points
  { op: 'movsw', src: 0x0101, dst: 0x3000, count: 700 },
  { op: 'movsd', src: 0x3ff0, dst: 0x1ff3, count: 40, down: true },
  { op: 'stosd', src: 0, dst: 0x0001, count: 3000 }, // unaligned
  { op: 'stosd', src: 0, dst: 0x0000, count: 4100 }, // aligned, past a chunk
  { op: 'stosb', src: 0, dst: 0x0333, count: 10000 },
  { op: 'stosw', src: 0, dst: 0x4321, count: 900 },
  { op: 'stosb', src: 0, dst: 0x4fff, count: 1, down: true },
].map((c, j) => ({ ...c, src: c.src + j * WINDOW, dst: c.dst + j * WINDOW }) as Case);
const SIZE = CASES.length * WINDOW;

const elementSize = (op: Case['op']) => (op.endsWith('b') ? 1 : op.endsWith('w') ? 2 : 4);

/** One element at a time, as the SDM describes it. */
function model(mem: Uint8Array, c: Case, fill: number): void {
  const size = elementSize(c.op);
  const step = c.down ? -size : size;
  let s = c.src;
  let d = c.dst;
  for (let i = 0; i < c.count; i++) {
    for (let b = 0; b < size; b++) {
      mem[d + b] = c.op.startsWith('movs') ? mem[s + b] : (fill >>> (8 * b)) & 0xff;
    }
    s += step;
    d += step;
  }
}

describe('REP MOVS and REP STOS', () => {
  it('give the element-by-element result for every overlap, alignment and page crossing', () => {
    const fill = 0xa1b2c3d4 | 0;
    const body = CASES.map((c) => `
    ${c.down ? 'std' : 'cld'}
    mov esi, ${BASE + c.src}
    mov edi, ${BASE + c.dst}
    mov ecx, ${c.count}
    mov eax, ${fill}
    rep ${c.op}
    push esi
    push edi
    push ecx`).join('');
    const { cpu, machine } = boot(protectedMode(`
    ; a pattern to copy: byte i = (i * 7 + i >> 8) & 0xff
    mov edi, ${BASE}
    xor ecx, ecx
.pattern:
    mov eax, ecx
    imul eax, 7
    mov edx, ecx
    shr edx, 8
    add eax, edx
    mov [edi + ecx], al
    inc ecx
    cmp ecx, ${SIZE}
    jb .pattern
    mov ebp, esp
${body}
    cld
    mov al, 0
    jmp done
`));
    runToExit(cpu, machine, 20_000_000);
    expect(machine.exitValue).toBe(0);

    const mem = new Uint8Array(SIZE + 16);
    for (let i = 0; i < SIZE; i++) mem[i] = (i * 7 + (i >> 8)) & 0xff;
    const finals: number[] = [];
    for (const c of CASES) {
      model(mem, c, fill);
      const size = elementSize(c.op);
      const step = c.down ? -size : size;
      finals.push(c.op.startsWith('movs') ? BASE + c.src + step * c.count : BASE + c.src, BASE + c.dst + step * c.count, 0);
    }
    expect(Array.from(machine.ram.subarray(BASE, BASE + SIZE))).toEqual(Array.from(mem.subarray(0, SIZE)));
    // ESI, EDI and ECX after each REP, pushed in that order (STOS leaves ESI as it was).
    const esp = cpu.r32[4] >>> 0;
    const up = (i: number) => machine.ram[esp + 4 * i] | (machine.ram[esp + 4 * i + 1] << 8) | (machine.ram[esp + 4 * i + 2] << 16) | (machine.ram[esp + 4 * i + 3] << 24);
    const got: number[] = [];
    for (let j = 0; j < CASES.length; j++) {
      const k = CASES.length - 1 - j;
      got.push(up(3 * k + 2) >>> 0, up(3 * k + 1) >>> 0, up(3 * k) >>> 0);
    }
    expect(got).toEqual(finals.map((v) => v >>> 0));
  });
});
