/**
 * COM1 in xterm.js: guest output is written as it arrives, keystrokes and pastes go to
 * the guest's serial input. The text is mirrored into an off-screen, polite live region
 * so screen readers (and tests) can read what the guest printed.
 */
import { useEffect, useRef } from 'react';
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';

export interface SerialSink {
  /** Subscribe to guest output; returns the unsubscribe function. */
  subscribe(onData: (data: Uint8Array) => void): () => void;
  /** Bytes the user typed. */
  send(data: Uint8Array): void;
}

/** How much guest output the accessible mirror keeps (the terminal keeps its own scrollback). */
const MIRROR_CHARS = 16 * 1024;

export function SerialConsole({ sink }: { sink: SerialSink }) {
  const host = useRef<HTMLDivElement>(null);
  const mirror = useRef<HTMLPreElement>(null);

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const term = new Terminal({
      convertEol: false,
      scrollback: 5000,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", monospace',
      fontSize: 13,
      theme: { background: '#0b0d10' },
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(el);
    fit.fit();
    const onResize = () => fit.fit();
    window.addEventListener('resize', onResize);
    const encoder = new TextEncoder();
    // onData covers typing and paste alike (xterm turns a paste into one data event).
    const input = term.onData((text) => sink.send(encoder.encode(text)));
    let text = '';
    const unsubscribe = sink.subscribe((data) => {
      term.write(data);
      // Serial output is bytes; Latin-1 keeps every byte visible in the mirror.
      let chunk = '';
      for (const b of data) if (b === 10 || (b >= 32 && b !== 127)) chunk += String.fromCharCode(b);
      text = (text + chunk).slice(-MIRROR_CHARS);
      if (mirror.current) mirror.current.textContent = text;
    });
    return () => {
      unsubscribe();
      input.dispose();
      window.removeEventListener('resize', onResize);
      term.dispose();
    };
  }, [sink]);

  return (
    <div className="serial">
      <div ref={host} className="serial-term" data-testid="serial-terminal" />
      <pre ref={mirror} className="sr-only" data-testid="serial-text" aria-live="polite" aria-label="Serial console output" />
    </div>
  );
}
