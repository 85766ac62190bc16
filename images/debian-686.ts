/**
 * debian-686: Debian's stock i386 `linux-image-686` kernel with the busybox initramfs,
 * which also carries and loads the kernel's own 8390.ko and ne2k-pci.ko.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptDownloadExtract, candidateVersion, copy, depends, enableI386 } from './lib.ts';
import { buildInitramfs, genInitCpio, initramfsInputs } from './initramfs/initramfs.ts';
import type { Recipe } from './recipe.ts';
import { linuxSource, READY_MARKER } from './tiny-linux/recipe.ts';

/** The metapackage names the real kernel package (linux-image-6.1.0-NN-686) in its Depends. */
function kernelPackage(): string {
  const real = depends('linux-image-686:i386').find((d) => /^linux-image-\d/.test(d));
  if (!real) throw new Error('linux-image-686:i386 names no linux-image-<version> package');
  return real.includes(':') ? real : `${real}:i386`;
}

function findFile(root: string, name: string): string | undefined {
  for (const entry of fs.readdirSync(root, { withFileTypes: true })) {
    const p = path.join(root, entry.name);
    if (entry.isDirectory()) {
      const hit = findFile(p, name);
      if (hit) return hit;
    } else if (entry.name === name) return p;
  }
  return undefined;
}

export const debian686: Recipe = {
  name: 'debian-686',
  title: 'Debian 12 stock 686 kernel',
  description: 'Debian\'s own linux-image-686 (i386) kernel with the busybox initramfs; /init loads the kernel\'s 8390 and ne2k-pci modules.',
  dependsOn: [],
  prepare() {
    enableI386();
  },
  inputs() {
    const pkg = kernelPackage();
    return [fs.readFileSync(fileURLToPath(import.meta.url), 'utf8'), ...initramfsInputs(),
      `${pkg}=${candidateVersion(pkg)}`, candidateVersion('busybox-static:i386')];
  },
  build(out, ctx) {
    const root = aptDownloadExtract(kernelPackage(), path.join(out, '.deb'));
    const vmlinuz = fs.readdirSync(path.join(root, 'boot')).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuz) throw new Error('the kernel package has no /boot/vmlinuz-*');
    copy(path.join(root, 'boot', vmlinuz), path.join(out, 'vmlinuz'));
    const modules = ['8390.ko', 'ne2k-pci.ko'].map((m) => {
      const found = findFile(path.join(root, 'lib', 'modules'), m);
      if (!found) throw new Error(`the kernel package has no ${m} (compressed modules are not expected in Debian 12)`);
      return found;
    });
    const work = path.join(out, '.initramfs');
    fs.mkdirSync(work, { recursive: true });
    // gen_init_cpio comes from the tiny kernel's tree (same 6.1 source).
    buildInitramfs({ work, genInitCpio: genInitCpio(linuxSource(ctx), work), modules, out: path.join(out, 'initramfs.cpio.gz') });
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(path.join(out, '.deb'), { recursive: true, force: true });
  },
  output() {
    return {
      files: [{ role: 'kernel', path: 'vmlinuz' }, { role: 'initrd', path: 'initramfs.cpio.gz' }],
      // cryptomgr.notests: Debian builds the crypto self-tests in, and their RSA/ECC test
      // vectors cost an interpreted CPU about 3 G of the boot's 6.5 G instructions (measured:
      // mpihelp_submul_1 and friends). The kernel is unchanged; only its command line.
      boot: { kernel: 'vmlinuz', initrd: 'initramfs.cpio.gz', append: 'console=tty0 console=ttyS0 cryptomgr.notests', memoryMiB: 128 },
      readyMarker: READY_MARKER,
    };
  },
};
