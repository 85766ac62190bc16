/**
 * One fork/exec loop measurement for `npm run bench` (bench-fork.ts), in a process of its
 * own: `node bin/run.mjs src/cli/bench-fork-run.ts IMAGE trapdoor|v86 [SECONDS]` prints a
 * ForkLoopRun as JSON (null when the marker or the first pass never came), then exits.
 */
import { trapdoorForkLoop, v86ForkLoop } from './bench-fork.ts';

const [image = 'tiny-linux', which = 'trapdoor', seconds = '10'] = process.argv.slice(2);
const r = which === 'v86' ? await v86ForkLoop(image, Number(seconds)) : trapdoorForkLoop(image, Number(seconds));
process.stdout.write(`${JSON.stringify(r)}\n`, () => process.exit(0));
