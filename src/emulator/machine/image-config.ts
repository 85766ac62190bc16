/**
 * From "which guest, which files" to a MachineConfig, shared by the CLI (files from disk)
 * and the page's worker (files fetched from public/images or dropped by the user). DOM-
 * and Node-free: callers read the bytes, this module decides what they mean.
 *
 *  - planImage(): which files (relative to the images folder) an image of the manifest
 *    boots, with its command line, boot order and RAM size; firmwarePaths() finds the
 *    BIOS and VGA BIOS in the firmware image.
 *  - checkMedium() / guessRole(): whether a user's file can serve as a CD, disk, floppy,
 *    kernel or initrd, in plain words when it cannot (a qcow2 disk, a truncated ISO).
 *  - buildMachineConfig(): the bytes into a MachineConfig with the defaults the CLI and
 *    the page share (128 MiB, boot from the CD when there is one and no disk).
 */
import type { MachineConfig } from './config.ts';
import { MemoryBlockDevice } from '../devices/block-device.ts';
import { findImage, type ImageManifest } from '../../../images/manifest.ts';

/** What a file can be to the machine. */
export type MediumRole = 'kernel' | 'initrd' | 'cdrom' | 'hda' | 'fda';
export const MEDIUM_ROLES: readonly MediumRole[] = ['kernel', 'initrd', 'cdrom', 'hda', 'fda'];

/** A problem with the files a user chose, in plain words; `field` names the file's role (or "image"). */
export class ImageConfigError extends Error {
  override readonly name = 'ImageConfigError';
  constructor(readonly field: MediumRole | 'bios' | 'vgaBios' | 'image', message: string) {
    super(message);
  }
}

/** What an image of the manifest boots: paths relative to the folder holding manifest.json. */
export interface ImagePlan {
  files: Partial<Record<MediumRole, string>>;
  append?: string;
  boot?: string;
  memoryMiB?: number;
  /** A folder the image's user network serves by TFTP (relative), and the DHCP boot file. */
  tftp?: string;
  bootfile?: string;
}

export function planImage(manifest: ImageManifest, name: string): ImagePlan {
  const image = findImage(manifest, name);
  if (!image) {
    throw new ImageConfigError('image', `no image named '${name}'; built: ${manifest.images.map((i) => i.name).join(', ')}`);
  }
  const b = image.boot;
  const plan: ImagePlan = { files: {} };
  for (const role of MEDIUM_ROLES) {
    const rel = b[role];
    if (rel !== undefined) plan.files[role] = rel;
  }
  if (b.append !== undefined) plan.append = b.append;
  if (b.boot !== undefined) plan.boot = b.boot;
  if (b.memoryMiB !== undefined) plan.memoryMiB = b.memoryMiB;
  if (b.tftp !== undefined) plan.tftp = b.tftp;
  if (b.bootfile !== undefined) plan.bootfile = b.bootfile;
  return plan;
}

/** The system BIOS and the std VGA BIOS of the firmware image (relative paths). */
export function firmwarePaths(manifest: ImageManifest): { bios?: string; vgaBios?: string; nicRom?: string } {
  const fw = findImage(manifest, 'firmware');
  const named = (file: string) => fw?.files.find((f) => f.path.split('/').pop() === file)?.path;
  return { bios: named('bios.bin'), vgaBios: named('vgabios-stdvga.bin'), nicRom: named('pxe-ne2k_pci.rom') };
}

/** Sizes of the floppy formats a PC drive reads (160 KB 5.25" to 2.88 MB 3.5"). */
export const FLOPPY_SIZES: readonly number[] = [163840, 184320, 327680, 368640, 737280, 1228800, 1474560, 2949120];

const CD_SECTOR = 2048;
const DISK_SECTOR = 512;

function ascii(bytes: Uint8Array, at: number, text: string): boolean {
  if (at + text.length > bytes.length) return false;
  for (let i = 0; i < text.length; i++) if (bytes[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** ISO 9660 volume descriptor: "CD001" after the type byte of sector 16 (ECMA-119 §8.1). */
function isIso9660(b: Uint8Array): boolean {
  return ascii(b, 16 * CD_SECTOR + 1, 'CD001');
}

/** Linux boot protocol header signature "HdrS" at 0x202 (Documentation/x86/boot.rst). */
function isBzImage(b: Uint8Array): boolean {
  return ascii(b, 0x202, 'HdrS');
}

/** A Multiboot v1 header: magic 0x1BADB002, 4-byte aligned in the first 8 KiB (Multiboot spec §3.1.1). */
function hasMultiboot(b: Uint8Array): boolean {
  const end = Math.min(b.length - 12, 8192);
  for (let i = 0; i <= end; i += 4) {
    if (b[i] === 0x02 && b[i + 1] === 0xb0 && b[i + 2] === 0xad && b[i + 3] === 0x1b) {
      const sum = (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) + (b[i + 4] | (b[i + 5] << 8) | (b[i + 6] << 16) | (b[i + 7] << 24)) + (b[i + 8] | (b[i + 9] << 8) | (b[i + 10] << 16) | (b[i + 11] << 24));
      if ((sum | 0) === 0) return true;
    }
  }
  return false;
}

/** Disk image container formats that are not raw sectors, by their magic (name, how to convert). */
function containerFormat(b: Uint8Array): string | undefined {
  if (ascii(b, 0, 'QFI\xfb')) return 'qcow2';
  if (ascii(b, 0, 'KDMV')) return 'VMDK';
  if (ascii(b, 0x40, '\x7f\x10\xda\xbe') || ascii(b, 0, '<<< ')) return 'VirtualBox VDI';
  // A dynamic VHD starts with a copy of its footer; a fixed VHD is raw sectors plus a footer, which reads fine.
  if (ascii(b, 0, 'conectix')) return 'dynamic VHD';
  if (ascii(b, 0, 'vhdxfile')) return 'VHDX';
  return undefined;
}

function kib(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`;
}

/**
 * Why `bytes` cannot serve as `role` (plain words naming the file), or undefined when it
 * can. Cheap: looks at sizes and a few signature bytes only.
 */
export function checkMedium(role: MediumRole, name: string, bytes: Uint8Array): string | undefined {
  const size = bytes.length;
  if (size === 0) return `${name} is empty.`;
  switch (role) {
    case 'cdrom':
      if (size % CD_SECTOR !== 0 || size < 17 * CD_SECTOR) {
        return `${name} (${size} bytes) is not a whole number of 2048-byte CD sectors: it is not a CD image (.iso), or it is truncated.`;
      }
      return undefined;
    case 'hda': {
      const format = containerFormat(bytes);
      if (format) return `${name} is a ${format} image; Trapdoor reads raw disk images only. Convert it first: qemu-img convert -O raw ${name} disk.img`;
      if (size % DISK_SECTOR !== 0) return `${name} (${size} bytes) is not a whole number of 512-byte sectors, so it is not a raw disk image (or it is truncated).`;
      return undefined;
    }
    case 'fda':
      if (!FLOPPY_SIZES.includes(size)) {
        return `${name} is ${kib(size)}; a floppy image is exactly one of ${FLOPPY_SIZES.map(kib).join(', ')}. Use it as a hard disk instead?`;
      }
      return undefined;
    case 'kernel':
      if (isBzImage(bytes) || hasMultiboot(bytes)) return undefined;
      if (ascii(bytes, 0, '\x7fELF')) return `${name} is an ELF file without a Multiboot header (an uncompressed vmlinux?); boot the bzImage (arch/x86/boot/bzImage) instead.`;
      return `${name} is neither a Linux bzImage nor a Multiboot kernel, so it cannot be booted as a kernel.`;
    case 'initrd':
      return undefined;
  }
}

/**
 * The role a dropped file most likely plays, from its contents, size and name. `bytes`
 * may be just the file's head (64 KiB is enough) when `size` gives the whole size.
 */
export function guessRole(name: string, bytes: Uint8Array, size = bytes.length): MediumRole {
  const lower = name.toLowerCase();
  if (isIso9660(bytes) || lower.endsWith('.iso')) return 'cdrom';
  // Exactly a floppy's size wins over a kernel header: memtest86+ written to a floppy is
  // both a bzImage and a bootable 1.44 MB disk, and was meant as the disk.
  if (FLOPPY_SIZES.includes(size) || /\.(ima|vfd|flp)$/.test(lower)) return 'fda';
  if (isBzImage(bytes) || hasMultiboot(bytes) || /(bzimage|vmlinuz|kernel)/.test(lower)) return 'kernel';
  if (/(initrd|initramfs|\.cpio)/.test(lower)) return 'initrd';
  return 'hda';
}

/** The bytes a machine is built from: what the CLI read from disk, or the page fetched or was given. */
export interface MachineInputs {
  memoryMiB?: number;
  bios: Uint8Array;
  vgaBios?: Uint8Array;
  kernel?: Uint8Array;
  initrd?: Uint8Array;
  append?: string;
  cdrom?: Uint8Array;
  hda?: Uint8Array;
  fda?: Uint8Array;
  /** Boot order letters; default: the CD first when there is a CD and no disk. */
  boot?: string;
  deterministic: boolean;
  /** Translated blocks for 32-bit code (MachineConfig.blockCache; default on). */
  blockCache?: boolean;
  /** NICs and networks (MachineConfig.network). */
  network?: MachineConfig['network'];
  /** The guest-visible VT-d unit with its DMAR table (MachineConfig.iommu; default on). */
  iommu?: boolean;
  /** iPXE's boot ROM for the PCI NE2000 (MachineConfig.nicRom). */
  nicRom?: Uint8Array;
  /** Display names of the files, for error messages (default: the role). */
  names?: Partial<Record<MediumRole | 'bios', string>>;
}

/** Turn the bytes into a MachineConfig; throws ImageConfigError (plain words) for unusable files. */
export function buildMachineConfig(i: MachineInputs): MachineConfig {
  const nameOf = (k: MediumRole | 'bios') => i.names?.[k] ?? k;
  if (i.bios.length === 0 || i.bios.length % 65536 !== 0) {
    throw new ImageConfigError('bios', `${nameOf('bios')} is ${i.bios.length} bytes, not a multiple of 64 KiB`);
  }
  for (const role of MEDIUM_ROLES) {
    const bytes = i[role];
    if (bytes === undefined) continue;
    const problem = checkMedium(role, nameOf(role), bytes);
    if (problem) throw new ImageConfigError(role, problem);
  }
  if (i.initrd && !i.kernel) throw new ImageConfigError('initrd', 'an initrd needs a kernel to go with it');
  const config: MachineConfig = {
    memoryMiB: i.memoryMiB ?? 128,
    bios: i.bios,
    boot: i.boot ?? (i.cdrom && !i.hda ? 'dc' : 'cad'),
    deterministic: i.deterministic,
  };
  if (i.blockCache === false) config.blockCache = false;
  if (i.vgaBios) config.vgaBios = i.vgaBios;
  if (i.network) config.network = i.network;
  // VT-d on by default (issue 23), as QEMU's q35 users get it with -device intel-iommu; this
  // i440FX with VT-d is a synthetic machine (docs/iommu.md). Linux 6.1 turns translation on.
  config.iommu = i.iommu ?? true;
  if (i.nicRom) config.nicRom = i.nicRom;
  if (i.kernel) {
    config.kernel = i.kernel;
    config.kernelName = nameOf('kernel');
  }
  if (i.initrd) config.initrd = i.initrd;
  if (i.append !== undefined) config.append = i.append;
  if (i.cdrom) config.cdrom = new MemoryBlockDevice(i.cdrom, true);
  // Writes to a disk stay in memory (QEMU's -snapshot): the user's file is never changed.
  if (i.hda) config.hda = new MemoryBlockDevice(i.hda);
  if (i.fda) config.fda = new MemoryBlockDevice(i.fda);
  return config;
}
