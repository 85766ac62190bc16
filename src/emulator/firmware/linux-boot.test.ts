import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assemble, nasmAvailable } from '../cpu/testing/nasm.ts';
import { CMDLINE_ADDR, commandLineBlock, KernelImageError, LINUXBOOT_CODE, linuxbootRom, parseBzImage } from './linux-boot.ts';
import { rngSeed } from './pc-firmware.ts';
import { PUBLISH_DIR } from '../../../images/paths.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

describe('the Linux loader option ROM', () => {
  it.skipIf(!nasmAvailable())('is exactly what nasm makes of linuxboot.asm', () => {
    const bin = assemble(fs.readFileSync(path.join(here, 'linuxboot.asm'), 'utf8'));
    expect(bin.length).toBe(512);
    expect(Array.from(bin.subarray(0, LINUXBOOT_CODE.length))).toEqual(Array.from(LINUXBOOT_CODE));
    expect(bin.subarray(LINUXBOOT_CODE.length).every((b) => b === 0)).toBe(true);
  });

  it('checksums to zero as a ROM and as a PnP header', () => {
    const rom = linuxbootRom();
    expect(rom.reduce((a, b) => a + b, 0) & 0xff).toBe(0);
    expect(rom.subarray(0x1c, 0x1c + 32).reduce((a, b) => a + b, 0) & 0xff).toBe(0);
    expect(String.fromCharCode(...rom.subarray(0x1c, 0x20))).toBe('$PnP');
  });
});

describe('parseBzImage', () => {
  it('rejects what is not a bzImage in plain words', () => {
    expect(() => parseBzImage(new Uint8Array(100), 64 << 20, 0, '')).toThrow(KernelImageError);
    expect(() => parseBzImage(new Uint8Array(8192), 64 << 20, 0, '')).toThrow(/no Linux boot header/);
  });

  const kernel = path.join(PUBLISH_DIR, 'tiny-linux', 'bzImage');
  it.skipIf(!fs.existsSync(kernel))('places the tiny-linux kernel and its initrd as QEMU does', () => {
    const image = new Uint8Array(fs.readFileSync(kernel));
    const plan = parseBzImage(image, 128 << 20, 1_000_000, 'console=ttyS0');
    expect(plan.protocol).toBeGreaterThanOrEqual(0x20f);
    expect(plan.setup[0x210]).toBe(0xb0);
    expect(plan.initrdAddr % 4096).toBe(0);
    expect(plan.initrdAddr + 1_000_000).toBeLessThan((128 << 20) - 0x28000);
    expect(plan.setup.length + plan.kernel.length).toBe(image.length);
    // A truncated file is caught before boot.
    expect(() => parseBzImage(image.subarray(0, plan.setup.length - 100), 128 << 20, 0, '')).toThrow(KernelImageError);
  });
});

describe('the RNG seed as setup_data', () => {
  const seed = Uint8Array.from({ length: 32 }, (_, i) => 0xa0 + i);
  it('follows the command line as one SETUP_RNG_SEED node the header links to', () => {
    const setup = new Uint8Array(0x400);
    const block = commandLineBlock(setup, 0x20f, 'console=ttyS0', seed);
    const text = new TextDecoder().decode(block.subarray(0, 14));
    expect(text).toBe('console=ttyS0\0');
    const v = new DataView(block.buffer);
    const at = new DataView(setup.buffer).getUint32(0x250, true) - CMDLINE_ADDR;
    expect(at).toBe(16);
    expect(new DataView(setup.buffer).getUint32(0x254, true)).toBe(0);
    expect(v.getBigUint64(at, true)).toBe(0n); // the last node
    expect(v.getUint32(at + 8, true)).toBe(9); // SETUP_RNG_SEED
    expect(v.getUint32(at + 12, true)).toBe(32);
    expect(Array.from(block.subarray(at + 16))).toEqual(Array.from(seed));
  });

  it('is left out for a kernel older than boot protocol 2.09, which has no setup_data field', () => {
    const setup = new Uint8Array(0x400);
    expect(commandLineBlock(setup, 0x208, 'quiet', seed)).toEqual(new TextEncoder().encode('quiet\0'));
    expect(setup.every((b) => b === 0)).toBe(true);
  });

  it('repeats in deterministic mode and comes from the host otherwise', () => {
    expect(rngSeed(true)).toEqual(rngSeed(true));
    expect(rngSeed(false)).not.toEqual(rngSeed(false));
    expect(rngSeed(false).length).toBe(32);
  });
});
