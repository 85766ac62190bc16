/**
 * `trapdoor`: the PC headless in Node. Parses QEMU-style flags, turns them into a
 * MachineConfig (files read here, at the edge: the emulator never touches the file
 * system), runs the machine and the --until/--send script, and maps every failure a
 * user can cause to one line and exit status 2.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { helpText, parseArgs, UsageError, type CliOptions } from './args.ts';
import type { MachineConfig } from '../emulator/machine/config.ts';
import { MemoryBlockDevice } from '../emulator/devices/block-device.ts';
import { KernelImageError } from '../emulator/firmware/linux-boot.ts';
import { findImage, type ImageManifest } from '../../images/manifest.ts';
import { readManifest } from '../../images/read-manifest.ts';
import { PUBLISH_DIR } from '../../images/paths.ts';

const IMAGES_DIR = PUBLISH_DIR;

const VERSION = '0.1.0';

function readFile(flag: string, file: string): Uint8Array {
  try {
    return new Uint8Array(fs.readFileSync(file));
  } catch (e) {
    throw new UsageError(`--${flag}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function loadManifest(why: string): ImageManifest {
  try {
    return readManifest(IMAGES_DIR);
  } catch (e) {
    throw new UsageError(`${why}: ${(e as Error).message} (run 'npm run images' first)`);
  }
}

/** Resolve flags (and --image) into files on disk, then into a MachineConfig. */
export function resolveConfig(o: CliOptions): MachineConfig {
  let manifest: ImageManifest | undefined;
  const fromImage: Partial<Record<'kernel' | 'initrd' | 'cdrom' | 'hda' | 'fda', string>> & { append?: string; boot?: string; memoryMiB?: number } = {};
  if (o.image !== undefined) {
    manifest = loadManifest(`--image ${o.image}`);
    const image = findImage(manifest, o.image);
    if (!image) {
      throw new UsageError(`--image: no image named '${o.image}'; built: ${manifest.images.map((i) => i.name).join(', ')}`);
    }
    const b = image.boot;
    for (const key of ['kernel', 'initrd', 'cdrom', 'hda', 'fda'] as const) {
      const rel = b[key];
      if (rel !== undefined) fromImage[key] = path.join(IMAGES_DIR, rel);
    }
    if (b.append !== undefined) fromImage.append = b.append;
    if (b.boot !== undefined) fromImage.boot = b.boot;
    if (b.memoryMiB !== undefined) fromImage.memoryMiB = b.memoryMiB;
  }

  const firmwareFile = (flag: string, given: string | undefined, name: string): string | undefined => {
    if (given !== undefined) return given;
    manifest ??= loadManifest(`no --${flag} given and the default firmware is missing`);
    const fw = findImage(manifest, 'firmware');
    const file = fw?.files.find((f) => path.basename(f.path) === name);
    if (!file) throw new UsageError(`no --${flag} given and the firmware image has no ${name} (run 'npm run images firmware')`);
    return path.join(IMAGES_DIR, file.path);
  };

  const biosPath = firmwareFile('bios', o.bios, 'bios.bin')!;
  const bios = readFile('bios', biosPath);
  if (bios.length % 65536 !== 0) throw new UsageError(`--bios: ${biosPath} is ${bios.length} bytes, not a multiple of 64 KiB`);
  const vgaPath = firmwareFile('vga-bios', o.vgaBios, 'vgabios-stdvga.bin');

  const kernel = o.kernel ?? fromImage.kernel;
  const initrd = o.initrd ?? fromImage.initrd;
  const cdrom = o.cdrom ?? fromImage.cdrom;
  const hda = o.hda ?? fromImage.hda;
  const fda = o.fda ?? fromImage.fda;
  const config: MachineConfig = {
    memoryMiB: o.memoryMiB ?? fromImage.memoryMiB ?? 128,
    bios,
    boot: o.boot ?? fromImage.boot ?? (cdrom && !hda ? 'dc' : 'cad'),
    deterministic: o.deterministic,
  };
  if (vgaPath !== undefined) config.vgaBios = readFile('vga-bios', vgaPath);
  if (kernel !== undefined) config.kernel = readFile('kernel', kernel);
  if (initrd !== undefined) config.initrd = readFile('initrd', initrd);
  const append = o.append ?? fromImage.append;
  if (append !== undefined) config.append = append;
  if (cdrom !== undefined) config.cdrom = new MemoryBlockDevice(readFile('cdrom', cdrom), true);
  // Writes to a disk stay in memory (QEMU's -snapshot): the user's file is never changed.
  if (hda !== undefined) config.hda = new MemoryBlockDevice(readFile('hda', hda));
  if (fda !== undefined) config.fda = new MemoryBlockDevice(readFile('fda', fda));
  return config;
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    const o = parseArgs(argv);
    if (o.help) {
      process.stdout.write(helpText() + '\n');
      return 0;
    }
    if (o.version) {
      process.stdout.write(`trapdoor ${VERSION}\n`);
      return 0;
    }
    const config = resolveConfig(o);
    const { runHeadless } = await import('./run.ts');
    return await runHeadless(config, o);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`trapdoor: ${e.message}\n`);
      return 2;
    }
    if (e instanceof KernelImageError) {
      process.stderr.write(`trapdoor: --kernel: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`trapdoor: internal error: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}
