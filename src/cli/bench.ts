/**
 * `npm run bench`: the numbers the project tracks. For now the CPU's MIPS on a CPU-bound
 * guest; boot times to the ready marker join once the PC boots (issue 4).
 */
import { benchCpu } from './bench-cpu.ts';

const seconds = Number(process.env.TRAPDOOR_BENCH_SECONDS ?? 5);
const cpu = benchCpu(seconds);
process.stdout.write(`cpu: ${cpu.mips.toFixed(1)} MIPS (${cpu.instructions} instructions in ${cpu.seconds.toFixed(2)} s; flat protected mode with paging, interpreter)\n`);
