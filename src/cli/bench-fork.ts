/**
 * Process creation, measured (issue 25): tiny-linux booted to its marker, then a shell
 * loop that forks and execs on every pass is typed on the serial console, and its passes
 * are counted over a fixed interval of the guest's own clock, in Trapdoor and in v86.
 * Both run on the wall clock (v86 has no other), so the guest's interval is also the
 * host's; the figure is passes per second. The cost is in page faults, copy-on-write,
 * TLB flushes and cold code (exec), not in hot loops.
 *
 * Each measurement runs in a fresh process (bench-fork-run.ts).
 */
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createMachine } from '../emulator/machine/machine.ts';
import { buildMachineConfig } from '../emulator/machine/image-config.ts';
import { PUBLISH_DIR } from '../../images/paths.ts';
import { imageInputs } from './bench-worker.ts';

/** The loop the issue measured: every pass forks and execs `cat`. */
export const FORK_LOOP = 'i=0; while true; do i=$((i+1)); echo line $i; cat /proc/interrupts >/dev/null; done\n';

export interface ForkLoopRun {
  /** Passes completed within the interval. */
  passes: number;
  /** The interval, seconds of the guest's clock (the host's, on the wall clock). */
  seconds: number;
  perSecond: number;
}

/** Counts the loop's passes from the console output: the highest `line N` seen so far. */
export class PassCounter {
  private tail = '';
  last = 0;

  byte(b: number): void {
    if (b === 10 || b === 13) {
      const m = /^line (\d+)$/.exec(this.tail.trim());
      if (m) this.last = Math.max(this.last, Number(m[1]));
      this.tail = '';
    } else if (this.tail.length < 80) this.tail += String.fromCharCode(b);
  }
}

const LIMIT_MS = 600_000;

/** The loop in Trapdoor (this process), after `marker`; passes over `seconds` of the guest's clock. */
export function trapdoorForkLoop(image: string, seconds: number): ForkLoopRun | null {
  const { inputs, marker } = imageInputs(image);
  let tail = '';
  const counter = new PassCounter();
  const m = createMachine(buildMachineConfig({ ...inputs, deterministic: false }), {
    serial: (i, b) => {
      if (i !== 0) return;
      tail = (tail + String.fromCharCode(b)).slice(-256);
      counter.byte(b);
    },
  });
  const start = performance.now();
  const timedOut = () => performance.now() - start > LIMIT_MS || m.stopped !== null;
  while (!tail.includes(marker) && !timedOut()) m.run(1_000_000);
  if (!tail.includes(marker)) return null;
  const input = Array.from(FORK_LOOP, (ch) => ch.charCodeAt(0));
  while (counter.last === 0 && !timedOut()) {
    if (input.length) input.splice(0, m.serialInput(input));
    m.run(100_000);
  }
  if (counter.last === 0) return null;
  const from = counter.last, t0 = m.bus.clock.now();
  while (m.bus.clock.now() - t0 < seconds * 1e9 && !timedOut()) m.run(100_000);
  const elapsed = (m.bus.clock.now() - t0) / 1e9;
  return { passes: counter.last - from, seconds: elapsed, perSecond: (counter.last - from) / elapsed };
}

/** The loop in v86 (this process), the same way. */
export async function v86ForkLoop(image: string, seconds: number): Promise<ForkLoopRun | null> {
  const { startV86 } = await import('./bench-v86.ts');
  const { inputs, marker } = imageInputs(image);
  const counter = new PassCounter();
  let tail = '';
  const { emulator } = await startV86(inputs, (b) => {
    tail = (tail + String.fromCharCode(b)).slice(-256);
    counter.byte(b);
  });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  try {
    const start = performance.now();
    while (!tail.includes(marker) && performance.now() - start < LIMIT_MS) await sleep(20);
    if (!tail.includes(marker)) return null;
    emulator.serial0_send(FORK_LOOP);
    while (counter.last === 0 && performance.now() - start < LIMIT_MS) await sleep(20);
    if (counter.last === 0) return null;
    const from = counter.last, t0 = performance.now();
    await sleep(seconds * 1000);
    const elapsed = (performance.now() - t0) / 1000;
    return { passes: counter.last - from, seconds: elapsed, perSecond: (counter.last - from) / elapsed };
  } finally {
    await emulator.destroy();
  }
}

/** One measurement in a fresh process (bench-fork-run.ts). */
export function benchForkLoop(image: string, emulator: 'trapdoor' | 'v86', seconds: number): ForkLoopRun | null {
  const root = path.resolve(PUBLISH_DIR, '..', '..');
  const args = [path.join(root, 'bin', 'run.mjs'), 'src/cli/bench-fork-run.ts', image, emulator, String(seconds)];
  const out = execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.trim().split('\n').pop() ?? 'null') as ForkLoopRun | null;
}
