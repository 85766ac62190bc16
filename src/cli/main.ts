/**
 * `trapdoor`: the PC headless in Node. Parses QEMU-style flags, turns them into a
 * MachineConfig (files read here, at the edge: the emulator never touches the file
 * system), runs the machine and the --until/--send script, and maps every failure a
 * user can cause to one line and exit status 2.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { helpText, parseArgs, UsageError, type CliOptions } from './args.ts';
import { buildNetworkConfig } from './net-args.ts';
import type { MachineConfig } from '../emulator/machine/config.ts';
import { KernelImageError } from '../emulator/firmware/linux-boot.ts';
import {
  buildMachineConfig, firmwarePaths, ImageConfigError, MEDIUM_ROLES, planImage, type ImagePlan, type MachineInputs, type MediumRole,
} from '../emulator/machine/image-config.ts';
import type { ImageManifest } from '../../images/manifest.ts';
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

/** Resolve flags (and --image) into files on disk, then into a MachineConfig (image-config.ts, shared with the page). */
export function resolveConfig(o: CliOptions): MachineConfig {
  let manifest: ImageManifest | undefined;
  let plan: ImagePlan = { files: {} };
  if (o.image !== undefined) {
    manifest = loadManifest(`--image ${o.image}`);
    plan = planImage(manifest, o.image);
  }
  const fromImage = (role: MediumRole) => {
    const rel = plan.files[role];
    return rel === undefined ? undefined : path.join(IMAGES_DIR, rel);
  };

  const firmwareFile = (flag: string, given: string | undefined, key: 'bios' | 'vgaBios', name: string): string => {
    if (given !== undefined) return given;
    manifest ??= loadManifest(`no --${flag} given and the default firmware is missing`);
    const rel = firmwarePaths(manifest)[key];
    if (rel === undefined) throw new UsageError(`no --${flag} given and the firmware image has no ${name} (run 'npm run images firmware')`);
    return path.join(IMAGES_DIR, rel);
  };

  const biosPath = firmwareFile('bios', o.bios, 'bios', 'bios.bin');
  const vgaPath = firmwareFile('vga-bios', o.vgaBios, 'vgaBios', 'vgabios-stdvga.bin');
  const files: Partial<Record<MediumRole, string>> = {
    kernel: o.kernel ?? fromImage('kernel'),
    initrd: o.initrd ?? fromImage('initrd'),
    cdrom: o.cdrom ?? fromImage('cdrom'),
    hda: o.hda ?? fromImage('hda'),
    fda: o.fda ?? fromImage('fda'),
  };
  const inputs: MachineInputs = {
    memoryMiB: o.memoryMiB ?? plan.memoryMiB,
    bios: readFile('bios', biosPath),
    vgaBios: readFile('vga-bios', vgaPath),
    append: o.append ?? plan.append,
    boot: o.boot ?? plan.boot,
    deterministic: o.deterministic,
    blockCache: o.blockCache,
    names: { bios: biosPath },
    network: buildNetworkConfig(o.net),
  };
  // An image that boots from the network (ipxe) names the folder its user network serves:
  // the first user network the command line did not give a tftp= of its own serves it.
  if (plan.tftp !== undefined) {
    const nd = inputs.network!.netdevs.find((n) => n.kind === 'user');
    if (nd && nd.kind === 'user' && nd.tftpDir === undefined) {
      nd.tftpDir = path.join(IMAGES_DIR, plan.tftp);
      nd.bootfile ??= plan.bootfile;
    }
  }
  for (const nd of inputs.network!.netdevs) {
    if (nd.kind === 'user' && nd.tftpDir !== undefined && !fs.statSync(nd.tftpDir, { throwIfNoEntry: false })?.isDirectory()) {
      throw new UsageError(`tftp=${nd.tftpDir}: no such folder`);
    }
  }
  // iPXE's ROM for the PCI NIC, from the firmware image when it is there (QEMU loads it
  // whenever the NIC exists; without it only network boot is missing).
  if (inputs.network!.nics.some((n) => n.model === 'ne2k_pci')) {
    try {
      manifest ??= readManifest(IMAGES_DIR);
      const rom = firmwarePaths(manifest).nicRom;
      if (rom !== undefined) inputs.nicRom = readFile('nic-rom', path.join(IMAGES_DIR, rom));
    } catch {
      if (o.boot?.includes('n')) throw new UsageError("--boot n needs iPXE's pxe-ne2k_pci.rom from the firmware image (run 'npm run images firmware')");
    }
  }
  for (const role of MEDIUM_ROLES) {
    const file = files[role];
    if (file === undefined) continue;
    inputs[role] = readFile(role, file);
    inputs.names![role] = file;
  }
  return buildMachineConfig(inputs);
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
    if (e instanceof ImageConfigError) {
      process.stderr.write(`trapdoor: --${e.field === 'vgaBios' ? 'vga-bios' : e.field}: ${e.message}\n`);
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
