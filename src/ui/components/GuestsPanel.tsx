/**
 * Which guest to boot: the images of the manifest, or the user's own files, dropped onto
 * the page or picked, each as a CD, hard disk, floppy, kernel or initrd (guessed from its
 * contents, changeable before booting again).
 */
import { useEffect, useRef, useState } from 'react';
import { guessRole, MEDIUM_ROLES, type MediumRole } from '../../emulator/machine/image-config.ts';
import { isBootable, usePage, type ChosenFile } from '../store.ts';

const ROLE_NAMES: Record<MediumRole, string> = { cdrom: 'CD-ROM', hda: 'hard disk', fda: 'floppy', kernel: 'kernel', initrd: 'initrd' };

/** Guess each file's role from its first 64 KiB and its size. */
async function guessRoles(files: File[]): Promise<ChosenFile[]> {
  return Promise.all(
    files.map(async (file) => {
      const head = new Uint8Array(await file.slice(0, 64 * 1024).arrayBuffer());
      return { file, role: guessRole(file.name, head, file.size) };
    }),
  );
}

export function GuestsPanel() {
  const { manifest, selected, select, bootFiles, append, setAppend } = usePage();
  const [chosen, setChosen] = useState<ChosenFile[]>([]);
  const [dragging, setDragging] = useState(false);
  const picker = useRef<HTMLInputElement>(null);

  const takeFiles = async (files: File[]) => {
    if (files.length === 0) return;
    const list = await guessRoles(files);
    setChosen(list);
    void bootFiles(list);
  };

  // The whole page is a drop target.
  useEffect(() => {
    let depth = 0;
    const hasFiles = (e: DragEvent) => Array.from(e.dataTransfer?.types ?? []).includes('Files');
    const enter = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      depth++;
      setDragging(true);
    };
    const leave = () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) setDragging(false);
    };
    const over = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
    };
    const drop = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth = 0;
      setDragging(false);
      void takeFiles(Array.from(e.dataTransfer?.files ?? []));
    };
    document.addEventListener('dragenter', enter);
    document.addEventListener('dragleave', leave);
    document.addEventListener('dragover', over);
    document.addEventListener('drop', drop);
    return () => {
      document.removeEventListener('dragenter', enter);
      document.removeEventListener('dragleave', leave);
      document.removeEventListener('dragover', over);
      document.removeEventListener('drop', drop);
    };
    // takeFiles only reads the store through stable actions.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  return (
    <section className="panel" aria-labelledby="guests-title">
      <h2 id="guests-title">Guests</h2>
      {manifest.kind === 'loading' && <p>Loading the image list…</p>}
      {manifest.kind === 'missing' && (
        <p role="alert" className="error">
          {manifest.message}
        </p>
      )}
      {manifest.kind === 'ready' && (
        <ul className="images" data-testid="image-list">
          {manifest.manifest.images.map((image) => (
            <li key={image.name} data-testid={`image-${image.name}`}>
              <label>
                <input
                  type="radio"
                  name="guest"
                  value={image.name}
                  disabled={!isBootable(image)}
                  checked={selected === image.name}
                  onChange={() => select(image.name)}
                />
                <strong>{image.title}</strong> <code>{image.name}</code>
              </label>
              <p>{image.description}</p>
              <p className="files">
                {image.files.map((f) => `${f.path.split('/').pop()} (${formatSize(f.size)})`).join(' · ')}
              </p>
            </li>
          ))}
        </ul>
      )}
      <div className={dragging ? 'dropzone active' : 'dropzone'} data-testid="dropzone">
        <p>
          Drop your own file anywhere on the page, or{' '}
          <button type="button" onClick={() => picker.current?.click()}>pick files</button>: an ISO boots as a CD, a raw disk image as the
          hard disk, a 1.44 MB image as a floppy, a bzImage (with its initrd) or a Multiboot kernel as a kernel. Nothing leaves your browser.
        </p>
        <input
          ref={picker}
          type="file"
          multiple
          hidden
          data-testid="file-input"
          onChange={(e) => {
            void takeFiles(Array.from(e.target.files ?? []));
            e.target.value = '';
          }}
        />
        {chosen.length > 0 && (
          <div className="chosen" data-testid="chosen-files">
            {chosen.map((c, i) => (
              <label key={c.file.name + i}>
                {c.file.name} ({formatSize(c.file.size)}) as{' '}
                <select
                  value={c.role}
                  aria-label={`Role of ${c.file.name}`}
                  onChange={(e) => setChosen(chosen.map((x, j) => (j === i ? { ...x, role: e.target.value as MediumRole } : x)))}
                >
                  {MEDIUM_ROLES.map((r) => <option key={r} value={r}>{ROLE_NAMES[r]}</option>)}
                </select>
              </label>
            ))}
            {chosen.some((c) => c.role === 'kernel') && (
              <label>
                kernel command line <input type="text" value={append} onChange={(e) => setAppend(e.target.value)} size={40} />
              </label>
            )}
            <button type="button" onClick={() => void bootFiles(chosen)}>Boot these</button>
          </div>
        )}
      </div>
    </section>
  );
}

function formatSize(bytes: number): string {
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(0)} KiB`;
  return `${bytes} B`;
}
