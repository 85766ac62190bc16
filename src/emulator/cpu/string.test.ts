/**
 * REP MOVS and REP STOS against a model that moves one element at a time (SDM vol.2
 * "MOVS", "STOS", "REP"): the interpreter copies and fills whole runs within a page at
 * once, and the result must be the element-by-element one whatever the overlap,
 * alignment, page crossings, direction flag or the 4096-element chunks a long REP is
 * split into for interrupts.
 */
import { describe, expect, it } from 'vitest';
import { boot, LOAD_ADDRESS, protectedMode, runToExit, startAtLoadAddress } from './testing/programs.ts';
import { assemble } from './testing/nasm.ts';
import { Cpu } from './cpu.ts';
import { FlatTestMachine } from './flat-machine.ts';
import { PhysicalMemory } from '../memory/physical-memory.ts';
import { DirtyBitmap } from '../memory/dirty-bitmap.ts';
import { DeviceStats } from '../bus/stats.ts';
import { IoBus } from '../bus/io-bus.ts';
import type { PortBus } from '../memory/physical-bus.ts';

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

/**
 * Video memory (an MMIO region backed by plain memory, as the VGA's linear framebuffer):
 * runs that stay in it go through the bus's backing at once (PhysicalBus.backedSpan), and
 * must leave the bytes, the registers, the device's counters and its dirty pages exactly
 * as the same instructions one element at a time through the bus's slow path.
 */
describe('REP MOVS and REP STOS on video memory', () => {
  const VRAM = 0xc00000; // above the 8 MiB of RAM, inside the 16 MiB the program identity-maps
  const RAM = 0x200000;
  const program = protectedMode(`
    cld
    mov edi, ${RAM}              ; a pattern in RAM to copy from
    xor ecx, ecx
.pattern:
    lea eax, [ecx * 5 + 3]
    mov [edi + ecx], al
    inc ecx
    cmp ecx, 0x6000
    jb .pattern
    mov eax, 0x11223344
    mov edi, ${VRAM + 0x10}
    mov ecx, 3000                ; crosses pages and a chunk boundary
    rep stosd
    mov edi, ${VRAM + 0x4003}
    mov ecx, 5000
    rep stosb
    mov edi, ${VRAM + 0x7ff1}
    mov ecx, 700
    rep stosw
    mov esi, ${RAM + 1}          ; RAM to video memory (memcpy_toio)
    mov edi, ${VRAM + 0x9000}
    mov ecx, 2100
    rep movsd
    mov esi, ${VRAM + 0x9005}    ; video memory to RAM
    mov edi, ${RAM + 0x8000}
    mov ecx, 6000
    rep movsb
    mov esi, ${VRAM + 0x9000}    ; within video memory, destination inside the source
    mov edi, ${VRAM + 0x9002}
    mov ecx, 300
    rep movsb
    mov esi, ${VRAM + 0x9100}    ; within video memory, destination before the source
    mov edi, ${VRAM + 0xc000}
    mov ecx, 1500
    rep movsd
    std
    mov esi, ${VRAM + 0xd000}    ; backwards: one element at a time
    mov edi, ${VRAM + 0xe000}
    mov ecx, 100
    rep movsd
    cld
    mov al, 0
    jmp done
`);

  function run(bulk: boolean) {
    const stats = new DeviceStats();
    const vga = stats.add({ name: 'vga' });
    const memory = new PhysicalMemory(8 << 20, stats);
    const vram = new Uint8Array(0x10000);
    const dirty = new DirtyBitmap(vram.length, false);
    memory.map(vga, VRAM, vram.length, { read: () => 0xff, write: () => {} }, { backing: vram, dirty });
    let spans = 0;
    const spanDone = memory.spanDone.bind(memory);
    if (bulk) memory.spanDone = (...a) => { spans++; spanDone(...a); };
    else memory.backedSpan = () => null;
    const ports = new FlatTestMachine(1);
    memory.ram.set(assemble(program), LOAD_ADDRESS);
    const cpu = new Cpu({ memory, io: ports, intrAcknowledge: () => 0, readTsc: () => 0, ferr: () => {}, shutdown: (r) => { throw new Error(r); } });
    startAtLoadAddress(cpu);
    for (let i = 0; i < 1000 && ports.exitValue < 0; i++) cpu.run(100_000);
    const pages = new Uint8Array(16);
    dirty.collect(pages);
    const counters = ['mmioReads', 'mmioWrites', 'bytesRead', 'bytesWritten', 'traps'].map((k) => stats.get(vga, k as 'mmioReads'));
    return { exit: ports.exitValue, vram, ram: memory.ram.slice(RAM, RAM + 0x10000), regs: Array.from(cpu.r32), pages: Array.from(pages), counters, spans };
  }

  it('gives what one element at a time through the bus gives, counted the same', () => {
    const bulk = run(true);
    const single = run(false);
    expect(single.exit).toBe(0);
    expect(bulk.exit).toBe(0);
    expect(bulk.spans).toBeGreaterThan(10);
    expect(single.spans).toBe(0);
    expect(Array.from(bulk.vram)).toEqual(Array.from(single.vram));
    expect(Array.from(bulk.ram)).toEqual(Array.from(single.ram));
    expect(bulk.regs).toEqual(single.regs);
    expect(bulk.pages).toEqual(single.pages);
    expect(bulk.counters).toEqual(single.counters);
    // One access per element, except the word at +0x7fff, which straddles a page: two byte writes.
    expect(single.counters[1]).toBe(3000 + 5000 + 700 + 2100 + 300 + 1500 + 100 + 1);
    expect(single.counters[4]).toBe(0); // backed: no trap into the device model
  });
});

/**
 * REP INS and REP OUTS through the port bus: runs within a page of RAM go to the bus in one
 * call (PortBus.insString, one ioreq on the emulated path), and must leave RAM, the
 * registers and the device's sequence of accesses exactly as one element at a time.
 */
describe('REP INS and REP OUTS', () => {
  const RAM = 0x200000;
  const PORT = 0x300;
  const program = protectedMode(`
    cld
    mov dx, ${PORT}
    mov edi, ${RAM + 0x0ffd}       ; bytes across a page boundary
    mov ecx, 9000                  ; and past a chunk
    rep insb
    mov edi, ${RAM + 0x4001}       ; unaligned words
    mov ecx, 3000
    rep insw
    mov edi, ${RAM + 0x6000}
    mov ecx, 4500                  ; dwords past a chunk
    rep insd
    mov esi, ${RAM + 0x0ff0}       ; out again, across pages
    mov ecx, 2500
    rep outsd
    mov esi, ${RAM + 0x4003}
    mov ecx, 777
    rep outsw
    mov esi, ${RAM + 0x5001}
    mov ecx, 5000
    rep outsb
    std
    mov edi, ${RAM + 0xc000}       ; backwards: one element at a time
    mov ecx, 100
    rep insd
    cld
    mov al, 0
    jmp done
`);

  function run(bulk: boolean) {
    const stats = new DeviceStats();
    const row = stats.add({ name: 'fifo' });
    const exitRow = stats.add({ name: 'exit' });
    const memory = new PhysicalMemory(8 << 20, stats);
    const io = new IoBus(stats);
    // A port that counts its reads (each answer a different value, so order shows) and
    // records what is written to it.
    let n = 0;
    const written: number[] = [];
    io.map(row, PORT, 4, {
      read: (_o, size) => {
        n++;
        const v = Math.imul(n, 0x9e3779b1) >>> 0;
        return size === 4 ? v | 0 : v & (size === 2 ? 0xffff : 0xff);
      },
      write: (_o, size, v) => void written.push(size, v >>> 0),
    });
    let exit = -1;
    io.map(exitRow, 0xf4, 1, { read: () => 0xff, write: (_o, _s, v) => void (exit = v) });
    let runs = 0;
    const ports: PortBus = bulk
      ? Object.assign(Object.create(io) as IoBus, {
        insString: (...a: Parameters<IoBus['insString']>) => (runs++, io.insString(...a)),
        outsString: (...a: Parameters<IoBus['outsString']>) => (runs++, io.outsString(...a)),
      })
      : { in8: (p) => io.in8(p), in16: (p) => io.in16(p), in32: (p) => io.in32(p), out8: (p, v) => io.out8(p, v), out16: (p, v) => io.out16(p, v), out32: (p, v) => io.out32(p, v) };
    memory.ram.set(assemble(program), LOAD_ADDRESS);
    const cpu = new Cpu({ memory, io: ports, intrAcknowledge: () => 0, readTsc: () => 0, ferr: () => {}, shutdown: (r) => { throw new Error(r); } });
    startAtLoadAddress(cpu);
    for (let i = 0; i < 1000 && exit < 0; i++) cpu.run(100_000);
    return { exit, ram: memory.ram.slice(RAM, RAM + 0x10000), regs: Array.from(cpu.r32), written, reads: n, runs, counters: [stats.get(row, 'portReads'), stats.get(row, 'portWrites'), stats.get(row, 'bytesRead'), stats.get(row, 'bytesWritten')] };
  }

  it('gives what one element at a time gives, with the same accesses in the same order', () => {
    const bulk = run(true);
    const single = run(false);
    expect(single.exit).toBe(0);
    expect(bulk.exit).toBe(0);
    expect(single.runs).toBe(0);
    // Each page of each run, split further at each 4096-element chunk: far fewer calls than elements.
    expect(bulk.runs).toBeGreaterThanOrEqual(15);
    expect(bulk.runs).toBeLessThan(100);
    expect(single.reads).toBe(9000 + 3000 + 4500 + 100);
    expect(bulk.reads).toBe(single.reads);
    expect(bulk.written).toEqual(single.written);
    expect(single.written.length).toBe(2 * (2500 + 777 + 5000));
    expect(Array.from(bulk.ram)).toEqual(Array.from(single.ram));
    expect(bulk.regs).toEqual(single.regs);
    expect(bulk.counters).toEqual(single.counters);
  });
});
