/**
 * ipxe: Debian's iPXE as a Linux kernel (`ipxe.lkrn`, a bzImage that the BIOS boot
 * protocol loads like any other), with a TFTP folder it boots tiny-linux from.
 *
 * Started with `--kernel`, iPXE probes the NIC (its rtl8029 driver for the Ne2000 PCI),
 * asks DHCP for an address, takes next-server (siaddr) and the boot file name (option 67
 * or the BOOTP file field), fetches that file by TFTP and, since it starts with `#!ipxe`,
 * runs it as a script. `--boot n` gets to the same script through the firmware image's
 * pxe-ne2k_pci.rom (the same iPXE in the NIC's option ROM). The user network of QEMU, and
 * Trapdoor's, serves the folder with `-nic user,tftp=DIR,bootfile=boot.ipxe`; the router
 * hands out the same boot file whoever asks, and the guest is iPXE already, so there is
 * no chainloading loop.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptDownloadExtract, candidateVersion, copy } from './lib.ts';
import type { Recipe } from './recipe.ts';
import { INITRD, READY_MARKER, tinyLinux } from './tiny-linux/recipe.ts';

/** The folder inside the image that a user network's `tftp=` serves. */
export const TFTP_DIR = 'tftp';
export const BOOTFILE = 'boot.ipxe';

/**
 * The script iPXE runs once it has fetched it. Its names are relative: iPXE resolves
 * them against the script's own URI (tftp://<next-server>/boot.ipxe), so the same script
 * works from whichever server and folder it came. `dhcp` only when no address is
 * configured yet (the script run by hand from the iPXE shell, say): after iPXE's own
 * DHCP a second one would only cost another exchange. The kernel command line is
 * tiny-linux's own, so the serial console and the marker are where its entry says.
 */
export function bootScript(append: string): string {
  return [
    '#!ipxe',
    '# Trapdoor: boot tiny-linux over TFTP from the folder this script came from.',
    'isset ${ip} || dhcp',
    `kernel bzImage ${append}`,
    `initrd ${INITRD}`,
    'boot',
    '',
  ].join('\n');
}

const TINY_APPEND = tinyLinux.output().boot.append ?? 'console=ttyS0';

export const ipxe: Recipe = {
  name: 'ipxe',
  title: 'iPXE network boot',
  description:
    'Debian\'s iPXE (ipxe.lkrn) booted as a kernel: it gets a lease by DHCP, fetches boot.ipxe by TFTP and boots tiny-linux from the same folder. '
    + 'Run it on a user network that serves the image\'s tftp folder: npx trapdoor --image ipxe -nic user,tftp=public/images/ipxe/tftp,bootfile=boot.ipxe '
    + '(or --boot n with the firmware image\'s pxe-ne2k_pci.rom instead of the kernel).',
  dependsOn: ['tiny-linux'],
  prepare() {},
  inputs(ctx) {
    return [fs.readFileSync(fileURLToPath(import.meta.url), 'utf8'), ctx.hashOf('tiny-linux'), `ipxe=${candidateVersion('ipxe')}`];
  },
  build(out, ctx) {
    const root = aptDownloadExtract('ipxe', path.join(out, '.deb'));
    const lkrn = path.join(root, 'boot', 'ipxe.lkrn');
    if (!fs.existsSync(lkrn)) throw new Error('package ipxe has no boot/ipxe.lkrn');
    copy(lkrn, path.join(out, 'ipxe.lkrn'));
    const linux = ctx.outputOf('tiny-linux');
    copy(path.join(linux, 'bzImage'), path.join(out, TFTP_DIR, 'bzImage'));
    copy(path.join(linux, INITRD), path.join(out, TFTP_DIR, INITRD));
    fs.writeFileSync(path.join(out, TFTP_DIR, BOOTFILE), bootScript(TINY_APPEND));
    fs.rmSync(path.join(out, '.deb'), { recursive: true, force: true });
  },
  output() {
    return {
      files: [
        { role: 'kernel', path: 'ipxe.lkrn' },
        { role: 'other', path: `${TFTP_DIR}/${BOOTFILE}` },
        { role: 'other', path: `${TFTP_DIR}/bzImage` },
        { role: 'other', path: `${TFTP_DIR}/${INITRD}` },
      ],
      boot: { kernel: 'ipxe.lkrn', memoryMiB: 128, tftp: TFTP_DIR, bootfile: BOOTFILE },
      readyMarker: READY_MARKER,
    };
  },
};
