/**
 * tiny-linux-iso: tiny-linux's kernel and initramfs on an El Torito CD that isolinux
 * boots at once (no prompt), with the serial console on, as `--cdrom` exercises it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptInstall, candidateVersion, changelogDate, copy, run } from './lib.ts';
import type { Recipe } from './recipe.ts';
import { INITRD, READY_MARKER } from './tiny-linux/recipe.ts';

const ISOLINUX_CFG = `SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /boot/bzImage
  APPEND initrd=/boot/${INITRD} console=tty0 console=ttyS0
`;

export const tinyLinuxIso: Recipe = {
  name: 'tiny-linux-iso',
  title: 'Tiny Linux 6.1 on a CD',
  description: 'The tiny-linux kernel and initramfs on a bootable ISO 9660 CD (isolinux), booted by SeaBIOS from the ATAPI drive.',
  dependsOn: ['tiny-linux'],
  prepare() {
    aptInstall(['xorriso', 'isolinux', 'syslinux-common']);
  },
  inputs(ctx) {
    return [fs.readFileSync(fileURLToPath(import.meta.url), 'utf8'), ctx.hashOf('tiny-linux'),
      `isolinux=${candidateVersion('isolinux')}`, `syslinux-common=${candidateVersion('syslinux-common')}`, 'xorriso'];
  },
  build(out, ctx) {
    const tree = path.join(out, '.tree');
    const linux = ctx.outputOf('tiny-linux');
    copy(path.join(linux, 'bzImage'), path.join(tree, 'boot', 'bzImage'));
    copy(path.join(linux, INITRD), path.join(tree, 'boot', INITRD));
    copy('/usr/lib/ISOLINUX/isolinux.bin', path.join(tree, 'isolinux', 'isolinux.bin'));
    copy('/usr/lib/syslinux/modules/bios/ldlinux.c32', path.join(tree, 'isolinux', 'ldlinux.c32'));
    fs.writeFileSync(path.join(tree, 'isolinux', 'isolinux.cfg'), ISOLINUX_CFG);
    // Reproducible (reproducible-builds.org): every file and folder dated when the
    // isolinux package was made, which xorriso then takes for the volume's dates and UUID.
    const epoch = Math.floor(changelogDate('/usr/share/doc/isolinux/changelog.Debian.gz').getTime() / 1000);
    const stamp = (p: string): void => {
      if (fs.statSync(p).isDirectory()) for (const e of fs.readdirSync(p)) stamp(path.join(p, e));
      fs.utimesSync(p, epoch, epoch);
    };
    stamp(tree);
    run('xorriso', ['-as', 'mkisofs', '-quiet', '-V', 'TRAPDOOR', '-isohybrid-mbr', '/usr/lib/ISOLINUX/isohdpfx.bin',
      '-b', 'isolinux/isolinux.bin', '-c', 'isolinux/boot.cat', '-no-emul-boot', '-boot-load-size', '4',
      '-boot-info-table', '-o', path.join(out, 'tiny-linux.iso'), tree], { env: { SOURCE_DATE_EPOCH: String(epoch) } });
    fs.rmSync(tree, { recursive: true, force: true });
  },
  output() {
    return { files: [{ role: 'cdrom', path: 'tiny-linux.iso' }], boot: { cdrom: 'tiny-linux.iso', boot: 'd', memoryMiB: 128 }, readyMarker: READY_MARKER };
  },
};
