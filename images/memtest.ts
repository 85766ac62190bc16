/**
 * memtest86+ (32-bit) two ways: booted directly as a kernel (`memtest`), and from a
 * 1.44 MB floppy that syslinux boots (`memtest-floppy`), as --fda exercises it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { copy } from './lib.ts';
import type { Recipe } from './recipe.ts';

/** Printed on the serial console when the first test of the first pass starts. */
export const MEMTEST_MARKER = 'Address test, walking ones';
/** On the screen the first test flashes by between two polls; the status line stays while tests run. */
export const MEMTEST_SCREEN_MARKER = 'Status: Testing';
const APPEND = 'console=ttyS0,115200';
const SOURCE = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8');

export const memtest: Recipe = {
  name: 'memtest',
  title: 'memtest86+ 6 (kernel)',
  description: 'memtest86+ 32-bit booted directly as a kernel; its screen goes to the VGA and, as VT100 text, to the serial port.',
  dependsOn: ['firmware'],
  prepare() {},
  inputs(ctx) {
    return [SOURCE, ctx.hashOf('firmware')];
  },
  build(out, ctx) {
    copy(path.join(ctx.outputOf('firmware'), 'memtest86+ia32.bin'), path.join(out, 'memtest.bin'));
  },
  output() {
    return { files: [{ role: 'kernel', path: 'memtest.bin' }], boot: { kernel: 'memtest.bin', append: APPEND, memoryMiB: 64 }, readyMarker: MEMTEST_MARKER };
  },
};

/** A 1.44 MB floppy's size: memtest86+'s .bin starts with a boot sector that loads the rest from the disk. */
const FLOPPY_BYTES = 1440 * 1024;

export const memtestFloppy: Recipe = {
  name: 'memtest-floppy',
  title: 'memtest86+ 6 on a floppy',
  description: 'memtest86+ 32-bit written raw to a 1.44 MB floppy (its own boot sector loads it) and booted from drive A:. It draws on the VGA text screen only, so its marker is looked for there.',
  dependsOn: ['firmware'],
  prepare() {},
  inputs(ctx) {
    return [SOURCE, ctx.hashOf('firmware')];
  },
  build(out, ctx) {
    const bin = fs.readFileSync(path.join(ctx.outputOf('firmware'), 'memtest86+ia32.bin'));
    if (bin.length > FLOPPY_BYTES || bin[510] !== 0x55 || bin[511] !== 0xaa) {
      throw new Error('memtest86+ia32.bin has no boot sector or does not fit a 1.44 MB floppy');
    }
    const img = Buffer.alloc(FLOPPY_BYTES);
    bin.copy(img);
    fs.writeFileSync(path.join(out, 'memtest.img'), img);
  },
  output() {
    return { files: [{ role: 'fda', path: 'memtest.img' }], boot: { fda: 'memtest.img', boot: 'a', memoryMiB: 64 }, readyMarker: MEMTEST_SCREEN_MARKER, markerOn: 'screen' };
  },
};
