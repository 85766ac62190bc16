/**
 * CPU benchmark: a CPU-bound guest in flat 32-bit protected mode with paging on (a
 * sieve, a bitwise CRC-32, REP MOVSD copies and calls), interpreted for a few seconds.
 * `npx tsx src/cli/bench-cpu.ts` prints "cpu: NN.N MIPS".
 */
import { pathToFileURL } from 'node:url';
import { boot, protectedMode } from '../emulator/cpu/testing/programs.ts';
import { ownThreadTime } from './thread-time.ts';

export const WORKLOAD = `
    mov ebp, 1000000            ; outer iterations: more than a few seconds' worth
outer:
    ; sieve of Eratosthenes over 4096 bytes at 0x200000
    mov edi, 0x200000
    mov ecx, 1024
    mov eax, 0x01010101
    rep stosd
    mov ebx, 2
.sieve:
    cmp byte [0x200000 + ebx], 0
    je .next
    mov eax, ebx
    imul eax, ebx
    cmp eax, 4096
    jae .sieved
.mark:
    mov byte [0x200000 + eax], 0
    add eax, ebx
    cmp eax, 4096
    jb .mark
.next:
    inc ebx
    jmp .sieve
.sieved:
    ; CRC-32 of 1024 bytes, bit by bit
    mov esi, 0x200000
    mov ecx, 1024
    mov edx, 0xffffffff
.crc_byte:
    movzx eax, byte [esi]
    inc esi
    xor edx, eax
    push ecx
    mov ecx, 8
.crc_bit:
    shr edx, 1
    jnc .no_poly
    xor edx, 0xedb88320
.no_poly:
    loop .crc_bit
    pop ecx
    call nothing
    loop .crc_byte
    ; copy 16 KiB
    mov esi, 0x200000
    mov edi, 0x300000
    mov ecx, 4096
    rep movsd
    dec ebp
    jnz outer
    mov al, 0
    jmp done
nothing:
    ret
`;

/**
 * `mips` is per wall-clock second; `cpuMips` per second this thread spent on a CPU (Linux's
 * scheduler statistics; null elsewhere), which other processes sharing the cores do not
 * dilute: on this project's 2-core machine, shared by several sessions, the wall figure
 * moved by a factor of two from one run to the next while the on-CPU figure held.
 */
export function benchCpu(seconds = 5, blockCache = false, wasm = false): { mips: number; cpuMips: number | null; instructions: number; seconds: number; wasmLoops: number } {
  const { cpu } = boot(protectedMode(WORKLOAD));
  if (blockCache) cpu.enableBlockCache(undefined, undefined, undefined, wasm);
  // Warm up (lets V8 optimise the interpreter), then measure.
  for (let i = 0; i < 50; i++) cpu.run(100_000);
  const start = performance.now();
  const thread0 = ownThreadTime();
  let instructions = 0;
  while (performance.now() - start < seconds * 1000) instructions += cpu.run(1_000_000);
  const elapsed = (performance.now() - start) / 1000;
  const thread1 = ownThreadTime();
  const onCpu = thread0 && thread1 ? thread1.onCpu - thread0.onCpu : 0;
  return { mips: instructions / elapsed / 1e6, cpuMips: onCpu > 0 ? instructions / onCpu / 1e6 : null, instructions, seconds: elapsed, wasmLoops: cpu.blocks?.stats.wasm ?? 0 };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href || /(^|\/)bench-cpu\.ts$/.test(process.argv[1] ?? '')) {
  // `blocks` translates; `wasm` translates with the WebAssembly loop form on (off by default).
  const mode = process.argv[3];
  const r = benchCpu(Number(process.argv[2] ?? 5), mode === 'blocks' || mode === 'wasm', mode === 'wasm');
  const onCpu = r.cpuMips === null ? '' : `, ${r.cpuMips.toFixed(1)} MIPS on a CPU`;
  const loops = mode === 'wasm' ? `, ${r.wasmLoops} loops in WebAssembly` : '';
  process.stdout.write(`cpu: ${r.mips.toFixed(1)} MIPS (${r.instructions} instructions in ${r.seconds.toFixed(2)} s${onCpu}${loops}, flat protected mode with paging)\n`);
}
