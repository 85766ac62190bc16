/**
 * The measuring stick of issue 25: v86 (the `v86` npm package, a devDependency used only
 * here) booting the same files as Trapdoor — Debian's SeaBIOS and std VGA BIOS from the
 * firmware image, the image's kernel, initramfs and command line, the same memory size —
 * to the same serial marker, in a fresh Node process of its own as each Trapdoor boot has
 * (bench-v86-boot.ts). v86 runs its guest on the host's clock (idle time really waited),
 * as `npx trapdoor` does by default, so the comparison pairs it with Trapdoor's
 * wall-clock boot.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PUBLISH_DIR } from '../../images/paths.ts';
import type { V86 } from 'v86';
import type { MachineInputs } from '../emulator/machine/image-config.ts';
import { cpuSecondsSince, imageInputs } from './bench-worker.ts';

export interface V86BootRun {
  /** Wall seconds from `new V86(...)` to the marker on serial port 0. */
  seconds: number;
  /** v86's own instruction counter at the marker. */
  instructions: number;
  mips: number;
  /** The process's resident set size at the marker, bytes. */
  rss: number;
  /** CPU time of the whole process (every thread: v86's WebAssembly compiles among them) from `new V86` to the marker, seconds. */
  cpuSeconds: number;
}

/** The installed v86 package's version (from its package.json), or null when it is not installed. */
export function v86Version(): string | null {
  try {
    const main = fileURLToPath(import.meta.resolve('v86'));
    const pkg = JSON.parse(fs.readFileSync(path.join(path.dirname(main), '..', 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return null;
  }
}

/** An ArrayBuffer holding exactly these bytes (v86 takes buffers, not views). */
function bufferOf(b: Uint8Array): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

/**
 * A v86 machine started on the image's files (as imageInputs gives them), every byte
 * of its first serial port handed to `serial`.
 */
export async function startV86(inputs: MachineInputs, serial: (byte: number) => void): Promise<{ emulator: V86 }> {
  if (!inputs.kernel) throw new Error('v86 is given kernel-and-initramfs images only');
  const { V86: Emulator } = await import('v86');
  const wasmPath = path.join(path.dirname(fileURLToPath(import.meta.resolve('v86'))), 'v86.wasm');
  const emulator = new Emulator({
    wasm_path: wasmPath,
    bios: { buffer: bufferOf(inputs.bios) },
    vga_bios: inputs.vgaBios ? { buffer: bufferOf(inputs.vgaBios) } : undefined,
    bzimage: { buffer: bufferOf(inputs.kernel) },
    initrd: inputs.initrd ? { buffer: bufferOf(inputs.initrd) } : undefined,
    cmdline: inputs.append ?? '',
    memory_size: (inputs.memoryMiB ?? 128) * 1024 * 1024,
    autostart: true,
    disable_speaker: true,
  });
  emulator.add_listener('serial0-output-byte', serial);
  return { emulator };
}

/**
 * Boot `image` in v86 in this process, to the image's ready marker; null when the marker
 * did not come within `limitMs` or the image is not a kernel-and-initramfs boot v86 can take.
 */
export async function v86Boot(image: string, limitMs = 600_000): Promise<V86BootRun | null> {
  const { inputs, marker } = imageInputs(image);
  if (!inputs.kernel) return null;
  let tail = '';
  let reached: (() => void) | null = null;
  await import('v86'); // loaded before the clock starts, as Trapdoor's modules are
  const start = performance.now();
  const cpuMark = process.cpuUsage();
  const { emulator } = await startV86(inputs, (byte) => {
    tail = (tail + String.fromCharCode(byte)).slice(-256);
    if (tail.includes(marker)) reached?.();
  });
  try {
    return await new Promise<V86BootRun | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), limitMs);
      reached = () => {
        reached = null;
        clearTimeout(timer);
        const seconds = (performance.now() - start) / 1000;
        const instructions = emulator.get_instruction_counter();
        resolve({ seconds, instructions, mips: instructions / seconds / 1e6, rss: process.memoryUsage().rss, cpuSeconds: cpuSecondsSince(cpuMark) });
      };
    });
  } finally {
    await emulator.destroy();
  }
}

/** v86Boot in a fresh Node process (bench-v86-boot.ts); null when it did not reach the marker. */
export function benchV86Process(image: string): V86BootRun | null {
  const root = path.resolve(PUBLISH_DIR, '..', '..');
  const args = [path.join(root, 'bin', 'run.mjs'), 'src/cli/bench-v86-boot.ts', image];
  const out = execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.trim().split('\n').pop() ?? 'null') as V86BootRun | null;
}
