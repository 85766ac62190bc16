/**
 * The fork/exec loop of bench-fork.ts measured deterministically, per second on a CPU:
 * tiny-linux in deterministic mode (the guest's clock follows the instruction count, so a
 * pass is always the same work), booted to its marker, the loop typed, then `passes`
 * passes timed by this thread's scheduler time (thread-time.ts), which other processes on
 * a shared machine do not dilute. For before/after comparisons of the CPU code (issue 25):
 * `node bin/run.mjs src/cli/bench-fork-cpu.ts [PASSES] [IMAGE] [--no-blocks] [--profile=FILE]`
 * prints the passes per CPU-second, the boot's CPU time and the instructions per pass, as
 * JSON; --profile writes a V8 CPU profile (.cpuprofile, for Chromium's DevTools) of the
 * passes alone, without the boot.
 */
import * as fs from 'node:fs';
import { Session } from 'node:inspector';
import { createMachine } from '../emulator/machine/machine.ts';
import { buildMachineConfig } from '../emulator/machine/image-config.ts';
import { imageInputs } from './bench-worker.ts';
import { FORK_LOOP, PassCounter } from './bench-fork.ts';
import { ownThreadTime } from './thread-time.ts';

export interface ForkCpuRun {
  /** CPU seconds of this thread from machine creation to the marker. */
  bootCpu: number;
  passes: number;
  /** Passes per second of this thread on a CPU. */
  perCpuSecond: number;
  instructionsPerPass: number;
  /** Share of the loop's instructions run in translated blocks. */
  inBlocks: number;
}

/** Runs `fn` under V8's CPU profiler and writes the profile to `file`. */
function profiled<T>(file: string, fn: () => T): T {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.start');
  const result = fn();
  session.post('Profiler.stop', (err, r) => {
    if (!err) fs.writeFileSync(file, JSON.stringify(r.profile));
    session.disconnect();
  });
  return result;
}

export function forkLoopOnCpu(image: string, passes: number, blockCache = true, profile?: string): ForkCpuRun | null {
  const { inputs, marker } = imageInputs(image);
  let tail = '';
  const counter = new PassCounter();
  const cpuNow = () => ownThreadTime()?.onCpu ?? process.cpuUsage().user / 1e6;
  const c0 = cpuNow();
  const m = createMachine({ ...buildMachineConfig({ ...inputs, deterministic: true }), blockCache }, {
    serial: (i, b) => {
      if (i !== 0) return;
      tail = (tail + String.fromCharCode(b)).slice(-256);
      counter.byte(b);
    },
  });
  const budget = 4e9; // instructions: far beyond a boot and the passes asked for
  while (!tail.includes(marker) && m.cpu.instructionCount < budget && m.stopped === null) m.run(1_000_000);
  if (!tail.includes(marker)) return null;
  const bootCpu = cpuNow() - c0;
  const input = Array.from(FORK_LOOP, (ch) => ch.charCodeAt(0));
  while (counter.last < 3 && m.cpu.instructionCount < budget && m.stopped === null) {
    if (input.length) input.splice(0, m.serialInput(input));
    m.run(100_000);
  }
  if (counter.last < 3) return null;
  const from = counter.last;
  const i0 = m.cpu.instructionCount, b0 = m.cpu.blocks?.stats.executed ?? 0, t0 = cpuNow();
  const loop = () => {
    while (counter.last < from + passes && m.cpu.instructionCount < budget && m.stopped === null) m.run(100_000);
  };
  if (profile) profiled(profile, loop);
  else loop();
  const t1 = cpuNow();
  const done = counter.last - from;
  const n = m.cpu.instructionCount - i0;
  return {
    bootCpu, passes: done, perCpuSecond: done / (t1 - t0), instructionsPerPass: Math.round(n / done),
    inBlocks: ((m.cpu.blocks?.stats.executed ?? 0) - b0) / n,
  };
}

const args = process.argv.slice(2);
const positional = args.filter((a) => !a.startsWith('--'));
const profile = args.find((a) => a.startsWith('--profile='))?.slice('--profile='.length);
const r = forkLoopOnCpu(positional[1] ?? 'tiny-linux', Number(positional[0] ?? 100), !args.includes('--no-blocks'), profile);
process.stdout.write(`${JSON.stringify(r)}\n`, () => process.exit(0));
