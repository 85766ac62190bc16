import { useEffect } from 'react';
import { usePage } from './store.ts';
import { client } from './machine-client.ts';
import { Controls } from './components/Controls.tsx';
import { Screen } from './components/Screen.tsx';
import { SerialConsole, type SerialSink } from './components/SerialConsole.tsx';
import { DevicesPanel } from './components/DevicesPanel.tsx';
import { MachineView } from './components/MachineView.tsx';
import { GuestsPanel } from './components/GuestsPanel.tsx';
import { Notices } from './components/Notices.tsx';
import { ErrorBoundary } from './components/ErrorBoundary.tsx';
import { NetworkPanel } from './components/NetworkPanel.tsx';

/** COM1 of whatever machine runs: output from the worker, typed bytes to it. */
const serialSink: SerialSink = {
  subscribe: (onData, onClear) => client.subscribeSerial(onData, onClear),
  send: (data) => client.send({ type: 'serial-in', data }),
};

/**
 * `?boot=NAME` powers on that guest as soon as the page opens (`?boot` alone: the chosen
 * default); `&deterministic=1` runs it on instruction-count time and `&pauseOn=TEXT`
 * pauses it when COM1 prints TEXT (benchmarks, tests).
 */
function autostart(): { deterministic: boolean; pauseOn?: string } | null {
  const q = new URLSearchParams(location.search);
  if (!q.has('boot')) return null;
  const name = q.get('boot');
  if (name) usePage.getState().select(name);
  return { deterministic: q.get('deterministic') === '1', pauseOn: q.get('pauseOn') ?? undefined };
}

export function App() {
  const loadManifest = usePage((s) => s.loadManifest);
  useEffect(() => {
    void loadManifest().then(() => {
      const auto = autostart();
      if (auto) void usePage.getState().powerOn(auto);
    });
  }, [loadManifest]);

  // Keep running in the background, but render only while someone can see it.
  useEffect(() => {
    const onVisibility = () => client.send({ type: 'visibility', visible: document.visibilityState === 'visible' });
    document.addEventListener('visibilitychange', onVisibility);
    return () => document.removeEventListener('visibilitychange', onVisibility);
  }, []);

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
      <Controls />
      <Notices />
      <main className="layout">
        <div className="column">
          <ErrorBoundary name="Screen">
            <Screen />
          </ErrorBoundary>
          <ErrorBoundary name="Serial console">
            <section className="panel" aria-labelledby="serial-title">
              <h2 id="serial-title">Serial console (COM1)</h2>
              <SerialConsole sink={serialSink} />
            </section>
          </ErrorBoundary>
          <ErrorBoundary name="Network">
            <NetworkPanel />
          </ErrorBoundary>
          <ErrorBoundary name="Guests">
            <GuestsPanel />
          </ErrorBoundary>
        </div>
        <div className="column">
          <ErrorBoundary name="Devices">
            <DevicesPanel />
          </ErrorBoundary>
          <ErrorBoundary name="Machine">
            <MachineView />
          </ErrorBoundary>
        </div>
      </main>
    </div>
  );
}
