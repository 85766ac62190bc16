/**
 * The images manifest: what `npm run images` published into public/images, read by the
 * command line (`--image NAME`) and by the page (its guest list). No Node imports here:
 * the page bundles this file; reading it from disk is in read-manifest.ts.
 */

export type FileRole = 'bios' | 'vgabios' | 'rom' | 'kernel' | 'initrd' | 'cdrom' | 'fda' | 'hda' | 'other';

export interface ImageFile {
  role: FileRole;
  /** Relative to the folder holding manifest.json. */
  path: string;
  size: number;
  sha256: string;
}

export interface ImageBoot {
  kernel?: string;
  initrd?: string;
  append?: string;
  cdrom?: string;
  fda?: string;
  hda?: string;
  /** QEMU-style boot order letters (a, c, d, n). */
  boot?: string;
  memoryMiB?: number;
  /**
   * A network-booting image's TFTP folder (relative like the files) and the boot file
   * its DHCP answer names: what QEMU's `-nic user,tftp=DIR,bootfile=FILE` would serve it.
   */
  tftp?: string;
  bootfile?: string;
}

export interface ImageEntry {
  name: string;
  title: string;
  description: string;
  files: ImageFile[];
  /** How to boot it; empty for the firmware image, which only supplies files. */
  boot: ImageBoot;
  /** Text the guest shows once it is up (empty if none). */
  readyMarker: string;
  /** Where the marker appears: the serial console (default) or the VGA text screen. */
  markerOn?: 'serial' | 'screen';
}

export interface ImageManifest {
  version: 1;
  generated: string;
  images: ImageEntry[];
}

export const MANIFEST_NAME = 'manifest.json';

/** Validate the shape of a parsed manifest (also used by the page on fetched JSON). */
export function checkManifest(data: unknown): ImageManifest {
  const m = data as Partial<ImageManifest> | null;
  if (!m || typeof m !== 'object' || m.version !== 1 || !Array.isArray(m.images)) {
    throw new Error('the images manifest has an unknown format (expected version 1 with an image list)');
  }
  for (const image of m.images) {
    if (typeof image?.name !== 'string' || !Array.isArray(image.files) || typeof image.boot !== 'object') {
      throw new Error(`the images manifest has a malformed entry: ${JSON.stringify(image).slice(0, 80)}`);
    }
  }
  return m as ImageManifest;
}

export function findImage(manifest: ImageManifest, name: string): ImageEntry | undefined {
  return manifest.images.find((i) => i.name === name);
}
