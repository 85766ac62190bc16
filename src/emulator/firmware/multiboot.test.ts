/** Multiboot v1: header checks, layout, and a kernel entered by SeaBIOS and the loader ROM. */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { assemble, nasmAvailable } from '../cpu/testing/nasm.ts';
import { KernelImageError } from './linux-boot.ts';
import { MULTIBOOT_INFO_ADDR, parseMultiboot } from './multiboot.ts';
import { bootOrder } from './pc-firmware.ts';
import { createMachine } from '../machine/machine.ts';
import { PUBLISH_DIR } from '../../../images/paths.ts';

/** A kernel with the a.out kludge: header address fields, 4 KiB of bss, entry at `start`. */
const KERNEL = `
bits 32
org 0x100000
header:
    dd 0x1badb002
    dd 0x00010003                   ; page-align modules, memory info, address fields
    dd -(0x1badb002 + 0x00010003)
    dd header, header, load_end, bss_end, start
start:
    cmp eax, 0x2badb002
    jne fail
    mov esi, [ebx + 16]             ; command line
.print:
    lodsb
    test al, al
    jz .printed
    out 0xe9, al
    jmp .print
.printed:
    cmp dword [ebx + 8], (128 - 1) * 1024   ; mem_upper in KiB
    jne fail
    test dword [ebx], 1 << 6        ; memory map present
    jz fail
    mov ecx, [ebx + 24]             ; module list
    mov ecx, [ecx]                  ; mod_start
    test ecx, 0xfff                 ; page-aligned
    jnz fail
    mov al, [ecx]
    out 0xe9, al                    ; first byte of the module
    cmp dword [bss_word], 0
    jne fail
    mov al, '!'
    out 0xe9, al
    cli
    hlt
fail:
    mov al, 'X'
    out 0xe9, al
    cli
    hlt
load_end:
    align 4
bss_word: resd 1024
bss_end:
`;

function aoutKernel(base = 0x200000): Uint8Array {
  // Built by hand for the parser tests (no nasm needed): header at 0, 64 bytes of code.
  const k = new Uint8Array(0x60);
  const v = new DataView(k.buffer);
  const flags = 0x00010003;
  v.setUint32(0, 0x1badb002, true);
  v.setUint32(4, flags, true);
  v.setUint32(8, (-(0x1badb002 + flags)) >>> 0, true);
  v.setUint32(12, base, true); // header_addr
  v.setUint32(16, base, true); // load_addr
  v.setUint32(20, base + 0x60, true); // load_end_addr
  v.setUint32(24, base + 0x2000, true); // bss_end_addr
  v.setUint32(28, base + 0x20, true); // entry
  k.fill(0x90, 0x20);
  return k;
}

describe('parseMultiboot', () => {
  it('loads a kernel in conventional memory, as QEMU does, with the information block out of its way', () => {
    const plan = parseMultiboot(aoutKernel(0x8000), 64 << 20, 'low', new Uint8Array(10));
    expect(plan.loadAddr).toBe(0x8000);
    expect(plan.infoAddr).toBe(0x1000);
    expect(plan.moduleAddr).toBe(0x100000);
    expect(parseMultiboot(aoutKernel(), 64 << 20, '').infoAddr).toBe(MULTIBOOT_INFO_ADDR);
    expect(() => parseMultiboot(aoutKernel(0x7000), 64 << 20, '')).toThrow(/below 1 MiB only 0x8000-0x9fc00 is free/);
    expect(() => parseMultiboot(aoutKernel(0x9f000), 64 << 20, '')).toThrow(/below 1 MiB/);
  });

  it('lays out an a.out-kludge kernel, its bss, module and information block', () => {
    const plan = parseMultiboot(aoutKernel(), 64 << 20, 'hello', new Uint8Array(100).fill(7));
    expect(plan.loadAddr).toBe(0x200000);
    expect(plan.entry).toBe(0x200020);
    expect(plan.image.length).toBe(0x2000);
    expect(plan.image[0x5f]).toBe(0x90);
    expect(plan.image[0x60]).toBe(0);
    expect(plan.moduleAddr).toBe(0x202000);
    const v = new DataView(plan.info.buffer);
    expect(v.getUint32(0, true) & 0x24d).toBe(0x24d); // mem, cmdline, mods, mmap, loader name
    expect(v.getUint32(4, true)).toBe(639);
    expect(v.getUint32(8, true)).toBe(63 * 1024);
    const cmdAt = v.getUint32(16, true) - MULTIBOOT_INFO_ADDR;
    expect(new TextDecoder().decode(plan.info.subarray(cmdAt, cmdAt + 5))).toBe('hello');
    const mods = v.getUint32(24, true) - MULTIBOOT_INFO_ADDR;
    expect([v.getUint32(mods, true), v.getUint32(mods + 4, true)]).toEqual([0x202000, 0x202064]);
    const mmapAt = v.getUint32(48, true) - MULTIBOOT_INFO_ADDR;
    // Fourth entry: RAM from 1 MiB to the top.
    expect([v.getUint32(mmapAt + 72, true), v.getUint32(mmapAt + 72 + 4, true), v.getUint32(mmapAt + 72 + 12, true), v.getUint32(mmapAt + 72 + 20, true)]).toEqual([20, 0x100000, 63 << 20, 1]);
  });

  it('loads the PT_LOAD segments of an ELF kernel at their physical addresses', () => {
    const f = new Uint8Array(0x200);
    const v = new DataView(f.buffer);
    f.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1]);
    v.setUint16(18, 3, true); // EM_386
    v.setUint32(24, 0x100010, true); // entry
    v.setUint32(28, 52, true); // phoff
    v.setUint16(42, 32, true);
    v.setUint16(44, 1, true);
    v.setUint32(52, 1, true); // PT_LOAD
    v.setUint32(56, 0x100, true); // offset
    v.setUint32(64, 0x100000, true); // paddr
    v.setUint32(68, 0x40, true); // filesz
    v.setUint32(72, 0x80, true); // memsz
    // The Multiboot header (no address fields) inside the loaded bytes.
    const flags = 0x3;
    v.setUint32(0x100, 0x1badb002, true);
    v.setUint32(0x104, flags, true);
    v.setUint32(0x108, (-(0x1badb002 + flags)) >>> 0, true);
    f[0x13f] = 0xcc;
    const plan = parseMultiboot(f, 16 << 20, '');
    expect([plan.loadAddr, plan.entry, plan.image.length, plan.image[0x3f], plan.image[0x40]]).toEqual([0x100000, 0x100010, 0x80, 0xcc, 0]);
  });

  it('refuses broken kernels in plain words', () => {
    expect(() => parseMultiboot(new Uint8Array(4096), 16 << 20, '')).toThrow(/neither a bzImage nor a Multiboot/);
    const k = aoutKernel();
    expect(() => parseMultiboot(k.subarray(0, 0x40), 16 << 20, '')).toThrow(/truncated/);
    expect(() => parseMultiboot(k, 2 << 20, '')).toThrow(KernelImageError); // does not fit
    const v = new DataView(k.buffer);
    v.setUint32(4, 0x00010008, true); // an unknown required feature
    v.setUint32(8, (-(0x1badb002 + 0x00010008)) >>> 0, true);
    expect(() => parseMultiboot(k, 16 << 20, '')).toThrow(/requires features/);
  });
});

describe('bootOrder', () => {
  it('puts the kernel loader first, then the -boot letters as SeaBIOS device paths', () => {
    expect(bootOrder('dc', true)).toBe('/rom@genroms/linuxboot.bin\n/pci@i0cf8/*@1,1/drive@1/disk@0\n/pci@i0cf8/*@1,1/drive@0/disk@0');
    expect(bootOrder('n', false)).toBe('/pci@i0cf8/ethernet@3/ethernet-phy@0');
  });
});

const BIOS = path.join(PUBLISH_DIR, 'firmware', 'bios.bin');

describe('a Multiboot kernel on the PC', () => {
  it.skipIf(!nasmAvailable() || !fs.existsSync(BIOS))('is entered by SeaBIOS and the loader ROM with its information block', { timeout: 120_000 }, () => {
    let out = '';
    const m = createMachine(
      {
        memoryMiB: 128,
        bios: new Uint8Array(fs.readFileSync(BIOS)),
        kernel: assemble(KERNEL),
        kernelName: 'mb.elf',
        initrd: new TextEncoder().encode('Module'),
        append: 'mb-cmdline ',
        boot: 'c',
        deterministic: true,
      },
      { debugcon: (b) => (out += String.fromCharCode(b)) },
    );
    while (!/[!X]/.test(out) && m.bus.clock.now() < 20e9 && !m.stopped) m.run(1_000_000);
    // The command line starts with the kernel's name, as GRUB and QEMU give it (argv[0]).
    expect(out).toBe('mb.elf mb-cmdline M!');
    m.run(1_000_000);
    expect(m.stopped).toBe('the CPU halted with interrupts disabled'); // its final cli; hlt
  });
});
