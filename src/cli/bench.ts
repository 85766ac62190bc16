/**
 * `npm run bench`: the numbers the project tracks. CPU MIPS on a CPU-bound guest, then
 * the time tiny-linux takes to its ready marker in deterministic mode (set
 * TRAPDOOR_BENCH_BOOT=0 to skip the boot), then the same boot in the CLI against the
 * page's worker code in a Node worker thread and in Chromium (bench-worker.ts; set
 * TRAPDOOR_BENCH_WORKER=0 to skip, TRAPDOOR_BENCH_BROWSER=0 to skip Chromium only).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { benchCpu } from './bench-cpu.ts';
import { createMachine } from '../emulator/machine/machine.ts';
import { PUBLISH_DIR } from '../../images/paths.ts';
import { INITRD } from '../../images/tiny-linux/recipe.ts';

const seconds = Number(process.env.TRAPDOOR_BENCH_SECONDS ?? 5);
const cpu = benchCpu(seconds);
process.stdout.write(`cpu: ${cpu.mips.toFixed(1)} MIPS (${cpu.instructions} instructions in ${cpu.seconds.toFixed(2)} s; flat protected mode with paging, interpreter)\n`);

if (process.env.TRAPDOOR_BENCH_BOOT !== '0') {
  const dir = path.join(PUBLISH_DIR, 'tiny-linux');
  const read = (f: string) => new Uint8Array(fs.readFileSync(f));
  if (!fs.existsSync(path.join(dir, 'bzImage'))) {
    process.stdout.write("boot: skipped, tiny-linux is not built (npm run images)\n");
  } else {
    let serial = '';
    const m = createMachine({
      memoryMiB: 128, bios: read(path.join(PUBLISH_DIR, 'firmware', 'bios.bin')), kernel: read(path.join(dir, 'bzImage')),
      initrd: read(path.join(dir, INITRD)), append: 'console=ttyS0', boot: 'c', deterministic: true,
    }, { serial: (_i, b) => { serial += String.fromCharCode(b); } });
    const start = performance.now();
    while (!serial.includes('TRAPDOOR GUEST READY') && performance.now() - start < 900_000 && !m.stopped) m.run(1_000_000);
    const wall = (performance.now() - start) / 1000;
    const ok = serial.includes('TRAPDOOR GUEST READY');
    process.stdout.write(`boot: tiny-linux ${ok ? 'reached its marker' : 'did NOT reach its marker'} in ${wall.toFixed(1)} s wall, ${(m.bus.clock.now() / 1e9).toFixed(2)} s virtual, ${(m.cpu.instructionCount / 1e6).toFixed(0)} M instructions (${(m.cpu.instructionCount / wall / 1e6).toFixed(1)} MIPS; deterministic)\n`);
  }
}

if (process.env.TRAPDOOR_BENCH_WORKER !== '0') {
  // Worker against CLI on the image as the manifest boots it (with the VGA BIOS and both
  // consoles). TRAPDOOR_BENCH_REPEAT=N runs the three N times, interleaved, and reports
  // medians: on a shared machine one run says little.
  const { imageInputs, benchCliBoot, benchNodeWorker, benchChromium } = await import('./bench-worker.ts');
  type Run = { instructions: number; seconds: number; mips: number };
  const image = 'tiny-linux';
  const repeat = Math.max(1, Number(process.env.TRAPDOOR_BENCH_REPEAT ?? 1));
  if (!fs.existsSync(path.join(PUBLISH_DIR, 'manifest.json'))) {
    process.stdout.write('worker: skipped, no images (npm run images)\n');
  } else {
    const { inputs, marker } = imageInputs(image);
    const runs: Record<'cli' | 'node' | 'chromium' | 'page', Run[]> = { cli: [], node: [], chromium: [], page: [] };
    let skipped = '';
    for (let i = 0; i < repeat; i++) {
      const cli = benchCliBoot(inputs, marker);
      if (cli) runs.cli.push(cli);
      const node = await benchNodeWorker(inputs, marker);
      if (node) runs.node.push(node);
    }
    if (process.env.TRAPDOOR_BENCH_BROWSER !== '0') {
      const browser = await benchChromium(image, marker, repeat);
      if (typeof browser === 'string') skipped = browser;
      else {
        runs.chromium = browser.worker;
        runs.page = browser.page;
      }
    }
    const median = (rs: Run[]) => [...rs].sort((a, b) => a.mips - b.mips)[Math.floor(rs.length / 2)];
    const base = runs.cli.length ? median(runs.cli).mips : undefined;
    const line = (what: string, rs: Run[]) => {
      if (rs.length === 0) return process.stdout.write(`worker: ${what}: did NOT reach the marker\n`);
      const r = median(rs);
      const all = rs.length > 1 ? ` [${rs.map((x) => x.mips.toFixed(1)).join(', ')}]` : '';
      process.stdout.write(`worker: ${what}: ${(r.instructions / 1e6).toFixed(0)} M instructions in ${r.seconds.toFixed(1)} s, ${r.mips.toFixed(1)} MIPS${all}${base && what !== 'cli' ? ` = ${((r.mips / base) * 100).toFixed(0)}% of the CLI` : ''}\n`);
    };
    process.stdout.write(`worker: ${image} to its marker, deterministic, ${repeat > 1 ? `median of ${repeat}` : 'one run each'}\n`);
    line('cli', runs.cli);
    line('node-worker (MachineHost in a worker thread)', runs.node);
    if (skipped) process.stdout.write(`worker: chromium: skipped, ${skipped}\n`);
    else if (process.env.TRAPDOOR_BENCH_BROWSER !== '0') {
      line('chromium worker (the page\'s worker module from a blank page)', runs.chromium);
      line('chromium page (the whole page: screen, serial console, devices panel drawn)', runs.page);
    }
  }
}
