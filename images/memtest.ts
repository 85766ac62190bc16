/**
 * memtest86+ (32-bit) two ways: booted directly as a kernel (`memtest`), and from a
 * 1.44 MB floppy that syslinux boots (`memtest-floppy`), as --fda exercises it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptInstall, candidateVersion, copy, run } from './lib.ts';
import type { Recipe } from './recipe.ts';

/** Printed on the serial console when the first test of the first pass starts. */
export const MEMTEST_MARKER = 'Address test, walking ones';
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

const SYSLINUX_CFG = `SERIAL 0 115200
DEFAULT memtest
PROMPT 0
TIMEOUT 0
LABEL memtest
  KERNEL memtest.bin
  APPEND ${APPEND}
`;

export const memtestFloppy: Recipe = {
  name: 'memtest-floppy',
  title: 'memtest86+ 6 on a floppy',
  description: 'memtest86+ 32-bit on a 1.44 MB FAT floppy booted by syslinux from drive A:.',
  dependsOn: ['firmware'],
  prepare() {
    aptInstall(['syslinux', 'syslinux-common', 'mtools', 'dosfstools']);
  },
  inputs(ctx) {
    return [SOURCE, ctx.hashOf('firmware'), `syslinux=${candidateVersion('syslinux')}`];
  },
  build(out, ctx) {
    const img = path.join(out, 'memtest.img');
    run('mkfs.fat', ['-C', '-n', 'MEMTEST', img, '1440'], { quiet: true });
    run('syslinux', ['--install', img]);
    const cfg = path.join(out, 'syslinux.cfg');
    fs.writeFileSync(cfg, SYSLINUX_CFG);
    run('mcopy', ['-i', img, cfg, '::syslinux.cfg']);
    run('mcopy', ['-i', img, path.join(ctx.outputOf('firmware'), 'memtest86+ia32.bin'), '::memtest.bin']);
    fs.rmSync(cfg);
  },
  output() {
    return { files: [{ role: 'fda', path: 'memtest.img' }], boot: { fda: 'memtest.img', boot: 'a', memoryMiB: 64 }, readyMarker: MEMTEST_MARKER };
  },
};
