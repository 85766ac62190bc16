/**
 * One CLI boot for `npm run bench`'s worker comparison, in a process of its own: a fresh
 * V8, as `npx trapdoor` has and as each worker has (in one process, a second boot would
 * reuse the first one's compiled translated blocks from V8's cache and look faster).
 * `node bin/run.mjs src/cli/bench-cli-boot.ts IMAGE` prints the BootRun as JSON (null when
 * the marker was not reached).
 */
import { benchCliBoot, imageInputs } from './bench-worker.ts';

const { inputs, marker } = imageInputs(process.argv[2] ?? 'tiny-linux');
process.stdout.write(`${JSON.stringify(benchCliBoot(inputs, marker))}\n`);
