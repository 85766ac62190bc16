/**
 * Translated blocks against the interpreter. The interpreter is the reference: a program
 * run both ways must end in the same registers, flags and memory, with the same number of
 * instructions retired (the run loop's budget and the deterministic clock depend on it).
 * Translation thresholds are set to 1 here so every block is translated on its second
 * visit, which is what exercises the code generator.
 */
import { describe, expect, it } from 'vitest';
import { boot, protectedMode, runToExit, idtSetup, IDT_DESC, LOAD_ADDRESS } from '../testing/programs.ts';
import type { Cpu } from '../cpu.ts';
import type { FlatTestMachine } from '../flat-machine.ts';

const DATA = 0x200000;

/**
 * The interpreter, straight-line blocks (tier 1 only), regions (every block a region
 * from the start, following every jump target in its page), and regions with the
 * WebAssembly form on (wasm-region.ts: the loops it can take, the rest as in `regions`).
 */
const MODES = ['interpreter', 'blocks', 'regions', 'wasm'] as const;

function runAll(source: string, limit = 5_000_000) {
  const results = MODES.map((mode) => {
    const { cpu, machine } = boot(source);
    if (mode === 'blocks') cpu.enableBlockCache(1, undefined, Number.MAX_SAFE_INTEGER);
    if (mode === 'regions') cpu.enableBlockCache(1, undefined, 0);
    if (mode === 'wasm') cpu.enableBlockCache(1, undefined, 0, true);
    // The run loop's budget is exact: a block never runs past it (a deterministic clock relies on that).
    const runSlice = cpu.run.bind(cpu);
    cpu.run = (max: number) => {
      const n = runSlice(max);
      if (n > max) throw new Error(`run(${max}) retired ${n} instructions`);
      return n;
    };
    const executed = runToExit(cpu, machine, limit);
    return { cpu, machine, executed };
  });
  return { interp: results[0], blocks: results[1], regions: results[2], wasm: results[3] };
}

function state(cpu: Cpu, machine: FlatTestMachine) {
  const s = cpu.saveState();
  return {
    regs: s.regs, eip: s.eip, flags: cpu.getFlags(), instructions: s.instructionCount,
    sreg: s.sreg, cr2: s.cr2, exit: machine.exitValue, debug: machine.debugText(),
    data: Array.from(machine.ram.subarray(DATA, DATA + 1024)),
  };
}

function expectSame(source: string, limit?: number) {
  const { interp, blocks, regions, wasm } = runAll(source, limit);
  expect(interp.machine.exitValue, 'the program ran to its exit under the interpreter').toBeGreaterThanOrEqual(0);
  expect(state(blocks.cpu, blocks.machine), 'straight-line blocks').toEqual(state(interp.cpu, interp.machine));
  expect(blocks.cpu.blocks!.stats.executed).toBeGreaterThan(0);
  expect(blocks.cpu.blocks!.stats.promoted).toBe(0);
  expect(state(regions.cpu, regions.machine), 'regions').toEqual(state(interp.cpu, interp.machine));
  expect(regions.cpu.blocks!.stats.promoted).toBeGreaterThan(0);
  expect(state(wasm.cpu, wasm.machine), 'regions with the WebAssembly form').toEqual(state(interp.cpu, interp.machine));
  return { interp, blocks, regions, wasm };
}

/** A #PF handler that maps the faulting page at page-table entry `pte` and counts in [faults]. */
function pfHandler(pte: number): string {
  return `
pf_handler:
    push eax
    mov eax, cr2
    and eax, 0xfffff000
    or eax, 7
    mov [${pte}], eax
    inc dword [faults]
    pop eax
    add esp, 4                      ; the error code
    iretd
faults: dd 0
${IDT_DESC}`;
}

// ---------------------------------------------------------------------------------------
// Random instruction sequences over the translated forms (a small deterministic PRNG).
// ---------------------------------------------------------------------------------------

function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

// EBX holds the data area and ESP the stack: neither is written by the random forms.
const R32 = ['eax', 'ecx', 'edx', 'esi', 'edi', 'ebp'];
const R16 = ['ax', 'cx', 'dx', 'si', 'di', 'bp'];
const R8 = ['al', 'cl', 'dl', 'ah', 'ch', 'dh'];
const ALU = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];
const SHIFTS = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', 'sar'];
const CC = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'];

function randomBody(seed: number, length: number): string {
  const rnd = prng(seed);
  const pick = <T,>(xs: readonly T[]): T => xs[rnd() % xs.length];
  const imm = () => (rnd() & 1 ? rnd() % 256 : rnd()) >>> 0;
  const mem = (size: string) => `${size} [ebx + ${rnd() % 200}]`;
  /** An instruction that leaves the flags as they are. */
  const neutral = (): string => pick([
    () => `mov ${pick(R32)}, ${mem('dword')}`, () => `mov ${mem('dword')}, ${pick(R32)}`, () => `mov ${pick(R32)}, ${pick(R32)}`,
    () => `lea ${pick(R32)}, [${pick(R32)} + ${rnd() % 1000}]`, () => `movzx ${pick(R32)}, ${pick(R8)}`,
    () => `push ${pick(R32)}\n    pop ${pick(R32)}`, () => `set${pick(CC)} ${pick(R8)}`, () => `cmov${pick(CC)} ${pick(R32)}, ${pick(R32)}`,
    () => `not ${pick(R32)}`, () => `bswap ${pick(R32)}`,
  ])();
  const forms: (() => string)[] = [
    () => `${pick(ALU)} ${pick(R32)}, ${pick(R32)}`,
    () => `${pick(ALU)} ${pick(R32)}, ${mem('dword')}`,
    () => `${pick(ALU)} ${mem('dword')}, ${pick(R32)}`,
    () => `${pick(ALU)} ${mem('dword')}, ${imm()}`,
    () => `${pick(ALU)} ${pick(R32)}, byte ${(rnd() % 256) - 128}`,
    () => `${pick(ALU)} ${pick(R8)}, ${pick(R8)}`,
    () => `${pick(ALU)} ${mem('byte')}, ${rnd() % 256}`,
    () => `${pick(ALU)} ${pick(R16)}, ${pick(R16)}`,
    () => `${pick(ALU)} ${mem('word')}, ${rnd() % 65536}`,
    () => `${pick(ALU)} al, ${rnd() % 256}`,
    () => `${pick(ALU)} eax, ${imm()}`,
    () => `test ${pick(R32)}, ${pick(R32)}`,
    () => `test ${mem('byte')}, ${rnd() % 256}`,
    () => `${pick(['inc', 'dec', 'neg', 'not'])} ${pick(R32)}`,
    () => `${pick(['inc', 'dec', 'neg', 'not'])} ${mem(pick(['byte', 'word', 'dword']))}`,
    () => `${pick(['inc', 'dec'])} ${pick(R16)}`,
    () => `${pick(SHIFTS)} ${pick(R32)}, ${rnd() % 32}`,
    () => `${pick(SHIFTS)} ${pick(R32)}, 1`,
    () => `${pick(SHIFTS)} ${pick(R8)}, cl`,
    () => `${pick(SHIFTS)} ${mem('dword')}, cl`,
    // Constant counts of every size, the counts at and past the width included (inline
    // for SHL/SHR/SAR below the width, shift() for the rest).
    () => `${pick(SHIFTS)} ${pick(R16)}, ${rnd() % 32}`,
    () => `${pick(SHIFTS)} ${pick(R8)}, ${rnd() % 32}`,
    () => `${pick(SHIFTS)} ${mem(pick(['byte', 'word', 'dword']))}, ${rnd() % 32}`,
    () => `${pick(SHIFTS)} ${pick(R16)}, 1`,
    // A shift's flags read by the next instruction (CF, OF and the rest from the lazy shift).
    () => `${pick(['shl', 'shr', 'sar'])} ${pick([...R32, ...R16, ...R8])}, ${1 + (rnd() % 7)}\n    ${pick([`set${pick(CC)} ${pick(R8)}`, `adc ${pick(R32)}, ${pick(R32)}`, 'pushfd\n    pop dword [ebx + 996]'])}`,
    // INC/DEC after a shift keep the shift's CF (the translator takes it from its locals).
    () => `${pick(['shl', 'shr', 'sar'])} ${pick([...R32, ...R16, ...R8])}, ${1 + (rnd() % 7)}\n    ${pick(['inc', 'dec'])} ${pick(R32)}\n    set${pick(['b', 'ae', 'be', 'a'])} ${pick(R8)}`,
    () => `imul ${pick(R32)}, ${pick(R32)}`,
    () => `imul ${pick(R32)}, ${mem('dword')}, ${(rnd() % 256) - 128}`,
    () => `imul ${pick(R32)}, ${pick(R32)}, ${imm()}`,
    () => `set${pick(CC)} ${pick(R8)}`,
    () => `set${pick(CC)} ${mem('byte')}`,
    () => `cmov${pick(CC)} ${pick(R32)}, ${pick(R32)}`,
    () => `cmov${pick(CC)} ${pick(R32)}, ${mem('dword')}`,
    () => `movzx ${pick(R32)}, ${pick(R8)}`,
    () => `movsx ${pick(R32)}, ${mem('word')}`,
    () => `mov ${pick(R32)}, ${mem('dword')}`,
    () => `mov ${mem('dword')}, ${pick(R32)}`,
    () => `mov ${mem('byte')}, ${pick(R8)}`,
    () => `mov ${pick(R16)}, ${mem('word')}`,
    () => `mov ${pick(R32)}, ${imm()}`,
    () => `mov ${mem('dword')}, ${imm()}`,
    () => `lea ${pick(R32)}, [ebx + ${pick(R32)} * ${pick([1, 2, 4, 8])} + ${rnd() % 1000}]`,
    () => `xchg ${pick(R32)}, ${pick(R32)}`,
    () => `xchg ${mem('dword')}, ${pick(R32)}`,
    () => pick(['cdq', 'cwde', 'cbw', 'cwd', 'clc', 'stc', 'cmc', 'nop', 'sahf', 'lahf']),
    // Port I/O and RDTSC run by the interpreter inside a block, which goes on after them.
    () => pick(['rdtsc', 'in al, 0x61', 'out 0x80, al', 'in ax, 0x40', 'out 0x80, eax']),
    () => `bswap ${pick(R32)}`,
    () => `bt ${pick(R32)}, ${pick(R32)}`,
    () => `push ${pick(R32)}\n    pop ${pick(R32)}`,
    () => `push dword ${mem('')}\n    pop ${pick(R32)}`,
    () => `push ${imm()}\n    pop ${pick(R32)}`,
    () => `mul ${pick(R32)}`,
    () => `${pick(['adc', 'sbb'])} ${pick(R32)}, ${mem('dword')}`,
    // Flag producers right before their consumers (the translator fuses these).
    () => `${pick(['cmp', 'sub', 'test', 'and', 'xor', 'or', 'add'])} ${pick(R32)}, ${pick(R32)}\n    set${pick(CC)} ${pick(R8)}`,
    () => `${pick(['cmp', 'sub', 'test', 'and', 'add'])} ${pick(R8)}, ${pick(R8)}\n    set${pick(CC)} ${mem('byte')}`,
    () => `${pick(['cmp', 'sub', 'test', 'and'])} ${pick(R32)}, ${mem('dword')}\n    cmov${pick(CC)} ${pick(R32)}, ${mem('dword')}`,
    // ... and with instructions between that leave the flags alone (the translator carries
    // the producer's operands over them), one of them to a register the producer read.
    () => `${pick(['cmp', 'sub', 'test', 'and', 'xor', 'add'])} ${pick(R32)}, ${pick(R32)}\n    ${neutral()}\n    ${neutral()}\n    ` +
      pick([`set${pick(CC)} ${pick(R8)}`, `cmov${pick(CC)} ${pick(R32)}, ${pick(R32)}`, `${pick(['inc', 'dec'])} ${pick(R32)}\n    set${pick(['b', 'ae', 'e', 'l'])} ${pick(R8)}`]),
    // CMOVcc and XCHG leave the flags but use the translator's operand locals: a compare's
    // condition read after them must still be the compare's.
    () => `${pick(['cmp', 'sub'])} ${pick(R32)}, ${pick(R32)}\n    ${pick([`cmov${pick(CC)} ${pick(R32)}, ${pick(R32)}`, `xchg eax, ${pick(R32)}`])}\n    set${pick(['b', 'ae', 'be', 'a', 'l', 'ge', 'le', 'g'])} ${pick(R8)}`,
  ];
  const lines: string[] = [];
  for (let i = 0; i < length; i++) {
    if (rnd() % 8 === 0) {
      // A conditional branch over one instruction (side exits and fall-through).
      // Often a compare right before it, equal operands included; the path taken is
      // recorded in a sum at [ebx + 1008] so a wrong branch always shows.
      const x = pick(R32);
      const operand = [x, pick(R32), String(rnd() % 4), String(imm())][rnd() % 4];
      // A shift by a constant before the branch too: jc/jnc test the bit shifted out.
      const compare = rnd() % 3 ? [rnd() % 4 === 0 ? `${pick(['shl', 'shr', 'sar'])} ${x}, ${1 + (rnd() % 31)}`
        : `${pick(['cmp', 'cmp', 'sub', 'test', 'and', 'add'])} ${x}, ${operand}`] : [];
      // Sometimes an instruction that leaves the flags alone between the compare and the branch.
      if (compare.length > 0 && rnd() % 3 === 0) compare.push(neutral());
      const branch = rnd() % 5 === 0 ? pick(['loop', 'loope', 'loopne', 'jecxz']) : `j${pick(CC)}`;
      lines.push(...compare, `${branch} .s${i}`, pick(forms)(), `add dword [ebx + 1008], ${i + 1}`, `.s${i}:`);
    } else lines.push(pick(forms)());
  }
  return lines.map((l) => `    ${l}`).join('\n');
}

function randomProgram(seed: number): string {
  const rnd = prng(seed * 7919 + 1);
  const init = R32.map((r) => `    mov ${r}, ${rnd() >>> 0}`).join('\n');
  return protectedMode(`
    mov ebx, ${DATA}
    ; fill the data area with a pattern
    mov edi, ebx
    mov ecx, 256
    mov eax, 0x9e3779b9
.fill:
    mov [edi], eax
    rol eax, 5
    add eax, ecx
    add edi, 4
    loop .fill
${init}
    mov dword [ebx + 1000], 4   ; passes: the first interprets, the rest run translated
    mov dword [ebx + 1008], 0
.pass:
${randomBody(seed, 120)}
    dec dword [ebx + 1000]
    jnz .pass
    pushfd
    pop dword [ebx + 1004]
    mov al, 0
    jmp done
`);
}

describe('translated blocks against the interpreter', () => {
  // 30 seeds in three modes: about 15 s alone on this project's 2-core machine, past 30 s
  // when the whole suite shares the cores, so it gets a limit of its own.
  it('random instruction sequences end in the same registers, flags, memory and instruction count', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const { blocks } = expectSame(randomProgram(seed));
      expect(blocks.cpu.blocks!.stats.translated, `seed ${seed}`).toBeGreaterThan(0);
    }
  }, 120_000);

  it('a host that forbids generated code (CSP without unsafe-eval) leaves the interpreter running alone', () => {
    const source = randomProgram(3);
    const reference = runAll(source).interp;
    const realFunction = globalThis.Function;
    globalThis.Function = function forbidden() {
      throw new EvalError("Refused to evaluate a string as JavaScript because 'unsafe-eval' is not allowed");
    } as unknown as FunctionConstructor;
    let blocks;
    try {
      blocks = runAll(source).blocks;
    } finally {
      globalThis.Function = realFunction;
    }
    expect(state(blocks.cpu, blocks.machine)).toEqual(state(reference.cpu, reference.machine));
    expect(blocks.cpu.blocks!.unavailable).toContain('unsafe-eval');
    expect(blocks.cpu.blocks!.stats.executed).toBe(0);
  });

  it('every part of a long straight-line routine grows hot with its entry (not one block per threshold)', () => {
    // 240 straight-line instructions (five blocks' worth) run 200 times. The run loop looks
    // for a block wherever a translation would have ended, so all five parts reach the
    // threshold together, at pass 50; were only the entry counted, the second part would
    // start counting once the first was translated, and so on (part k hot at pass 50k).
    const source = protectedMode(`
    mov ebp, 200
    mov eax, 1
    mov ebx, 3
again:
%rep 80
    add eax, ebx
    xor ebx, eax
    rol eax, 3
%endrep
    dec ebp
    jnz again
    mov [${DATA}], eax
    mov [${DATA} + 4], ebx
    mov al, 0
    jmp done
`);
    const reference = boot(source);
    runToExit(reference.cpu, reference.machine);
    const { cpu, machine } = boot(source);
    cpu.enableBlockCache(50);
    runToExit(cpu, machine);
    expect(state(cpu, machine)).toEqual(state(reference.cpu, reference.machine));
    // 150 of 200 passes wholly translated: about 75% of the instructions.
    expect(cpu.blocks!.stats.executed / cpu.instructionCount).toBeGreaterThan(0.65);
  });

  it('CPU-bound loops with calls, REP strings and LOOP give the same results', () => {
    expectSame(protectedMode(`
    mov ebp, 20
outer:
    mov edi, ${DATA}
    mov ecx, 64
    mov eax, ebp
    rep stosd
    mov esi, ${DATA}
    mov ecx, 256
    xor edx, edx
.sum:
    movzx eax, byte [esi]
    add edx, eax
    rol edx, 3
    inc esi
    call helper
    loop .sum
    mov [${DATA} + 512 + ebp * 4], edx
    dec ebp
    jnz outer
    mov al, 0
    jmp done
helper:
    xor edx, 0x5a5a
    ret
`));
  });

  it('a block that jumps back to its own start loops in place, within the budget, through faults', () => {
    const PTE = 0x101000 + (0x400 * 4); // page table entry of linear 0x400000
    expectSame(protectedMode(`
${idtSetup([[14, 'pf_handler']], 0x8e00)}
    ; a tight summing loop far longer than a run slice (runToExit runs 100,000 at a time)
    mov esi, 0x300000
    mov ecx, 150000
    xor eax, eax
.sum:
    add eax, [esi]
    add eax, ecx
    add esi, 4
    and esi, 0x3fffff
    dec ecx
    jnz .sum
    mov [${DATA}], eax
    ; a loop closed by JMP, leaving through a JAE in the middle, that walks into an unmapped page
    mov dword [${PTE}], 0
    invlpg [0x400000]
    mov edi, 0x3ff000
    xor edx, edx
.walk:
    add edx, [edi]
    add edi, 64
    cmp edi, 0x401000
    jae .walked
    jmp .walk
.walked:
    mov [${DATA} + 4], edx
    mov eax, [faults]
    mov [${DATA} + 8], eax
    mov al, 0
    jmp done
${pfHandler(PTE)}
`), 10_000_000);
  });

  it('a store into translated code takes effect at the next instruction, in its own block too', () => {
    const { blocks } = expectSame(protectedMode(`
    mov ecx, 50
    xor edx, edx
.again:
    call patched            ; translated after its first visits
    add edx, eax
    ; rewrite patched's immediate: the next call must see the new value
    mov [patched + 1], ecx
    ; and an instruction later in this very block
    mov byte [.here + 1], cl
.here:
    mov al, 0
    movzx eax, al
    add edx, eax
    loop .again
    mov [${DATA}], edx
    mov al, 0
    jmp done
patched:
    mov eax, 1
    ret
`));
    expect(blocks.cpu.blocks!.stats.invalidations).toBeGreaterThan(10);
    // sum over ecx = 50..1 of (the previous ecx, or 1 at first) + ecx
    let edx = 0;
    let imm = 1;
    for (let ecx = 50; ecx >= 1; ecx--) {
      edx = (edx + imm) | 0;
      imm = ecx;
      edx = (edx + ecx) | 0;
    }
    expect(blocks.machine.ram[DATA] | (blocks.machine.ram[DATA + 1] << 8)).toBe(edx & 0xffff);
  });

  it('stores into code across a page boundary take effect, whichever page and translation they hit', () => {
    // `straddle` starts 3 bytes before a page end: MOV EAX, imm32 has its opcode and two
    // immediate bytes in one page and two in the next, where the rest of the routine is.
    // The loop patches the immediate's high half (in the second page only), its low half
    // with a dword store that itself crosses the boundary, and code of its own page.
    const { regions } = expectSame(protectedMode(`
    mov ecx, 300
    xor edx, edx
    mov ebx, 0x01020304
.again:
    call straddle
    add edx, eax
    test ecx, 7
    jnz .skip
    mov [straddle + 3], cx          ; the immediate's high half, in the second page
.skip:
    test ecx, 13
    jnz .skip2
    add ebx, ecx
    mov [straddle + 1], ebx         ; the whole immediate, a dword store across the boundary
.skip2:
    cmp ecx, 150
    jne .skip3
    mov byte [.patched + 2], 5      ; code of this loop's own page: rol edx, 5 from now on
.skip3:
.patched:
    rol edx, 3
    loop .again
    mov [${DATA}], edx
    mov al, 0
    jmp done
    ; to the next page boundary (the program is loaded at ${LOAD_ADDRESS}), then 3 bytes short of the one after
    times (0x1000 - (($ - $$ + ${LOAD_ADDRESS}) & 0xfff)) & 0xfff nop
    times 0x1000 - 3 nop
straddle:
    mov eax, 0x11111111
    xor eax, ecx
    ret
`));
    expect(regions.cpu.blocks!.stats.invalidations).toBeGreaterThan(10);
  });

  it('a store through another mapping of a translated page takes effect', () => {
    // Linear 0x400000 is made an alias of the page holding `patched`; the loop rewrites
    // the routine's immediate through the alias, never through the address it runs at.
    const PTE = 0x101000 + (0x400 * 4); // page table entry of linear 0x400000
    const { regions, blocks } = expectSame(protectedMode(`
    mov dword [${PTE}], patched + 7
    invlpg [0x400000]
    mov ecx, 60
    xor edx, edx
.again:
    call patched
    add edx, eax
    mov [0x400000 + 1], ecx         ; patched's immediate, through the alias
    loop .again
    mov [${DATA}], edx
    mov al, 0
    jmp done
    times (0x1000 - (($ - $$ + ${LOAD_ADDRESS}) & 0xfff)) & 0xfff nop
patched:
    mov eax, 1
    ret
`));
    for (const r of [regions, blocks]) expect(r.cpu.blocks!.stats.invalidations).toBeGreaterThan(10);
    // 1 on the first call, then the ECX of the pass before.
    let edx = 1;
    for (let ecx = 60; ecx > 1; ecx--) edx += ecx;
    expect(regions.machine.ram[DATA] | (regions.machine.ram[DATA + 1] << 8)).toBe(edx & 0xffff);
  });

  it('faults inside a block restart the right instruction and count exactly', () => {
    // A not-present page: the #PF handler maps it and returns; a user-mode loop
    // takes the page fault in the middle of its block each pass.
    const PTE = 0x101000 + (0x400 * 4); // page table entry of linear 0x400000
    const { blocks } = expectSame(protectedMode(`
${idtSetup([[14, 'pf_handler']], 0x8e00)}
    mov ecx, 40
    xor esi, esi
.loop:
    mov dword [${PTE}], 0           ; unmap 0x400000
    invlpg [0x400000]
    mov eax, ecx
    add esi, eax
    mov edx, [0x400000 + 16]        ; faults; the handler maps the page
    add esi, edx
    lea eax, [esi + ecx * 2]
    xor esi, eax
    loop .loop
    mov [${DATA}], esi
    mov eax, [faults]
    mov [${DATA} + 4], eax
    mov al, 0
    jmp done
${pfHandler(PTE)}
`));
    expect(blocks.machine.ram[DATA + 4]).toBe(40);
  });

  it('a fault between two instructions that set the flags sees the first one\'s flags (the dead-flag pass keeps them)', () => {
    // SUB then INC define the flags, the load faults, XOR defines them all again: the #PF
    // handler adds up the EFLAGS it finds on its stack, so flags left unstored before the
    // fault would show; the INC right before XOR in the second half stores nothing.
    const PTE = 0x101000 + (0x400 * 4);
    const { blocks } = expectSame(protectedMode(`
${idtSetup([[14, 'flags_pf']], 0x8e00)}
    mov ecx, 40
    xor esi, esi
    xor edi, edi
.loop:
    mov dword [${PTE}], 0
    invlpg [0x400000]
    mov eax, ecx
    sub eax, 20
    inc edi
    mov edx, [0x400000 + 16]        ; faults; the handler maps the page
    xor esi, edx
    sub eax, ecx
    dec edi
    inc eax
    xor esi, eax
    adc esi, edi
    loop .loop
    mov [${DATA}], esi
    mov eax, [flag_sum]
    mov [${DATA} + 4], eax
    mov [${DATA} + 8], edi
    mov al, 0
    jmp done
flags_pf:
    push eax
    mov eax, [esp + 16]             ; EFLAGS, above EAX, the error code, EIP and CS
    and eax, 0x8d5                  ; the status flags
    add [flag_sum], eax
    mov eax, cr2
    and eax, 0xfffff000
    or eax, 7
    mov [${PTE}], eax
    pop eax
    add esp, 4
    iretd
flag_sum: dd 0
${IDT_DESC}
`));
    expect(blocks.machine.ram[DATA + 4] | (blocks.machine.ram[DATA + 5] << 8)).toBeGreaterThan(0);
  });
});
