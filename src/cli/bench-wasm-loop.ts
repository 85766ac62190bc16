/**
 * The WebAssembly loop form (cpu/jit/wasm-region.ts) where it applies: the bitwise CRC's
 * inner loop of bench-cpu.ts's workload (shr edx, 1 / jnc / xor edx, POLY / loop) entered
 * through a CALL, so the loop's head starts a region, and run for long passes; translated
 * as regions at once with the option off (JavaScript) and on, alternating.
 * `node bin/run.mjs src/cli/bench-wasm-loop.ts [SECONDS] [ROUNDS]` prints MIPS per run, per
 * second on a CPU (the thread's scheduler time) when Linux says, else per wall-clock second.
 */
import { pathToFileURL } from 'node:url';
import { boot, protectedMode } from '../emulator/cpu/testing/programs.ts';
import { ownThreadTime } from './thread-time.ts';

const LOOP = `
    mov edx, 0xffffffff
again:
    mov ecx, 100000
    call crc_bits
    jmp again
crc_bits:
    shr edx, 1
    jnc .no_poly
    xor edx, 0xedb88320
.no_poly:
    loop crc_bits
    ret
`;

function run(seconds: number, wasm: boolean): { mips: number; loops: number } {
  const { cpu } = boot(protectedMode(LOOP));
  // Regions at once (promote threshold 0): the loop head is entered once per 100,000 passes,
  // so the default threshold would keep it a straight-line block for good.
  cpu.enableBlockCache(undefined, undefined, 0, wasm);
  for (let i = 0; i < 100; i++) cpu.run(100_000);
  const start = performance.now();
  const t0 = ownThreadTime();
  let instructions = 0;
  while (performance.now() - start < seconds * 1000) instructions += cpu.run(1_000_000);
  const t1 = ownThreadTime();
  const elapsed = t0 && t1 ? t1.onCpu - t0.onCpu : (performance.now() - start) / 1000;
  return { mips: instructions / elapsed / 1e6, loops: cpu.blocks?.stats.wasm ?? 0 };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href || /(^|\/)bench-wasm-loop\.ts$/.test(process.argv[1] ?? '')) {
  const seconds = Number(process.argv[2] ?? 3), rounds = Number(process.argv[3] ?? 3);
  for (let r = 0; r < rounds; r++) {
    for (const wasm of [false, true]) {
      const m = run(seconds, wasm);
      process.stdout.write(`${wasm ? 'wasm' : 'js  '}: ${m.mips.toFixed(1)} MIPS${wasm ? ` (${m.loops} loops in WebAssembly)` : ''}\n`);
    }
  }
}
