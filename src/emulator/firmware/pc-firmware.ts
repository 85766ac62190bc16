/**
 * What the PC tells SeaBIOS through fw_cfg (platform-facts.md, "fw_cfg"): RAM map, CPU
 * counts, boot menu and order, option ROMs, and the kernel for direct boot. The keys and
 * files are the ones QEMU's PC offers (QEMU docs/specs/fw_cfg.rst); SeaBIOS reads them in
 * qemu_cfg_init / qemu_platform_setup / boot_init.
 */
import type { MachineConfig } from '../machine/config.ts';
import { FW_CFG, le16, le32, le64, type FwCfg } from './fw-cfg.ts';
import { KernelImageError, parseBzImage, prepareLinuxBoot, RNG_SEED_BYTES } from './linux-boot.ts';
import { parseMultiboot, prepareMultiboot } from './multiboot.ts';
import { buildDmar } from './acpi-dmar.ts';

/**
 * SeaBIOS device paths for QEMU's -boot letters (SeaBIOS boot.c, bootprio_find_*): the
 * floppy behind the PIIX3's ISA bridge, hda as primary master and the CD as secondary
 * master of the PIIX IDE at 00:01.1, and for `n` the first NIC at 00:03.0 as QEMU writes it
 * (SeaBIOS's bootprio_find_pci_rom matches its option ROM's BEV by the glob /pci@i0cf8/*@3).
 */
const BOOT_PATHS: Record<string, string> = {
  a: '/pci@i0cf8/isa@1/fdc@03f0/floppy@0',
  c: '/pci@i0cf8/*@1,1/drive@0/disk@0',
  d: '/pci@i0cf8/*@1,1/drive@1/disk@0',
  n: '/pci@i0cf8/ethernet@3/ethernet-phy@0',
};
export const LINUXBOOT_PATH = '/rom@genroms/linuxboot.bin';

/**
 * The `bootorder` file: the kernel loader first when there is a kernel, then -boot's
 * letters; one path a line, no trailing newline (as QEMU writes it: SeaBIOS would read a
 * trailing newline as one more, empty, entry).
 */
export function bootOrder(boot: string, kernel: boolean): string {
  const lines = kernel ? [LINUXBOOT_PATH] : [];
  for (const letter of boot) {
    const p = BOOT_PATHS[letter];
    if (p && !lines.includes(p)) lines.push(p);
  }
  return lines.join('\n');
}

/** The e820 map QEMU hands SeaBIOS: all RAM as one range (SeaBIOS adds its own holes). */
export function e820Table(ramBytes: number): Uint8Array {
  const e = new Uint8Array(20);
  e.set(le64(0), 0);
  e.set(le64(ramBytes), 8);
  e.set(le32(1), 16); // E820_RAM
  return e;
}

/** Fill `fw` for a PC with `ramBytes` of RAM as `config` describes it. Throws KernelImageError for a bad kernel. */
export function configurePcFirmware(fw: FwCfg, config: MachineConfig, ramBytes: number): void {
  fw.addItem(FW_CFG.RAM_SIZE, le64(ramBytes));
  fw.addItem(FW_CFG.NB_CPUS, le16(1));
  fw.addItem(FW_CFG.MAX_CPUS, le16(1));
  fw.addItem(FW_CFG.NOGRAPHIC, le16(0));
  fw.addItem(FW_CFG.BOOT_MENU, le16(0));
  fw.addItem(FW_CFG.NUMA, le64(0));
  fw.addItem(FW_CFG.UUID, new Uint8Array(16));
  // ISA IRQ0 arrives at I/O APIC input 2 (the override SeaBIOS puts in its tables).
  fw.addItem(FW_CFG.IRQ0_OVERRIDE, le32(1));
  fw.addFile('etc/e820', e820Table(ramBytes));
  // After "No bootable device", wait this long (ms) and reboot to try again.
  fw.addFile('etc/boot-fail-wait', le32(5000));
  for (const rom of config.optionRoms ?? []) fw.addFile(`genroms/${rom.name}`, rom.data);
  // The remapping unit's DMAR: SeaBIOS links every acpi/* file into the tables it builds.
  if (config.iommu) fw.addFile('acpi/dmar', buildDmar());

  const { kernel, initrd } = config;
  const cmdline = config.append ?? '';
  if (kernel) {
    if (isBzImage(kernel)) {
      const plan = parseBzImage(kernel, ramBytes, initrd?.length ?? 0, cmdline);
      prepareLinuxBoot(fw, plan, cmdline, initrd, rngSeed(config.deterministic));
    } else {
      const argv = [config.kernelName ?? 'kernel', cmdline].filter((part) => part !== '').join(' ');
      const plan = parseMultiboot(kernel, ramBytes, argv, initrd);
      prepareMultiboot(fw, plan, initrd);
    }
  } else if (initrd || config.append) {
    throw new KernelImageError('an initrd or a command line needs a kernel (-kernel) to go with it');
  }
  const order = bootOrder(config.boot, kernel !== undefined);
  if (order) fw.addFile('bootorder', new TextEncoder().encode(order));
}

/**
 * The seed a directly booted Linux gets for its RNG (linux-boot.ts, commandLineBlock):
 * the host's randomness, or in deterministic mode the same bytes every run (the run must
 * repeat exactly; QEMU's -seed does the same for record/replay). A guest's keys are only
 * as secret as this seed: deterministic mode is for tests and benchmarks, not for secrets.
 */
export function rngSeed(deterministic: boolean): Uint8Array {
  const seed = new Uint8Array(RNG_SEED_BYTES);
  if (deterministic) {
    for (let i = 0; i < seed.length; i++) seed[i] = (i * 0x9d + 0x5b) & 0xff;
  } else {
    globalThis.crypto.getRandomValues(seed);
  }
  return seed;
}

/** A Linux boot header ("HdrS" at 0x202) decides: bzImage, even if it also carries a Multiboot header. */
function isBzImage(image: Uint8Array): boolean {
  return image.length >= 0x206 && image[0x202] === 0x48 && image[0x203] === 0x64 && image[0x204] === 0x72 && image[0x205] === 0x53;
}
