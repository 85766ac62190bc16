/**
 * The page's state (zustand): which guests exist and which one is chosen. The machine
 * itself lives in a worker; the store only holds what the page shows.
 */
import { create } from 'zustand';
import { checkManifest, type ImageEntry, type ImageManifest } from '../../images/manifest.ts';

export type ManifestStatus =
  | { kind: 'loading' }
  | { kind: 'ready'; manifest: ImageManifest }
  | { kind: 'missing'; message: string };

interface PageState {
  manifest: ManifestStatus;
  selected: string | undefined;
  loadManifest(): Promise<void>;
  select(name: string): void;
}

/** The default guest, as the README promises. */
export const DEFAULT_IMAGE = 'tiny-linux';

export const usePage = create<PageState>((set, get) => ({
  manifest: { kind: 'loading' },
  selected: undefined,
  async loadManifest() {
    try {
      const res = await fetch('/images/manifest.json', { cache: 'no-cache' });
      if (!res.ok) throw new Error(`the server answered ${res.status}`);
      const manifest: ImageManifest = checkManifest(await res.json());
      const bootable = manifest.images.filter(isBootable);
      const selected = get().selected ?? (bootable.find((i) => i.name === DEFAULT_IMAGE) ?? bootable[0])?.name;
      set({ manifest: { kind: 'ready', manifest }, selected });
    } catch (e) {
      set({ manifest: { kind: 'missing', message: `No guest images: ${(e as Error).message}. Run 'npm run images' and reload.` } });
    }
  },
  select(name) {
    set({ selected: name });
  },
}));

/** The firmware image is only files for the others; everything else can be booted. */
export function isBootable(image: ImageEntry): boolean {
  const b = image.boot;
  return Boolean(b.kernel || b.cdrom || b.hda || b.fda);
}
