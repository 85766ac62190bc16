/**
 * One CLI boot for `npm run bench`, in a process of its own: a fresh V8, as `npx trapdoor`
 * has and as each worker has (in one process, a second boot would reuse the first one's
 * compiled translated blocks from V8's cache and look faster, and a boot after the CPU
 * benchmark would run on code V8 had specialised for the benchmark's flat machine).
 * `node bin/run.mjs src/cli/bench-cli-boot.ts IMAGE [--wall-clock]` prints the CliBootRun
 * as JSON (null when the marker was not reached).
 */
import { benchCliBoot, imageInputs } from './bench-worker.ts';

const { inputs, marker } = imageInputs(process.argv[2] ?? 'tiny-linux');
const deterministic = !process.argv.includes('--wall-clock');
process.stdout.write(`${JSON.stringify(benchCliBoot({ ...inputs, deterministic }, marker))}\n`);
