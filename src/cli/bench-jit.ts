/**
 * The translator's own measuring tool (issue 25), for before/after pairs of a change:
 * `node bin/run.mjs src/cli/bench-jit.ts cpu [SECONDS]` runs `npm run bench`'s CPU
 * workload with translated blocks; `node bin/run.mjs src/cli/bench-jit.ts IMAGE` boots an
 * image to its marker (deterministic, as bench-cli-boot.ts does). Each prints one line of
 * JSON: the figures per second on a CPU (this thread's scheduler time, which the other
 * sessions sharing the machine's cores do not dilute) and the block cache's counts (block
 * entries, of those entered through a chain link, instructions retired in blocks). Run it
 * from two checkouts alternately (A B A B) to compare them: one process per run, so
 * neither inherits the other's compiled code.
 */
import { benchCpu } from './bench-cpu.ts';
import { imageInputs } from './bench-worker.ts';
import { createMachine } from '../emulator/machine/machine.ts';
import { buildMachineConfig } from '../emulator/machine/image-config.ts';
import { ownThreadMark, ownThreadSince } from './thread-time.ts';

const what = process.argv[2] ?? 'cpu';
if (what === 'cpu') {
  const r = benchCpu(Number(process.argv[3] ?? 5), true);
  process.stdout.write(`${JSON.stringify({ what, cpuMips: r.cpuMips, mips: r.mips, instructions: r.instructions })}\n`);
} else {
  const { inputs, marker } = imageInputs(what);
  let tail = '';
  const mark = ownThreadMark();
  const m = createMachine(buildMachineConfig(inputs), { serial: (i, b) => { if (i === 0) tail = (tail + String.fromCharCode(b)).slice(-256); } });
  while (!tail.includes(marker) && !m.stopped) m.run(1_000_000);
  if (!tail.includes(marker)) throw new Error(`${what} stopped before its marker: ${m.stopped ?? ''}`);
  const stats = m.cpu.blocks?.stats;
  process.stdout.write(`${JSON.stringify({ what, onCpu: ownThreadSince(mark)?.onCpu ?? null, instructions: m.cpu.instructionCount, rss: process.memoryUsage().rss, blocks: stats ?? null })}\n`);
}
