/**
 * `npm run bench`: the numbers the project tracks. CPU MIPS on a CPU-bound guest, then
 * the time tiny-linux takes to its ready marker in deterministic mode (set
 * TRAPDOOR_BENCH_BOOT=0 to skip the boot).
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
  // Worker against CLI on the image as the manifest boots it (with the VGA BIOS and both consoles).
  const { imageInputs, benchCliBoot, benchNodeWorker, benchChromium } = await import('./bench-worker.ts');
  const image = 'tiny-linux';
  if (!fs.existsSync(path.join(PUBLISH_DIR, 'manifest.json'))) {
    process.stdout.write('worker: skipped, no images (npm run images)\n');
  } else {
    const { inputs, marker } = imageInputs(image);
    const line = (what: string, r: { instructions: number; seconds: number; mips: number } | null, base?: number) =>
      process.stdout.write(r
        ? `worker: ${what}: ${(r.instructions / 1e6).toFixed(0)} M instructions in ${r.seconds.toFixed(1)} s, ${r.mips.toFixed(1)} MIPS${base ? ` (${((r.mips / base) * 100).toFixed(0)}% of the CLI)` : ''}\n`
        : `worker: ${what}: did NOT reach the marker\n`);
    const cli = benchCliBoot(inputs, marker);
    line(`${image} to its marker, deterministic; cli (main thread, esbuild bundle)`, cli);
    line('node-worker (MachineHost in a worker thread, esbuild bundle)', await benchNodeWorker(inputs, marker), cli?.mips);
    if (process.env.TRAPDOOR_BENCH_BROWSER !== '0') {
      const browser = await benchChromium(image, marker);
      if (typeof browser === 'string') process.stdout.write(`worker: chromium: skipped, ${browser}\n`);
      else line('chromium (the page\'s module worker, vite build, screen rendered)', browser, cli?.mips);
    }
  }
}
