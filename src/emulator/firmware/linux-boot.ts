/**
 * Direct kernel boot (QEMU's -kernel/-initrd/-append) the way QEMU does it: the machine
 * hands SeaBIOS a small option ROM of its own (linuxboot.asm) as genroms/linuxboot.bin,
 * first in the boot order; at boot it pulls the setup code, command line, kernel and
 * initrd out of fw_cfg with DMA and enters the setup code (Linux boot protocol,
 * Documentation/x86/boot.rst). This file parses the bzImage header and prepares those
 * fw_cfg items.
 */
import { FW_CFG, le32, type FwCfg } from './fw-cfg.ts';

/**
 * The bytes nasm makes of linuxboot.asm (the first 512-byte block, trailing zeros
 * implied; the PnP and ROM checksums are filled in by linuxbootRom()). linuxboot.test.ts
 * assembles the source and checks that these are its bytes.
 */
export const LINUXBOOT_CODE = Uint8Array.from([
  0x55, 0xaa, 0x01, 0xeb, 0x4d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x24, 0x50, 0x6e, 0x50,
  0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x45, 0x00, 0x00, 0x00,
  0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0xc5, 0x00, 0x00, 0x00, 0x00, 0x00, 0x54, 0x72, 0x61, 0x70,
  0x64, 0x6f, 0x6f, 0x72, 0x00, 0x4c, 0x69, 0x6e, 0x75, 0x78, 0x20, 0x6c, 0x6f, 0x61, 0x64, 0x65,
  0x72, 0x00, 0xcb, 0xba, 0x10, 0x05, 0xef, 0xba, 0x11, 0x05, 0x66, 0x31, 0xdb, 0xb9, 0x04, 0x00,
  0xec, 0x66, 0x0f, 0xb6, 0xc0, 0x66, 0xc1, 0xe0, 0x18, 0x66, 0xc1, 0xeb, 0x08, 0x66, 0x09, 0xc3,
  0xe2, 0xee, 0xc3, 0x89, 0xf8, 0xe8, 0xdb, 0xff, 0x66, 0x85, 0xdb, 0x74, 0x47, 0x66, 0x0f, 0xcb,
  0x66, 0x89, 0x1e, 0x04, 0x06, 0x89, 0xf0, 0xe8, 0xc9, 0xff, 0x66, 0x0f, 0xcb, 0x66, 0xc7, 0x06,
  0x08, 0x06, 0x00, 0x00, 0x00, 0x00, 0x66, 0x89, 0x1e, 0x0c, 0x06, 0x66, 0x0f, 0xb7, 0xc5, 0x66,
  0xc1, 0xe0, 0x10, 0x66, 0x83, 0xc8, 0x0a, 0x66, 0x0f, 0xc8, 0x66, 0xa3, 0x00, 0x06, 0xba, 0x14,
  0x05, 0x66, 0x31, 0xc0, 0x66, 0xef, 0x66, 0xb8, 0x00, 0x06, 0x00, 0x00, 0x66, 0x0f, 0xc8, 0xba,
  0x18, 0x05, 0x66, 0xef, 0xc3, 0xfa, 0xfc, 0x31, 0xc0, 0x8e, 0xd8, 0xbe, 0x16, 0x00, 0xbf, 0x17,
  0x00, 0xbd, 0x18, 0x00, 0xe8, 0x9c, 0xff, 0xbe, 0x13, 0x00, 0xbf, 0x14, 0x00, 0xbd, 0x15, 0x00,
  0xe8, 0x90, 0xff, 0xbe, 0x07, 0x00, 0xbf, 0x08, 0x00, 0xbd, 0x11, 0x00, 0xe8, 0x84, 0xff, 0xbe,
  0x0a, 0x00, 0xbf, 0x0b, 0x00, 0xbd, 0x12, 0x00, 0xe8, 0x78, 0xff, 0xb8, 0x10, 0x00, 0xe8, 0x52,
  0xff, 0x66, 0x85, 0xdb, 0x75, 0x15, 0xb8, 0x00, 0x10, 0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xe0, 0x8e,
  0xe8, 0x8e, 0xd0, 0xbc, 0xf0, 0xff, 0xea, 0x00, 0x00, 0x20, 0x10, 0x66, 0x89, 0xde, 0xb8, 0x16,
  0x00, 0xe8, 0x2f, 0xff, 0xe4, 0x92, 0x0c, 0x02, 0x24, 0xfe, 0xe6, 0x92, 0x66, 0x31, 0xff, 0x8c,
  0xcf, 0x66, 0xc1, 0xe7, 0x04, 0x66, 0x67, 0x8d, 0x87, 0x78, 0x01, 0x00, 0x00, 0xc7, 0x06, 0x00,
  0x06, 0x17, 0x00, 0x66, 0xa3, 0x02, 0x06, 0x0f, 0x01, 0x16, 0x00, 0x06, 0x66, 0x81, 0xc7, 0x62,
  0x01, 0x00, 0x00, 0x0f, 0x20, 0xc0, 0x0c, 0x01, 0x0f, 0x22, 0xc0, 0x66, 0x6a, 0x08, 0x66, 0x57,
  0x66, 0xcb, 0x66, 0xb8, 0x10, 0x00, 0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xe0, 0x8e, 0xe8, 0x8e, 0xd0,
  0xb8, 0x02, 0xb0, 0xad, 0x2b, 0xff, 0xe6, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xcf, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x92, 0xcf, 0x00,
]);

const ROM_SIZE = 512;
const PNP_OFFSET = 0x1c;
const PNP_CHECKSUM = PNP_OFFSET + 9;

/** The option ROM with its PnP header checksum and whole-ROM checksum set (each sums to 0). */
export function linuxbootRom(): Uint8Array {
  const rom = new Uint8Array(ROM_SIZE);
  rom.set(LINUXBOOT_CODE);
  let sum = 0;
  for (let i = 0; i < 32; i++) sum += rom[PNP_OFFSET + i];
  rom[PNP_CHECKSUM] = (0x100 - (sum & 0xff)) & 0xff;
  sum = 0;
  for (let i = 0; i < ROM_SIZE - 1; i++) sum += rom[i];
  rom[ROM_SIZE - 1] = (0x100 - (sum & 0xff)) & 0xff;
  return rom;
}

/** A kernel the user gave that cannot be booted: said in plain words. */
export class KernelImageError extends Error {
  override readonly name = 'KernelImageError';
}

/** Where QEMU puts things for a protocol >= 2.02 kernel. */
export const SETUP_ADDR = 0x10000;
export const CMDLINE_ADDR = 0x20000;
export const KERNEL_ADDR = 0x100000;

export interface LinuxBootPlan {
  protocol: number;
  setup: Uint8Array;
  kernel: Uint8Array;
  initrdAddr: number;
}

/**
 * Check a bzImage and describe its parts (boot.rst, "The real-mode kernel header").
 * Throws KernelImageError for anything that is not a bootable bzImage.
 */
export function parseBzImage(image: Uint8Array, ramBytes: number, initrdSize: number, cmdline: string): LinuxBootPlan {
  if (image.length < 0x1000) throw new KernelImageError(`the kernel is only ${image.length} bytes: not a bzImage`);
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (v.getUint16(0x1fe, true) !== 0xaa55 || v.getUint32(0x202, true) !== 0x53726448 /* "HdrS" */) {
    throw new KernelImageError('the kernel has no Linux boot header ("HdrS" at 0x202): not a bzImage');
  }
  const protocol = v.getUint16(0x206, true);
  if (protocol < 0x202) throw new KernelImageError(`boot protocol ${(protocol >> 8)}.${(protocol & 0xff).toString().padStart(2, '0')} is too old (2.02 or later needed)`);
  if ((image[0x211] & 0x01) === 0) throw new KernelImageError('the kernel is a zImage (not loaded high); only bzImage kernels are supported');
  const setupSects = image[0x1f1] || 4;
  const setupBytes = (setupSects + 1) * 512;
  if (setupBytes >= image.length) throw new KernelImageError('the kernel image is truncated: its setup code runs past the end of the file');
  const setup = image.slice(0, setupBytes);
  const kernel = image.slice(setupBytes);
  const sv = new DataView(setup.buffer);
  // The loader's header fields (boot.rst): type_of_loader, CAN_USE_HEAP, heap end, command line.
  setup[0x210] = 0xb0;
  setup[0x211] |= 0x80;
  sv.setUint16(0x224, CMDLINE_ADDR - SETUP_ADDR - 0x200, true);
  sv.setUint32(0x228, CMDLINE_ADDR, true);
  if (new TextEncoder().encode(cmdline).length + 1 > (protocol >= 0x206 ? sv.getUint32(0x238, true) : 255) + 1) {
    throw new KernelImageError('the kernel command line is longer than this kernel accepts');
  }
  let initrdAddr = 0;
  if (initrdSize > 0) {
    const max = protocol >= 0x203 ? sv.getUint32(0x22c, true) : 0x37ffffff;
    const top = Math.min(max, ramBytes - 0x28000 - 1);
    initrdAddr = Math.floor((top - initrdSize) / 4096) * 4096;
    if (initrdAddr < KERNEL_ADDR + kernel.length) throw new KernelImageError(`the initrd (${initrdSize} bytes) does not fit in RAM with the kernel`);
    sv.setUint32(0x218, initrdAddr, true);
    sv.setUint32(0x21c, initrdSize, true);
  }
  if (KERNEL_ADDR + kernel.length > ramBytes) throw new KernelImageError('the kernel does not fit in RAM');
  return { protocol, setup, kernel, initrdAddr };
}

/** setup_data types (arch/x86/include/uapi/asm/bootparam.h). */
const SETUP_RNG_SEED = 9;
/** Bytes of seed, as QEMU gives (32: the 256 bits that make the kernel's RNG ready). */
export const RNG_SEED_BYTES = 32;

/**
 * The command line block: the string, then (protocol 2.09 and later, and when there is a
 * seed) one setup_data node of type SETUP_RNG_SEED, linked from the header's setup_data
 * field (boot.rst, "Details of header fields": setup_data).
 *
 * QEMU gives every directly booted kernel such a seed. Without one an i686 guest has no
 * entropy at all early on (no RDRAND, few interrupts), so its RNG stays "empty" for the
 * whole boot and every get_random_u32 re-hashes the input pool with BLAKE2s (tiny-linux:
 * 8% of its boot's instructions with the ChaCha that follows, one per shmem inode). With
 * it, a kernel that trusts its boot loader (RANDOM_TRUST_BOOTLOADER; 6.1 reads the seed
 * before its command line, so random.trust_bootloader=on comes too late there) seeds its
 * RNG in setup_arch and then zeroes the seed in memory.
 *
 * QEMU appends the node to the kernel and had to move it when the decompressor grew over
 * it; after the command line, below 1 MiB, it is out of the decompressor's way. The
 * loader ROM copies the whole block (CMDLINE_SIZE) to CMDLINE_ADDR.
 */
export function commandLineBlock(setup: Uint8Array, protocol: number, cmdline: string, rngSeed: Uint8Array | undefined): Uint8Array {
  const cmd = new TextEncoder().encode(cmdline + '\0');
  if (rngSeed === undefined || protocol < 0x209) return cmd;
  const at = (cmd.length + 15) & ~15;
  const block = new Uint8Array(at + 16 + rngSeed.length);
  block.set(cmd);
  const v = new DataView(block.buffer);
  // struct setup_data { u64 next; u32 type; u32 len; u8 data[]; }, next = 0: the last node.
  v.setUint32(at + 8, SETUP_RNG_SEED, true);
  v.setUint32(at + 12, rngSeed.length, true);
  block.set(rngSeed, at + 16);
  const sv = new DataView(setup.buffer, setup.byteOffset, setup.byteLength);
  sv.setUint32(0x250, CMDLINE_ADDR + at, true);
  sv.setUint32(0x254, 0, true);
  return block;
}

/**
 * Give fw_cfg the kernel, setup, command line (with `rngSeed` as setup_data when given)
 * and initrd, and the loader ROM.
 */
export function prepareLinuxBoot(fw: FwCfg, plan: LinuxBootPlan, cmdline: string, initrd: Uint8Array | undefined, rngSeed?: Uint8Array): void {
  const cmd = commandLineBlock(plan.setup, plan.protocol, cmdline, rngSeed);
  fw.addItem(FW_CFG.SETUP_ADDR, le32(SETUP_ADDR));
  fw.addItem(FW_CFG.SETUP_SIZE, le32(plan.setup.length));
  fw.addItem(FW_CFG.SETUP_DATA, plan.setup);
  fw.addItem(FW_CFG.KERNEL_ADDR, le32(KERNEL_ADDR));
  fw.addItem(FW_CFG.KERNEL_SIZE, le32(plan.kernel.length));
  fw.addItem(FW_CFG.KERNEL_DATA, plan.kernel);
  fw.addItem(FW_CFG.CMDLINE_ADDR, le32(CMDLINE_ADDR));
  fw.addItem(FW_CFG.CMDLINE_SIZE, le32(cmd.length));
  fw.addItem(FW_CFG.CMDLINE_DATA, cmd);
  fw.addItem(FW_CFG.INITRD_ADDR, le32(plan.initrdAddr));
  fw.addItem(FW_CFG.INITRD_SIZE, le32(initrd?.length ?? 0));
  fw.addItem(FW_CFG.INITRD_DATA, initrd ?? new Uint8Array(0));
  // configurePcFirmware (pc-firmware.ts) puts the ROM first in the bootorder file.
  fw.addFile('genroms/linuxboot.bin', linuxbootRom());
}
