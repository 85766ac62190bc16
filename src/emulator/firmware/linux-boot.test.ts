import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assemble, nasmAvailable } from '../cpu/testing/nasm.ts';
import { KernelImageError, LINUXBOOT_CODE, linuxbootRom, parseBzImage } from './linux-boot.ts';
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
