/**
 * firmware: the ROMs every other image boots with, straight from Debian's packages
 * (downloaded and unpacked, not installed, so the versions are exactly the candidates).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptDownloadExtract, candidateVersion, copy } from './lib.ts';
import type { Recipe } from './recipe.ts';

/** Package, file inside it, name published. */
const FILES = [
  { pkg: 'seabios', from: 'usr/share/seabios/bios.bin', to: 'bios.bin', role: 'bios' },
  { pkg: 'seabios', from: 'usr/share/seabios/vgabios-stdvga.bin', to: 'vgabios-stdvga.bin', role: 'vgabios' },
  { pkg: 'vgabios', from: 'usr/share/vgabios/vgabios.bin', to: 'vgabios.bin', role: 'vgabios' },
  { pkg: 'ipxe-qemu', from: 'usr/lib/ipxe/qemu/pxe-ne2k_pci.rom', to: 'pxe-ne2k_pci.rom', role: 'rom' },
  { pkg: 'memtest86+', from: 'boot/memtest86+ia32.bin', to: 'memtest86+ia32.bin', role: 'kernel' },
] as const;

const PACKAGES = [...new Set(FILES.map((f) => f.pkg))];

export const firmware: Recipe = {
  name: 'firmware',
  title: 'Firmware',
  description: 'SeaBIOS and its std VGA BIOS (as QEMU uses them), the LGPL VGABios, iPXE\'s Ne2000 PCI boot ROM and memtest86+ (32-bit), from Debian\'s packages.',
  dependsOn: [],
  prepare() {},
  inputs() {
    return [fs.readFileSync(fileURLToPath(import.meta.url), 'utf8'), ...PACKAGES.map((p) => `${p}=${candidateVersion(p)}`)];
  },
  build(out) {
    const roots = new Map<string, string>();
    for (const p of PACKAGES) roots.set(p, aptDownloadExtract(p, path.join(out, '.deb', p)));
    for (const f of FILES) {
      const src = path.join(roots.get(f.pkg)!, f.from);
      if (!fs.existsSync(src)) throw new Error(`package ${f.pkg} has no ${f.from}`);
      copy(src, path.join(out, f.to));
    }
    fs.rmSync(path.join(out, '.deb'), { recursive: true, force: true });
  },
  output() {
    return { files: FILES.map((f) => ({ role: f.role, path: f.to })), boot: {}, readyMarker: '' };
  },
};
