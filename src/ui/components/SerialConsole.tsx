/**
 * COM1 in xterm.js: guest output is written as it arrives, keystrokes and pastes go to
 * the guest's serial input. The text is mirrored into an off-screen log region so screen
 * readers (and tests) can read what the guest printed.
 */
import { useEffect, useRef } from 'react';
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';
import { onTick } from '../tick.ts';

export interface SerialSink {
  /** Subscribe to guest output (`onClear`: a new machine powered on); returns the unsubscribe function. */
  subscribe(onData: (data: Uint8Array) => void, onClear: () => void): () => void;
  /** Bytes the user typed. */
  send(data: Uint8Array): void;
}

/** How much guest output the accessible mirror keeps (the terminal keeps its own scrollback). */
const MIRROR_CHARS = 16 * 1024;
/**
 * Guest output is written to the terminal on the page's tick, so the terminal redraws with
 * the other panels a few times a second rather than on every animation frame (tick.ts);
 * within this long of a keystroke or paste it is written at once, so what the user types
 * echoes without delay.
 */
const TYPING_MS = 1000;

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
    let typedAt = -Infinity;
    const input = term.onData((text) => {
      typedAt = performance.now();
      sink.send(encoder.encode(text));
    });
    // The mirror is a log: new text is appended on each tick as its own text node (a
    // screen reader announces what was added, not the whole console again), and the
    // oldest nodes go once it holds more than MIRROR_CHARS.
    let pending = '';
    let held = 0;
    let waiting: Uint8Array[] = [];
    const stopTick = onTick(() => {
      for (const data of waiting) term.write(data);
      waiting = [];
      const el = mirror.current;
      if (!el || pending === '') return;
      el.append(pending);
      held += pending.length;
      pending = '';
      while (held > MIRROR_CHARS && el.firstChild) {
        held -= el.firstChild.textContent?.length ?? 0;
        el.firstChild.remove();
      }
    });
    const unsubscribe = sink.subscribe(
      (data) => {
        if (waiting.length === 0 && performance.now() - typedAt < TYPING_MS) term.write(data);
        else waiting.push(data);
        // Serial output is bytes; Latin-1 keeps every byte visible in the mirror.
        for (const b of data) if (b === 10 || (b >= 32 && b !== 127)) pending += String.fromCharCode(b);
      },
      () => {
        term.reset();
        waiting = [];
        pending = '';
        held = 0;
        mirror.current?.replaceChildren();
      },
    );
    // The terminal's box can change size without a window resize (the layout reflowing).
    const observer = new ResizeObserver(() => fit.fit());
    observer.observe(el);
    return () => {
      stopTick();
      observer.disconnect();
      unsubscribe();
      input.dispose();
      window.removeEventListener('resize', onResize);
      term.dispose();
    };
  }, [sink]);

  return (
    <div className="serial">
      <div ref={host} className="serial-term" data-testid="serial-terminal" />
      <pre ref={mirror} className="sr-only" data-testid="serial-text" role="log" aria-label="Serial console output (COM1)" />
    </div>
  );
}
