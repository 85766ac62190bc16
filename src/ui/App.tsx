import { useEffect } from 'react';
import { isBootable, usePage } from './store.ts';

export function App() {
  const { manifest, selected, loadManifest, select } = usePage();
  useEffect(() => {
    void loadManifest();
  }, [loadManifest]);

  return (
    <div className="app">
      <header className="topbar">
        <h1>Trapdoor</h1>
        <span className="tagline">an x86 PC in a browser tab, with a view inside the machine</span>
        <span
          className={crossOriginIsolated ? 'badge ok' : 'badge bad'}
          data-testid="isolation"
          title="SharedArrayBuffer needs a cross-origin isolated page"
        >
          {crossOriginIsolated ? 'cross-origin isolated' : 'not isolated: shared memory unavailable'}
        </span>
      </header>
      <main>
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
        </section>
      </main>
    </div>
  );
}

function formatSize(bytes: number): string {
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(0)} KiB`;
  return `${bytes} B`;
}
