/**
 * The WebAssembly loop form (wasm-region.ts) against the interpreter: random loops made
 * only of the form's subset, so they do compile to WebAssembly, each run by the
 * interpreter, by JavaScript regions, and by regions with the form on, to the same
 * registers, flags and instruction count. The run loop's slices (100,000 instructions)
 * end inside the loops, so the budget exit is exercised too.
 */
import { describe, expect, it } from 'vitest';
import { boot, protectedMode, runToExit } from '../testing/programs.ts';
import type { Cpu } from '../cpu.ts';
import { xorshift32 } from '../../testing/xorshift.ts';

const DATA = 0x200000;

// ECX counts the loop (LOOP, or DEC ECX before the closing Jcc): the body does not write it.
const REGS = ['eax', 'edx', 'ebx', 'esi', 'edi', 'ebp'];
const ALU = ['add', 'or', 'and', 'sub', 'xor', 'cmp'];
const CC = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'l', 'ge', 'le', 'g'];

/** The loop at `label` as a subroutine (a CALL's target starts a region: the loop is one), and its call. */
function randomLoop(rnd: () => number, label: string): { call: string[]; routine: string[] } {
  const pick = <T,>(xs: readonly T[]): T => xs[rnd() % xs.length];
  const imm = () => (rnd() & 1 ? rnd() % 256 : rnd()) >>> 0;
  const forms: (() => string)[] = [
    () => `${pick(ALU)} ${pick(REGS)}, ${pick(REGS)}`,
    () => `${pick(ALU)} ${pick(REGS)}, ${imm()}`,
    () => `${pick(ALU)} ${pick(REGS)}, byte ${(rnd() % 256) - 128}`,
    () => `${pick(ALU)} ${pick(REGS)}, ecx`,
    () => `test ${pick(REGS)}, ${pick(REGS)}`,
    () => `${pick(['inc', 'dec'])} ${pick(REGS)}`,
    () => `${pick(['shl', 'shr', 'sar', 'sal'])} ${pick(REGS)}, ${1 + (rnd() % 31)}`,
    () => `${pick(['shl', 'shr', 'sar'])} ${pick(REGS)}, 1`,
    () => `mov ${pick(REGS)}, ${pick(REGS)}`,
    () => `mov ${pick(REGS)}, ${imm()}`,
  ];
  const count = 200 + (rnd() % 3000);
  // Half the Jcc closers count ECX up from -count (INC/ADD flags), half down.
  const up = rnd() % 2 === 0;
  const call = [`mov ecx, ${up ? -count : count}`];
  // Sometimes set CF before the loop, for a body that starts with INC/DEC to carry.
  if (rnd() % 2) call.push(pick(['stc', 'clc']));
  call.push(`call ${label}`);
  const lines = [`${label}:`];
  for (let i = 0, n = 1 + (rnd() % 12); i < n; i++) {
    lines.push(pick(forms)());
    if (rnd() % 4 === 0) {
      // A forward Jcc inside the loop over a few instructions (jnc .no_poly in a CRC).
      const skip = `${label}s${i}`;
      lines.push(pick(forms)(), `j${pick(CC)} ${skip}`);
      for (let k = 0, m = 1 + (rnd() % 3); k < m; k++) lines.push(pick(forms)());
      lines.push(`${skip}:`);
    }
  }
  if (!up && rnd() % 2) lines.push(`loop ${label}`);
  else {
    // Closing conditions that end with ECX counting down: ZF, SF/OF after DEC or SUB, CF
    // and ZF after a CMP.
    const k = 1 + (rnd() % 50);
    lines.push(...pick(up ? [
      ['inc ecx', `jnz ${label}`], ['inc ecx', `js ${label}`], ['inc ecx', `jl ${label}`], ['inc ecx', `jle ${label}`],
      ['add ecx, 1', `jnc ${label}`], ['add ecx, byte 1', `jl ${label}`],
    ] : [
      ['dec ecx', `jnz ${label}`], ['dec ecx', `jg ${label}`], ['dec ecx', `jns ${label}`], ['dec ecx', `jge ${label}`],
      ['sub ecx, 1', `ja ${label}`], ['dec ecx', `cmp ecx, ${k}`, `ja ${label}`], ['dec ecx', `cmp ecx, ${k}`, `jae ${label}`],
      ['dec ecx', `test ecx, ecx`, `jnle ${label}`],
    ]));
  }
  lines.push('ret');
  return { call, routine: lines };
}

function program(seed: number): string {
  const rnd = xorshift32(seed * 104729 + 7);
  const lines = REGS.map((r) => `mov ${r}, ${rnd() >>> 0}`);
  const routines: string[] = [];
  for (let i = 0; i < 6; i++) {
    const { call, routine } = randomLoop(rnd, `.l${i}`);
    // Each loop's flags as it left them (CF, OF and the rest), for the comparison.
    lines.push(...call, 'pushfd', `pop dword [${DATA + 4 * i}]`);
    routines.push(...routine);
  }
  const indent = (xs: string[]) => xs.map((l) => (l.endsWith(':') ? l : `    ${l}`)).join('\n');
  return protectedMode(`
${indent(lines)}
    pushfd
    pop eax
    mov al, 0
    jmp done
${indent(routines)}
`);
}

function run(source: string, mode: 'interpreter' | 'regions' | 'wasm', promote = 0): { cpu: Cpu; state: unknown } {
  const { cpu, machine } = boot(source);
  if (mode !== 'interpreter') cpu.enableBlockCache(1, undefined, promote, mode === 'wasm');
  // The run loop's budget is exact: a block never runs past it (a deterministic clock relies on that).
  const runSlice = cpu.run.bind(cpu);
  cpu.run = (max: number) => {
    const n = runSlice(max);
    if (n > max) throw new Error(`run(${max}) retired ${n} instructions`);
    return n;
  };
  runToExit(cpu, machine, 20_000_000);
  const s = cpu.saveState();
  return { cpu, state: { regs: s.regs, eip: s.eip, flags: cpu.getFlags(), instructions: s.instructionCount, exit: machine.exitValue, data: Array.from(machine.ram.subarray(DATA, DATA + 24)) } };
}

describe('WebAssembly loops (wasm-region.ts) against the interpreter', () => {
  it('random loops of the subset end in the same registers, flags and instruction count', () => {
    let compiled = 0;
    for (let seed = 1; seed <= 16; seed++) {
      const source = program(seed);
      const interp = run(source, 'interpreter');
      expect((interp.state as { exit: number }).exit, `seed ${seed} ran to its exit`).toBeGreaterThanOrEqual(0);
      expect(run(source, 'regions').state, `seed ${seed}, JavaScript regions`).toEqual(interp.state);
      const wasm = run(source, 'wasm');
      expect(wasm.state, `seed ${seed}, WebAssembly loops`).toEqual(interp.state);
      compiled += wasm.cpu.blocks!.stats.wasm;
    }
    expect(compiled).toBeGreaterThan(40);
  }, 60_000);

  it('a region that falls into a WebAssembly loop leaves at its head (the CRC-32 of the CPU workload)', () => {
    // The bit loop is reached by falling through from MOV ECX, 8: its head becomes a
    // WebAssembly block first (tier 1), then the byte loop's region (promoted after 2
    // entries) stops there and the run loop goes on into the WebAssembly loop.
    const source = protectedMode(`
    mov edi, ${DATA}
    mov ecx, 1024
    mov eax, 0x9e3779b9
.fill:
    mov [edi], eax
    rol eax, 5
    add eax, ecx
    add edi, 4
    loop .fill
    mov ebp, 3
.pass:
    mov esi, ${DATA}
    mov ebx, 4096
    mov edx, 0xffffffff
.byte:
    movzx eax, byte [esi]
    inc esi
    xor edx, eax
    mov ecx, 8
.bit:
    shr edx, 1
    jnc .no_poly
    xor edx, 0xedb88320
.no_poly:
    loop .bit
    dec ebx
    jnz .byte
    mov [${DATA + 4096} + ebp * 4], edx
    dec ebp
    jnz .pass
    pushfd
    pop eax
    mov al, 0
    jmp done
`);
    const interp = run(source, 'interpreter');
    expect((interp.state as { exit: number }).exit).toBeGreaterThanOrEqual(0);
    const wasm = run(source, 'wasm', 2);
    expect(wasm.state).toEqual(interp.state);
    expect(wasm.cpu.blocks!.stats.wasm).toBeGreaterThan(0);
    expect(wasm.cpu.blocks!.stats.promoted).toBeGreaterThan(0);
    // The WebAssembly loop was entered again and again from the regions around it.
    expect(wasm.cpu.blocks!.stats.entries).toBeGreaterThan(4096);
  });

  it('is off by default: regions without the option compile no WebAssembly', () => {
    const r = run(program(1), 'regions');
    expect(r.cpu.blocks!.stats.wasm).toBe(0);
  });
});
