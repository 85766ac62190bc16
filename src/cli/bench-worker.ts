/**
 * Worker against CLI: the same image booted to its ready marker in deterministic mode
 * (so each run executes the same guest code), three ways:
 *
 *  - cli: createMachine and run() on the main thread of a fresh process, as `npx trapdoor`
 *    does (esbuild bundle; bench-cli-boot.ts);
 *  - node-worker: MachineHost (the page's worker code) in a Node worker thread, driven
 *    through the worker protocol (esbuild bundle of src/worker/node-worker.ts): measures
 *    what the host adds (slices yielding to the event loop, batched serial messages);
 *  - chromium: the page itself (`vite build`, `vite preview`) in Debian's Chromium through
 *    Playwright, its module worker on V8 in the browser, rendering frames to a visible page.
 *
 * MIPS = instructions / host seconds while running, each from its own run; the worker
 * runs report the numbers of the moment they paused on the marker (BootRequest.pauseOn).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { bundle } from '../../bin/bundle.mjs';
import { createMachine } from '../emulator/machine/machine.ts';
import { buildMachineConfig, firmwarePaths, planImage, MEDIUM_ROLES, type MachineInputs } from '../emulator/machine/image-config.ts';
import { readManifest } from '../../images/read-manifest.ts';
import { findImage } from '../../images/manifest.ts';
import { PUBLISH_DIR } from '../../images/paths.ts';
import type { BootRequest, FromWorker, MachineStatus } from '../worker/protocol.ts';
import { ownThreadMark, ownThreadSince, type GuestThreadTime } from './thread-time.ts';

export interface BootRun {
  instructions: number;
  seconds: number;
  mips: number;
}

/** A CLI boot as `npm run bench`'s boot lines report it. */
export interface CliBootRun extends BootRun {
  virtualSeconds: number;
  /** Share of the instructions retired in translated blocks, and how many blocks V8 compiled. */
  inBlocks: number;
  compiledBlocks: number;
  /** The run's thread on a CPU and waiting for one, from machine creation to the marker (Linux; else null). */
  thread: GuestThreadTime | null;
  /** The process's resident set size at the marker, bytes. */
  rss: number;
  /** CPU time of the whole process (every thread: V8's compilers, the collector) from machine creation to the marker, seconds. */
  cpuSeconds: number;
}

/** CPU seconds of this process (all threads, user and system) since `mark`. */
export function cpuSecondsSince(mark: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(mark);
  return (u.user + u.system) / 1e6;
}

const run = (instructions: number, seconds: number): BootRun => ({ instructions, seconds, mips: instructions / seconds / 1e6 });

/** The image's files and settings as MachineInputs (deterministic), and its ready marker. */
export function imageInputs(name: string): { inputs: MachineInputs; marker: string } {
  const manifest = readManifest(PUBLISH_DIR);
  const plan = planImage(manifest, name);
  const fw = firmwarePaths(manifest);
  const read = (rel: string) => new Uint8Array(fs.readFileSync(path.join(PUBLISH_DIR, rel)));
  if (!fw.bios) throw new Error('the firmware image has no bios.bin');
  const inputs: MachineInputs = {
    bios: read(fw.bios), vgaBios: fw.vgaBios ? read(fw.vgaBios) : undefined,
    memoryMiB: plan.memoryMiB, append: plan.append, boot: plan.boot, deterministic: true,
  };
  for (const role of MEDIUM_ROLES) {
    const rel = plan.files[role];
    if (rel) inputs[role] = read(rel);
  }
  return { inputs, marker: findImage(manifest, name)?.readyMarker || 'TRAPDOOR GUEST READY' };
}

export function benchCliBoot(inputs: MachineInputs, marker: string, limitMs = 600_000): CliBootRun | null {
  let tail = '';
  const mark = ownThreadMark();
  const cpuMark = process.cpuUsage();
  const m = createMachine(buildMachineConfig(inputs), { serial: (i, b) => { if (i === 0) tail = (tail + String.fromCharCode(b)).slice(-256); } });
  const start = performance.now();
  while (!tail.includes(marker) && performance.now() - start < limitMs && !m.stopped) m.run(1_000_000);
  if (!tail.includes(marker)) return null;
  const blocks = m.cpu.blocks?.stats;
  const thread = ownThreadSince(mark);
  return {
    ...run(m.cpu.instructionCount, (performance.now() - start) / 1000),
    virtualSeconds: m.bus.clock.now() / 1e9,
    inBlocks: blocks ? blocks.executed / m.cpu.instructionCount : 0,
    compiledBlocks: blocks?.compiled ?? 0,
    thread,
    rss: process.memoryUsage().rss,
    cpuSeconds: cpuSecondsSince(cpuMark),
  };
}

/**
 * benchCliBoot in a fresh Node process (bench-cli-boot.ts), as `npx trapdoor` runs:
 * deterministic, or on the wall clock.
 */
export function benchCliProcess(image: string, deterministic = true): CliBootRun | null {
  const root = path.resolve(PUBLISH_DIR, '..', '..');
  const args = [path.join(root, 'bin', 'run.mjs'), 'src/cli/bench-cli-boot.ts', image, ...(deterministic ? [] : ['--wall-clock'])];
  const out = execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.trim().split('\n').pop() ?? 'null') as CliBootRun | null;
}

/** `atMarker` is called when the guest has reached the marker, while the worker still runs (to measure its thread). */
export async function benchNodeWorker(inputs: MachineInputs, marker: string, atMarker?: () => void, limitMs = 600_000): Promise<BootRun | null> {
  const url = await bundle('src/worker/node-worker.ts');
  const worker = new Worker(new URL(url));
  const file = (name: string, b: Uint8Array | undefined) => (b ? { name, bytes: b.slice().buffer } : undefined);
  const request: BootRequest = {
    label: 'bench', memoryMiB: inputs.memoryMiB, bios: file('bios.bin', inputs.bios)!, vgaBios: file('vgabios', inputs.vgaBios),
    kernel: file('kernel', inputs.kernel), initrd: file('initrd', inputs.initrd), cdrom: file('cdrom', inputs.cdrom), hda: file('hda', inputs.hda),
    fda: file('fda', inputs.fda), append: inputs.append, boot: inputs.boot, deterministic: true, pauseOn: marker,
  };
  try {
    return await new Promise<BootRun | null>((resolve, reject) => {
      const timer = setTimeout(() => resolve(null), limitMs);
      worker.on('error', reject);
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'error') reject(new Error(m.message));
        if (m.type === 'status' && m.status.phase === 'paused') {
          clearTimeout(timer);
          atMarker?.();
          resolve(run(m.status.instructions, m.status.realSeconds));
        }
      });
      worker.postMessage({ type: 'boot', request });
    });
  } finally {
    await worker.terminate();
  }
}

/** Chromium with the built page served, ready to boot an image either way (see openChromium). */
export interface ChromiumBench {
  /**
   * The whole page as a user has it: the screen drawn, the serial console and the devices
   * panel live. `atMarker`, as for benchNodeWorker, runs before the page is closed.
   */
  page(atMarker?: () => void): Promise<BootRun>;
  /** The page's worker module started from a blank page of the same origin: only the machine runs. */
  worker(atMarker?: () => void): Promise<BootRun>;
  close(): Promise<void>;
  /** The browser's version as Chromium reports it (figures from two builds differ: see bench.ts). */
  readonly version: string;
}

/**
 * The page's worker in Chromium, two ways: `page`, the whole page as a user has it, and
 * `worker`, the same worker module from a blank page (the figure to hold against the
 * Node worker). Needs Debian's chromium (or TRAPDOOR_CHROMIUM) and builds the page first;
 * returns why not when it cannot run. One browser serves every run, so runs of the three
 * hosts can be interleaved (a shared machine's slow minutes then hit all of them).
 */
export async function openChromium(image: string, marker: string, limitMs = 600_000): Promise<ChromiumBench | string> {
  const executablePath = process.env.TRAPDOOR_CHROMIUM ?? '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) return `no Chromium at ${executablePath} (set TRAPDOOR_CHROMIUM)`;
  const root = path.resolve(PUBLISH_DIR, '..', '..');
  execFileSync('npx', ['vite', 'build', '--logLevel', 'error'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const workerFile = fs.readdirSync(path.join(root, 'dist', 'assets')).find((f) => /^machine-worker-.*\.js$/.test(f));
  if (!workerFile) return 'vite build made no machine-worker bundle';
  const port = 4300 + (process.pid % 500);
  const preview = spawn('npx', ['vite', 'preview', '--strictPort', '--port', String(port)], { cwd: root, stdio: 'ignore', detached: true });
  const { chromium } = await import('@playwright/test');
  // For looking into V8 in the worker: TRAPDOOR_BENCH_JS_FLAGS passes flags to Chromium's V8
  // (`--trace-deopt --trace-generalization` found the costs that Post's and
  // settleWideFields's comments describe); V8 prints its traces on Chromium's stdout,
  // which Playwright writes to a file with DEBUG=pw:browser DEBUG_FILE=path.
  const jsFlags = process.env.TRAPDOOR_BENCH_JS_FLAGS;
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu', ...(jsFlags ? [`--js-flags=${jsFlags}`] : [])] });
  const origin = `http://127.0.0.1:${port}`;
  const open = async (url: string) => {
    const page = await browser.newPage();
    for (let i = 0; ; i++) {
      try {
        await page.goto(url);
        return page;
      } catch (e) {
        if (i > 50) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };
  const manifest = readManifest(PUBLISH_DIR);
  const plan = planImage(manifest, image);
  const fw = firmwarePaths(manifest);
  return {
    version: browser.version(),
    async page(atMarker) {
      const page = await open(`${origin}/?boot=${encodeURIComponent(image)}&deterministic=1&pauseOn=${encodeURIComponent(marker)}`);
      try {
        // Polled twice a second, not on every animation frame as a locator wait would: the
        // wait must not add work to the page whose speed it measures.
        await page.waitForFunction(() => document.querySelector('[data-testid="phase"]')?.textContent?.includes('paused') === true, null, { polling: 500, timeout: limitMs });
        atMarker?.();
        const speed = page.getByTestId('speed');
        return run(Number(await speed.getAttribute('data-instructions')), Number(await speed.getAttribute('data-real-seconds')));
      } finally {
        await page.close();
      }
    },
    async worker(atMarker) {
      const blank = await open(`${origin}/images/manifest.json`);
      try {
        const status = await blank.evaluate(async ({ workerUrl, plan, fw, marker }) => {
          const get = async (rel: string) => ({ name: rel, bytes: await (await fetch(`/images/${rel}`)).arrayBuffer() });
          const request: Record<string, unknown> = { label: 'bench', memoryMiB: plan.memoryMiB, append: plan.append, boot: plan.boot, deterministic: true, pauseOn: marker };
          request.bios = await get(fw.bios!);
          if (fw.vgaBios) request.vgaBios = await get(fw.vgaBios);
          for (const [role, rel] of Object.entries(plan.files)) request[role] = await get(rel as string);
          const w = new window.Worker(workerUrl, { type: 'module' });
          return new Promise<MachineStatus>((resolve, reject) => {
            w.onmessage = (e: MessageEvent<FromWorker>) => {
              if (e.data.type === 'error') reject(new Error(e.data.message));
              if (e.data.type === 'status' && e.data.status.phase === 'paused') resolve(e.data.status);
            };
            w.postMessage({ type: 'boot', request });
          });
        }, { workerUrl: `/assets/${workerFile}`, plan, fw, marker });
        atMarker?.();
        return run(status.instructions, status.realSeconds);
      } finally {
        await blank.close();
      }
    },
    async close() {
      await browser.close();
      // The preview server runs in its own process group (npx, then vite): end the group.
      if (preview.pid) {
        try {
          process.kill(-preview.pid);
        } catch {
          // already gone
        }
      }
    },
  };
}
