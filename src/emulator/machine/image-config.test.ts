/** From the manifest and the user's files to a MachineConfig, and why a file cannot be used. */
import { describe, expect, it } from 'vitest';
import { buildMachineConfig, checkMedium, firmwarePaths, guessRole, ImageConfigError, planImage } from './image-config.ts';
import type { ImageManifest } from '../../../images/manifest.ts';

const manifest: ImageManifest = {
  version: 1,
  generated: '2026-01-01T00:00:00Z',
  images: [
    {
      name: 'firmware', title: 'Firmware', description: '', readyMarker: '', boot: {},
      files: [
        { role: 'bios', path: 'firmware/bios.bin', size: 131072, sha256: '' },
        { role: 'vgabios', path: 'firmware/vgabios-stdvga.bin', size: 39936, sha256: '' },
        { role: 'vgabios', path: 'firmware/vgabios.bin', size: 38400, sha256: '' },
      ],
    },
    {
      name: 'linux', title: 'Linux', description: '', readyMarker: 'READY', files: [],
      boot: { kernel: 'linux/bzImage', initrd: 'linux/initrd', append: 'console=ttyS0', memoryMiB: 64 },
    },
  ],
};

const bios = new Uint8Array(65536);
/** Bytes with `text` at `at`. */
function withText(size: number, at: number, text: string): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < text.length; i++) b[at + i] = text.charCodeAt(i);
  return b;
}

describe('image-config', () => {
  it('plans an image of the manifest and finds the firmware', () => {
    expect(planImage(manifest, 'linux')).toEqual({
      files: { kernel: 'linux/bzImage', initrd: 'linux/initrd' }, append: 'console=ttyS0', memoryMiB: 64,
    });
    expect(firmwarePaths(manifest)).toEqual({ bios: 'firmware/bios.bin', vgaBios: 'firmware/vgabios-stdvga.bin' });
    expect(() => planImage(manifest, 'nope')).toThrow(/no image named 'nope'; built: firmware, linux/);
  });

  it('builds a config with the shared defaults: 128 MiB, the CD first when there is no disk', () => {
    const iso = withText(20 * 2048, 16 * 2048 + 1, 'CD001');
    const cd = buildMachineConfig({ bios, cdrom: iso, deterministic: true });
    expect(cd.memoryMiB).toBe(128);
    expect(cd.boot).toBe('dc');
    expect(cd.cdrom?.readOnly).toBe(true);
    const disk = buildMachineConfig({ bios, hda: new Uint8Array(1024), cdrom: iso, deterministic: false, memoryMiB: 32 });
    expect(disk.boot).toBe('cad');
    expect(disk.memoryMiB).toBe(32);
    expect(disk.hda?.readOnly).toBe(false);
  });

  it('refuses unusable files in plain words, naming them', () => {
    const fail = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(ImageConfigError);
        return (e as ImageConfigError).message;
      }
      throw new Error('did not throw');
    };
    expect(fail(() => buildMachineConfig({ bios: new Uint8Array(1000), deterministic: true }))).toMatch(/bios is 1000 bytes, not a multiple of 64 KiB/);
    expect(fail(() => buildMachineConfig({ bios, initrd: new Uint8Array(10), deterministic: true }))).toMatch(/initrd needs a kernel/);
    expect(checkMedium('cdrom', 'x.iso', new Uint8Array(5000))).toMatch(/x\.iso \(5000 bytes\) is not a whole number of 2048-byte CD sectors/);
    expect(checkMedium('hda', 'd.qcow2', withText(4096, 0, 'QFI\xfb'))).toMatch(/qcow2 image.*qemu-img convert -O raw d\.qcow2/);
    expect(checkMedium('hda', 'd.vmdk', withText(4096, 0, 'KDMV'))).toMatch(/VMDK/);
    expect(checkMedium('hda', 'odd.img', new Uint8Array(1000))).toMatch(/not a whole number of 512-byte sectors/);
    expect(checkMedium('fda', 'f.img', new Uint8Array(1000 * 1024))).toMatch(/floppy image is exactly one of .*1\.4 MiB/);
    expect(checkMedium('kernel', 'vmlinux', withText(8192, 0, '\x7fELF'))).toMatch(/ELF file without a Multiboot header/);
    expect(checkMedium('kernel', 'junk', new Uint8Array(8192))).toMatch(/neither a Linux bzImage nor a Multiboot kernel/);
    expect(checkMedium('hda', 'empty', new Uint8Array(0))).toBe('empty is empty.');
    // Usable ones pass.
    expect(checkMedium('kernel', 'bzImage', withText(8192, 0x202, 'HdrS'))).toBeUndefined();
    expect(checkMedium('fda', 'a.img', new Uint8Array(1474560))).toBeUndefined();
    expect(checkMedium('hda', 'fixed.vhd', withText(2048, 1536, 'conectix'))).toBeUndefined();
  });

  it('recognises a Multiboot kernel by its header checksum', () => {
    const k = new Uint8Array(8192);
    const v = new DataView(k.buffer);
    v.setUint32(64, 0x1badb002, true);
    v.setUint32(68, 0x00010003, true);
    v.setUint32(72, (-(0x1badb002 + 0x00010003)) >>> 0, true);
    expect(checkMedium('kernel', 'mb.bin', k)).toBeUndefined();
    expect(guessRole('mb.bin', k)).toBe('kernel');
    v.setUint32(72, 0, true); // wrong checksum: not a header
    expect(checkMedium('kernel', 'mb.bin', k)).toMatch(/neither/);
  });

  it('guesses what a dropped file is from its head, size and name', () => {
    expect(guessRole('x.bin', withText(0x9000, 16 * 2048 + 1, 'CD001'))).toBe('cdrom');
    expect(guessRole('whatever', withText(8192, 0x202, 'HdrS'))).toBe('kernel');
    expect(guessRole('initramfs.cpio.gz', new Uint8Array(100))).toBe('initrd');
    expect(guessRole('dos.img', new Uint8Array(65536), 1474560)).toBe('fda');
    // memtest86+ on a floppy carries a bzImage header too: the floppy size decides.
    expect(guessRole('memtest.img', withText(65536, 0x202, 'HdrS'), 1474560)).toBe('fda');
    expect(guessRole('disk.raw', new Uint8Array(65536), 64 << 20)).toBe('hda');
  });
});
