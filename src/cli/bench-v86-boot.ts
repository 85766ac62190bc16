/**
 * One v86 boot for `npm run bench`, in a process of its own (as each Trapdoor boot has one):
 * `node bin/run.mjs src/cli/bench-v86-boot.ts IMAGE` prints the V86BootRun as JSON (null
 * when the marker was not reached), then exits (v86 may leave timers behind).
 */
import { v86Boot } from './bench-v86.ts';

const r = await v86Boot(process.argv[2] ?? 'tiny-linux');
process.stdout.write(`${JSON.stringify(r)}\n`, () => process.exit(0));
