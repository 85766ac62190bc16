/**
 * Block chaining (Cpu.runBlock, BlockCache.chain): a block's successor is run from its
 * links, without the run loop's lookup. Each program runs interpreted, as straight-line
 * blocks and as regions, and must end in the same state with the same instruction count;
 * each is built so that following a link the run loop should not follow changes the
 * result: a link into a page written since, a chain past a rising INTR or the slice
 * budget, a chain across a change of the linear mapping of the code it runs.
 */
import { describe, expect, it } from 'vitest';
import { Cpu } from '../cpu.ts';
import { FlatTestMachine } from '../flat-machine.ts';
import { X87 } from '../fpu/x87.ts';
import { assemble } from '../testing/nasm.ts';
import { IDT_DESC, LOAD_ADDRESS, idtSetup, protectedMode, startAtLoadAddress } from '../testing/programs.ts';

const DATA = 0x200000;
const MODES = ['interpreter', 'blocks', 'regions'] as const;

/**
 * A flat machine with an interrupt source: `out 0x80, al` raises INTR on every
 * `outEvery`-th write (a device answering an access), and the test's run loop raises it
 * every `period` instructions (a timer, at slice ends as the machine's deterministic run
 * loop has it). The interrupt controller answers vector 0x20 and lowers the line.
 */
class IrqMachine extends FlatTestMachine {
  cpu: Cpu | null = null;
  outs = 0;
  constructor(private readonly outEvery: number) {
    super(32);
  }
  override out8(port: number, v: number): void {
    if (port === 0x80) {
      if (++this.outs % this.outEvery === 0) this.cpu!.setIntr(true);
    } else super.out8(port, v);
  }
  override intrAcknowledge(): number {
    this.cpu!.setIntr(false);
    return 0x20;
  }
}

interface Run {
  cpu: Cpu;
  machine: IrqMachine;
}

/** `source` run to its exit in each mode, in slices that end where the timer is due. */
function runModes(source: string, period = 0, outEvery = 1 << 30): Run[] {
  const image = assemble(source);
  return MODES.map((mode) => {
    const machine = new IrqMachine(outEvery);
    machine.load(LOAD_ADDRESS, image);
    const cpu = new Cpu(machine);
    cpu.fpu = new X87(cpu);
    machine.cpu = cpu;
    startAtLoadAddress(cpu);
    if (mode === 'blocks') cpu.enableBlockCache(1, undefined, Number.MAX_SAFE_INTEGER);
    if (mode === 'regions') cpu.enableBlockCache(1, undefined, 0);
    let total = 0;
    let due = period > 0 ? period : Infinity;
    while (machine.exitValue < 0 && total < 20_000_000) {
      const max = Math.min(100_000, due - total);
      const n = cpu.run(max);
      // The budget is exact: a chain of blocks never runs past it.
      if (n > max) throw new Error(`run(${max}) retired ${n} instructions`);
      total += n;
      if (total >= due) {
        cpu.setIntr(true);
        due += period;
      }
      if (cpu.halted && machine.exitValue < 0 && !cpu.intrLine) break;
    }
    return { cpu, machine };
  });
}

function state(r: Run) {
  const s = r.cpu.saveState();
  return {
    regs: s.regs, eip: s.eip, flags: r.cpu.getFlags(), instructions: s.instructionCount, exit: r.machine.exitValue,
    data: Array.from(r.machine.ram.subarray(DATA, DATA + 64)),
  };
}

function expectSame(runs: Run[]): void {
  const [interp, blocks, regions] = runs;
  expect(interp.machine.exitValue, 'the program ran to its exit under the interpreter').toBe(0);
  expect(state(blocks), 'straight-line blocks').toEqual(state(interp));
  expect(state(regions), 'regions').toEqual(state(interp));
  for (const r of [blocks, regions]) expect(r.cpu.blocks!.stats.chained, 'blocks were entered through chain links').toBeGreaterThan(1000);
}

/** Pad to the next page boundary (the program is loaded at LOAD_ADDRESS). */
const PAGE_ALIGN = `times (0x1000 - (($ - $$ + ${LOAD_ADDRESS}) & 0xfff)) & 0xfff nop`;

describe('block chaining', () => {
  it('a link into a page written since is not followed: the new code runs', () => {
    // The loop calls `outer` in another page, which calls `inner` beside it: the loop's
    // block chains to outer's, outer's to inner's and back. Every 256 passes the loop
    // (from its own page) rewrites inner's immediate: the links it and outer hold into
    // that page point at blocks of the old bytes.
    const runs = runModes(protectedMode(`
    mov ecx, 3000
    xor edx, edx
.again:
    call outer
    add edx, eax
    rol edx, 1
    test ecx, 0xff
    jnz .skip
    mov [inner + 1], ecx
.skip:
    loop .again
    mov [${DATA}], edx
    mov al, 0
    jmp done
    ${PAGE_ALIGN}
outer:
    mov eax, 3
    call inner
    add eax, 1
    ret
inner:
    add eax, 0x11111111
    ret
`));
    expectSame(runs);
    for (const r of runs.slice(1)) expect(r.cpu.blocks!.stats.invalidations).toBeGreaterThan(5);
  });

  it('a chained loop stops for the slice budget and for INTR at the interpreter\'s instruction', () => {
    // Two routines in one page calling each other's neighbour: every transfer is a chain
    // link. The timer raises INTR every 997 instructions (at a slice end), a port write
    // raises it every 13th time from inside a block; the handler folds the interrupted
    // EIP and registers into a checksum, so an interrupt taken one instruction late shows.
    const runs = runModes(protectedMode(`
${idtSetup([[0x20, 'irq']], 0x8e00)}
    mov ecx, 20000
    xor edx, edx
    xor esi, esi
    sti
.again:
    call first
    add edx, eax
    loop .again
    cli
    mov [${DATA}], edx
    mov [${DATA} + 4], esi
    mov eax, [ticks]
    mov [${DATA} + 8], eax
    mov al, 0
    jmp done
irq:
    push eax
    mov eax, [esp + 4]              ; the interrupted EIP
    add esi, eax
    rol esi, 3
    add esi, ecx
    xor esi, edx
    inc dword [ticks]
    pop eax
    iretd
ticks: dd 0
${IDT_DESC}
    ${PAGE_ALIGN}
first:
    mov eax, ecx
    and eax, 7
    call second
    add eax, 5
    ret
second:
    inc eax
    out 0x80, al
    imul eax, eax, 3
    ret
`), 997, 13);
    expectSame(runs);
    const ticks = runs[0].machine.ram[DATA + 8] | (runs[0].machine.ram[DATA + 9] << 8);
    expect(ticks).toBeGreaterThan(1000);
  });

  it('a chain after CR3 is reloaded with a new mapping of the code page runs the new page\'s code', () => {
    // Linear page 0x400000 holds `flip`, mapped to the program's page (X) or to a copy of
    // it at 0x500000 (Y) whose `routine` returns 2 instead of 1. On odd passes flip toggles
    // the mapping of its own page and reloads CR3, then goes on to `.keep`, where even passes
    // jump (so a translated block starts there in X and in Y), and calls routine beside it.
    // The code page is not global: the reload drops it, and the chain must read its new
    // mapping rather than go on in the physical page it left.
    const PTE = 0x101000 + (0x400 * 4);
    const runs = runModes(protectedMode(`
    ; copy the page holding flip to 0x500000 and patch the copy's routine
    mov esi, twin
    mov edi, 0x500000
    mov ecx, 1024
    rep movsd
    mov dword [0x500000 + (routine - twin) + 1], 2
    mov dword [${PTE}], twin + 7
    mov eax, cr3
    mov cr3, eax
    mov ecx, 4000
    xor edx, edx
.again:
    call 0x400000 + (flip - twin)
    add edx, eax
    rol edx, 1
    loop .again
    mov [${DATA}], edx
    mov al, 0
    jmp done
    ${PAGE_ALIGN}
twin:
flip:
    test ecx, 1
    jz .keep
    mov eax, [${PTE}]
    xor eax, (0x500000 ^ (${LOAD_ADDRESS} + (twin - $$))) & 0xfffff000
    mov [${PTE}], eax
    mov eax, cr3
    mov cr3, eax
.keep:
    call routine
    ret
routine:
    mov eax, 1
    ret
`));
    expectSame(runs);
    // The mapping flips on odd ECX: 1, 2, 2, 1, 1, 2, 2, ... folded as the loop does.
    let edx = 0;
    let copy = false;
    for (let ecx = 4000; ecx > 0; ecx--) {
      if (ecx & 1) copy = !copy;
      const sum = (edx + (copy ? 2 : 1)) | 0;
      edx = (sum << 1) | (sum >>> 31);
    }
    const r = runs[2];
    const got = r.machine.ram[DATA] | (r.machine.ram[DATA + 1] << 8) | (r.machine.ram[DATA + 2] << 16) | (r.machine.ram[DATA + 3] << 24);
    expect(got).toBe(edx);
  });
});
