/**
 * Multiboot v1 kernels (Multiboot Specification 0.6.96) booted directly: the machine
 * lays the kernel image, the boot information block and a module out here, hands them
 * to the loader ROM (linuxboot.asm) through fw_cfg, and the ROM copies them with DMA and
 * enters the kernel in flat protected mode with EAX = 0x2BADB002, EBX = the block.
 *
 * fw_cfg items the ROM reads (the Linux keys, reused):
 *   KERNEL_ENTRY 0x10           the entry point (non-zero selects this path)
 *   SETUP_ADDR/SIZE/DATA        the information block with its memory map and strings
 *   CMDLINE_ADDR/SIZE/DATA      empty (the command line lives in the block)
 *   KERNEL_ADDR/SIZE/DATA       the image from its load address through the end of bss
 *   INITRD_ADDR/SIZE/DATA       the module (the initrd), page-aligned after the kernel
 */
import { FW_CFG, le32, type FwCfg } from './fw-cfg.ts';
import { KernelImageError, linuxbootRom } from './linux-boot.ts';

const MAGIC = 0x1badb002;
export const MULTIBOOT_BOOTLOADER_MAGIC = 0x2badb002;
/** Header flags (spec 3.1.2): page-align modules, memory information, video mode, address fields. */
const FLAG_PAGE_ALIGN = 1 << 0;
const FLAG_MEMORY_INFO = 1 << 1;
const FLAG_VIDEO_MODE = 1 << 2;
const FLAG_ADDRESS = 1 << 16;
/** Information block flags (spec 3.3). */
const INFO_MEMORY = 1 << 0;
const INFO_CMDLINE = 1 << 2;
const INFO_MODS = 1 << 3;
const INFO_MMAP = 1 << 6;
const INFO_LOADER_NAME = 1 << 9;

/** Where the information block goes: conventional memory below the EBDA, free at boot time. */
export const MULTIBOOT_INFO_ADDR = 0x8000;
const INFO_LIMIT = 0x10000;
/**
 * Where it goes instead when the kernel itself loads at MULTIBOOT_INFO_ADDR (a kernel may load
 * in conventional memory, as QEMU allows: kvm-unit-tests' realmode.flat sits at 0x8000), up
 * to ALT_INFO_LIMIT: clear of the loader ROM's DMA descriptor at 0x600 and of SeaBIOS's
 * stack below 0x7000.
 */
const ALT_INFO_ADDR = 0x1000;
const ALT_INFO_LIMIT = 0x6000;
/** The lowest a kernel may load: above SeaBIOS's 16-bit stack, which the loader ROM runs on. */
const LOW_KERNEL_MIN = 0x8000;
/** SeaBIOS's EBDA starts here with 640 KiB of base memory (what INT 12h reports: 639 KiB). */
const EBDA_START = 0x9fc00;

export interface MultibootPlan {
  entry: number;
  loadAddr: number;
  /** The bytes from loadAddr through the end of bss (bss zeroed). */
  image: Uint8Array;
  /** The information block, and where it is placed (MULTIBOOT_INFO_ADDR unless the kernel is there). */
  info: Uint8Array;
  infoAddr: number;
  moduleAddr: number;
}

/** Offset of the Multiboot header in the first 8 KiB (32-bit aligned), or -1. */
export function findMultibootHeader(image: Uint8Array): number {
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const end = Math.min(image.length, 8192) - 12;
  for (let off = 0; off <= end; off += 4) {
    if (v.getUint32(off, true) !== MAGIC) continue;
    const flags = v.getUint32(off + 4, true);
    if (((MAGIC + flags + v.getUint32(off + 8, true)) >>> 0) === 0) return off;
  }
  return -1;
}

interface Loaded {
  entry: number;
  loadAddr: number;
  image: Uint8Array;
}

/** The a.out-kludge layout: the header's own address fields (spec 3.1.3). */
function loadByAddressFields(file: Uint8Array, hdr: number): Loaded {
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (hdr + 32 > file.length) throw new KernelImageError('the Multiboot header is cut off');
  const headerAddr = v.getUint32(hdr + 12, true);
  const loadAddr = v.getUint32(hdr + 16, true);
  const loadEndAddr = v.getUint32(hdr + 20, true);
  const bssEndAddr = v.getUint32(hdr + 24, true);
  const entry = v.getUint32(hdr + 28, true);
  if (loadAddr > headerAddr) throw new KernelImageError('the Multiboot header says the image loads after its own header');
  const fileStart = hdr - (headerAddr - loadAddr);
  if (fileStart < 0) throw new KernelImageError('the Multiboot header\'s load address lies before the start of the file');
  const loadLength = loadEndAddr === 0 ? file.length - fileStart : loadEndAddr - loadAddr;
  if (loadLength <= 0 || fileStart + loadLength > file.length) {
    throw new KernelImageError(`the kernel file is truncated: its Multiboot header asks for ${loadLength} bytes from offset ${fileStart}, the file has ${file.length}`);
  }
  const memEnd = bssEndAddr === 0 ? loadAddr + loadLength : bssEndAddr;
  if (memEnd < loadAddr + loadLength) throw new KernelImageError('the Multiboot header\'s bss ends before its data');
  const image = new Uint8Array(memEnd - loadAddr);
  image.set(file.subarray(fileStart, fileStart + loadLength));
  return { entry, loadAddr, image };
}

/** An ELF32 kernel: its PT_LOAD segments at their physical addresses (spec 3.1.3, bit 16 clear). */
function loadElf(file: Uint8Array): Loaded {
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (file.length < 52 || v.getUint32(0, false) !== 0x7f454c46) {
    throw new KernelImageError('the Multiboot kernel is not ELF and its header has no address fields');
  }
  if (file[4] !== 1 || file[5] !== 1 || v.getUint16(18, true) !== 3) {
    throw new KernelImageError('the Multiboot kernel is not a 32-bit little-endian x86 ELF file');
  }
  const phoff = v.getUint32(28, true);
  const phentsize = v.getUint16(42, true);
  const phnum = v.getUint16(44, true);
  if (phoff + phnum * phentsize > file.length) throw new KernelImageError('the kernel file is truncated: its ELF program headers run past the end');
  const segs: { paddr: number; offset: number; filesz: number; memsz: number }[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (v.getUint32(at, true) !== 1 /* PT_LOAD */) continue;
    const seg = { offset: v.getUint32(at + 4, true), paddr: v.getUint32(at + 12, true), filesz: v.getUint32(at + 16, true), memsz: v.getUint32(at + 20, true) };
    if (seg.memsz === 0) continue;
    if (seg.offset + seg.filesz > file.length) throw new KernelImageError('the kernel file is truncated: an ELF segment runs past the end');
    segs.push(seg);
  }
  if (segs.length === 0) throw new KernelImageError('the ELF kernel has nothing to load');
  const loadAddr = Math.min(...segs.map((s) => s.paddr));
  const end = Math.max(...segs.map((s) => s.paddr + s.memsz));
  if (end - loadAddr > 256 << 20) throw new KernelImageError('the ELF kernel\'s segments span more than 256 MiB');
  const image = new Uint8Array(end - loadAddr);
  for (const s of segs) image.set(file.subarray(s.offset, s.offset + s.filesz), s.paddr - loadAddr);
  return { entry: v.getUint32(24, true), loadAddr, image };
}

/**
 * Lay out a Multiboot kernel, its module and the information block for `ramBytes` of RAM.
 * Throws KernelImageError in plain words for anything that cannot boot.
 */
export function parseMultiboot(file: Uint8Array, ramBytes: number, cmdline: string, module?: Uint8Array): MultibootPlan {
  const hdr = findMultibootHeader(file);
  if (hdr < 0) throw new KernelImageError('the kernel is neither a bzImage nor a Multiboot kernel');
  const flags = new DataView(file.buffer, file.byteOffset, file.byteLength).getUint32(hdr + 4, true);
  // Bits 0-15 are requirements: a loader that does not know one must refuse (spec 3.1.2).
  const unknown = flags & 0xffff & ~(FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO | FLAG_VIDEO_MODE);
  if (unknown) throw new KernelImageError(`the Multiboot kernel requires features this loader lacks (flags 0x${unknown.toString(16)})`);
  const k = flags & FLAG_ADDRESS ? loadByAddressFields(file, hdr) : loadElf(file);
  const kernelEnd = k.loadAddr + k.image.length;
  // Below 1 MiB a kernel must fit in conventional memory, between SeaBIOS's stack and the EBDA.
  const low = k.loadAddr < 0x100000;
  if (low && (k.loadAddr < LOW_KERNEL_MIN || kernelEnd > EBDA_START)) {
    throw new KernelImageError(`the Multiboot kernel loads at 0x${k.loadAddr.toString(16)}-0x${kernelEnd.toString(16)}: below 1 MiB only 0x${LOW_KERNEL_MIN.toString(16)}-0x${EBDA_START.toString(16)} is free`);
  }
  if (kernelEnd > ramBytes) throw new KernelImageError('the kernel does not fit in RAM');
  if (k.entry < k.loadAddr || k.entry >= kernelEnd) throw new KernelImageError('the Multiboot kernel\'s entry point lies outside its image');

  // Module after the kernel, page-aligned (always, which also satisfies flag bit 0); a low
  // kernel's module goes to 1 MiB.
  let moduleAddr = 0;
  if (module) {
    moduleAddr = low ? 0x100000 : Math.ceil(kernelEnd / 4096) * 4096;
    if (moduleAddr + module.length > ramBytes) throw new KernelImageError(`the module (${module.length} bytes) does not fit in RAM after the kernel`);
  }
  const overlapsKernel = (from: number, to: number) => k.loadAddr < to && kernelEnd > from;
  const infoAddr = overlapsKernel(MULTIBOOT_INFO_ADDR, INFO_LIMIT) ? ALT_INFO_ADDR : MULTIBOOT_INFO_ADDR;
  const infoLimit = infoAddr === ALT_INFO_ADDR ? ALT_INFO_LIMIT : INFO_LIMIT;

  // The information block (spec 3.3), then the memory map, module list and strings.
  const enc = new TextEncoder();
  const cmd = enc.encode(cmdline + '\0');
  const modName = enc.encode('initrd\0');
  const loaderName = enc.encode('Trapdoor\0');
  const mmap: [number, number, number][] = [
    [0, EBDA_START, 1],
    [EBDA_START, 0xa0000 - EBDA_START, 2],
    [0xf0000, 0x10000, 2],
    [0x100000, ramBytes - 0x100000, 1],
    [0xfffc0000, 0x40000, 2],
  ];
  const MMAP_AT = 0x60;
  const MODS_AT = MMAP_AT + mmap.length * 24;
  const STRINGS_AT = MODS_AT + 16;
  const size = STRINGS_AT + cmd.length + modName.length + loaderName.length;
  if (infoAddr + size > infoLimit) throw new KernelImageError('the kernel command line is too long');
  const info = new Uint8Array(size);
  const iv = new DataView(info.buffer);
  const at = (off: number) => infoAddr + off;
  let infoFlags = INFO_MEMORY | INFO_CMDLINE | INFO_MMAP | INFO_LOADER_NAME;
  iv.setUint32(4, EBDA_START >> 10, true); // mem_lower in KiB
  iv.setUint32(8, (ramBytes - 0x100000) >> 10, true); // mem_upper in KiB
  let s = STRINGS_AT;
  iv.setUint32(16, at(s), true);
  info.set(cmd, s);
  s += cmd.length;
  if (module) {
    infoFlags |= INFO_MODS;
    iv.setUint32(20, 1, true);
    iv.setUint32(24, at(MODS_AT), true);
    iv.setUint32(MODS_AT, moduleAddr, true);
    iv.setUint32(MODS_AT + 4, moduleAddr + module.length, true);
    iv.setUint32(MODS_AT + 8, at(s), true);
  }
  info.set(modName, s);
  s += modName.length;
  iv.setUint32(44, mmap.length * 24, true);
  iv.setUint32(48, at(MMAP_AT), true);
  mmap.forEach(([base, length, type], i) => {
    const e = MMAP_AT + i * 24;
    iv.setUint32(e, 20, true); // size of the entry, not counting this field
    iv.setUint32(e + 4, base, true);
    iv.setUint32(e + 12, length, true);
    iv.setUint32(e + 20, type, true);
  });
  iv.setUint32(64, at(s), true);
  info.set(loaderName, s);
  iv.setUint32(0, infoFlags, true);
  return { entry: k.entry, loadAddr: k.loadAddr, image: k.image, info, infoAddr, moduleAddr };
}

/** Give fw_cfg the kernel, block and module, and boot the loader ROM first. */
export function prepareMultiboot(fw: FwCfg, plan: MultibootPlan, module: Uint8Array | undefined): void {
  fw.addItem(FW_CFG.KERNEL_ENTRY, le32(plan.entry));
  fw.addItem(FW_CFG.SETUP_ADDR, le32(plan.infoAddr));
  fw.addItem(FW_CFG.SETUP_SIZE, le32(plan.info.length));
  fw.addItem(FW_CFG.SETUP_DATA, plan.info);
  fw.addItem(FW_CFG.CMDLINE_ADDR, le32(0));
  fw.addItem(FW_CFG.CMDLINE_SIZE, le32(0));
  fw.addItem(FW_CFG.CMDLINE_DATA, new Uint8Array(0));
  fw.addItem(FW_CFG.KERNEL_ADDR, le32(plan.loadAddr));
  fw.addItem(FW_CFG.KERNEL_SIZE, le32(plan.image.length));
  fw.addItem(FW_CFG.KERNEL_DATA, plan.image);
  fw.addItem(FW_CFG.INITRD_ADDR, le32(plan.moduleAddr));
  fw.addItem(FW_CFG.INITRD_SIZE, le32(module?.length ?? 0));
  fw.addItem(FW_CFG.INITRD_DATA, module ?? new Uint8Array(0));
  fw.addFile('genroms/linuxboot.bin', linuxbootRom());
}
