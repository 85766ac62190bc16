/**
 * The VGA screen: a canvas that copies the rectangles the worker's VgaRenderer says it
 * redrew (vga-contract: FrameInfo.rects) from the shared RGBA frame, once per animation
 * frame, then tells the worker it may render the next one. While the tab is hidden no
 * animation frame runs, so nothing is acknowledged and the worker stops rendering.
 *
 * Input: a click on the screen captures the keyboard (keys go to the guest's PS/2
 * keyboard as set 2 scan codes; Ctrl+Alt+G or clicking elsewhere releases it), and "Lock
 * mouse" uses pointer lock to feed the PS/2 mouse (Esc releases it, as the browser says).
 */
import { useCallback, useEffect, useRef, useState, type KeyboardEvent } from 'react';
import { client } from '../machine-client.ts';
import { usePage } from '../store.ts';
import { set2Scancodes } from '../keymap.ts';
import { onTick } from '../tick.ts';
import type { FromWorker } from '../../worker/protocol.ts';

type FrameMessage = Extract<FromWorker, { type: 'frame' }>;

interface Shown {
  width: number;
  height: number;
  mode: string;
  /** Redrawn fraction of the last frame, and the mean over the last second. */
  last: number;
  mean: number;
  fps: number;
}

export function Screen() {
  const canvas = useRef<HTMLCanvasElement>(null);
  const share = usePage((s) => s.share);
  const phase = usePage((s) => s.phase);
  const [lastShown, setShown] = useState<Shown | null>(null);
  const shown = share ? lastShown : null;
  const [captured, setCaptured] = useState(false);
  const [locked, setLocked] = useState(false);
  const held = useRef(new Set<string>());
  const textMirror = useRef<HTMLPreElement>(null);

  // Frames: blit the dirty rectangles, acknowledge, keep the redraw statistics.
  useEffect(() => {
    const el = canvas.current;
    const ctx = el?.getContext('2d', { alpha: false });
    if (!el || !ctx) return;
    const shared = share?.frame ? new Uint8ClampedArray(share.frame) : null;
    let image: ImageData | null = null;
    let pending: FrameMessage | null = null;
    let raf = 0;
    let recent: { t: number; fraction: number }[] = [];
    let latest: FrameMessage['info'] | null = null;
    /** What the screen says, for screen readers and tests: written to the DOM on the tick. */
    let mirrorText: string | null = null;

    const blit = (m: FrameMessage) => {
      const { width: w, height: h, rects } = m.info;
      if (w === 0 || h === 0) return;
      if (el.width !== w || el.height !== h || !image) {
        el.width = w;
        el.height = h;
        image = new ImageData(w, h);
      }
      const src = m.pixels ? new Uint8ClampedArray(m.pixels) : shared;
      if (!src) return;
      const dst = image.data;
      const stride = w * 4;
      for (const r of rects) {
        for (let y = r.y; y < r.y + r.h; y++) {
          const at = y * stride + r.x * 4;
          dst.set(src.subarray(at, at + r.w * 4), at);
        }
        ctx.putImageData(image, 0, 0, r.x, r.y, r.w, r.h);
      }
    };

    const draw = (now: number) => {
      raf = 0;
      const m = pending;
      pending = null;
      if (!m) return;
      blit(m);
      client.send({ type: 'frame-ack' });
      if (m.text || m.info.mode !== 'text') mirrorText = m.text ? m.text.join('\n') : `(${m.info.mode} mode, ${m.info.width}×${m.info.height})`;
      latest = m.info;
      recent.push({ t: now, fraction: m.info.redrawnFraction });
    };

    // The figures change on the page's tick, with the other panels (tick.ts).
    let shownKey = '';
    const stopTick = onTick(() => {
      if (mirrorText !== null && textMirror.current) {
        textMirror.current.textContent = mirrorText;
        mirrorText = null;
      }
      if (!latest) return;
      const now = performance.now();
      recent = recent.filter((f) => now - f.t <= 1000);
      const mean = recent.length > 0 ? recent.reduce((a, f) => a + f.fraction, 0) / recent.length : 0;
      const next = { width: latest.width, height: latest.height, mode: latest.mode, last: latest.redrawnFraction, mean, fps: recent.length };
      const key = JSON.stringify(next);
      if (key === shownKey) return;
      shownKey = key;
      setShown(next);
    });

    const unsubscribe = client.subscribeFrames((m) => {
      pending = m;
      if (!raf) raf = requestAnimationFrame(draw);
    });
    // A (re)mounted canvas is blank: have the worker redraw everything.
    client.send({ type: 'visibility', visible: document.visibilityState === 'visible' });
    return () => {
      stopTick();
      unsubscribe();
      if (raf) cancelAnimationFrame(raf);
      // A frame taken but not drawn would stall the worker's frames.
      if (pending) client.send({ type: 'frame-ack' });
    };
  }, [share]);

  // Keyboard capture.
  const releaseKeys = useCallback(() => {
    for (const code of held.current) client.send({ type: 'key', scancodes: set2Scancodes(code, false) });
    held.current.clear();
  }, []);
  const capture = () => {
    canvas.current?.focus();
    setCaptured(true);
  };
  const release = useCallback(() => {
    releaseKeys();
    setCaptured(false);
    canvas.current?.blur();
  }, [releaseKeys]);
  const onKey = (e: KeyboardEvent, down: boolean) => {
    if (!captured) return;
    if (down && e.ctrlKey && e.altKey && e.code === 'KeyG') {
      e.preventDefault();
      release();
      return;
    }
    const codes = set2Scancodes(e.code, down);
    if (codes.length === 0) return;
    e.preventDefault();
    if (down) held.current.add(e.code);
    else held.current.delete(e.code);
    client.send({ type: 'key', scancodes: codes });
  };

  // Pointer lock for the PS/2 mouse: movements batched per animation frame.
  useEffect(() => {
    const el = canvas.current;
    if (!el) return;
    let dx = 0, dy = 0, wheel = 0, buttons = 0, raf = 0;
    const flush = () => {
      raf = 0;
      if (dx || dy || wheel) client.send({ type: 'mouse', dx, dy, buttons, wheel });
      dx = dy = wheel = 0;
    };
    const schedule = () => {
      if (!raf) raf = requestAnimationFrame(flush);
    };
    const isLocked = () => document.pointerLockElement === el;
    const onMove = (e: MouseEvent) => {
      if (!isLocked()) return;
      dx += e.movementX;
      dy -= e.movementY; // PS/2 counts up as positive
      schedule();
    };
    // Browser buttons: bit 0 left, 1 right, 2 middle, the PS/2 packet's order too.
    const onButton = (e: MouseEvent) => {
      if (!isLocked()) return;
      buttons = e.buttons & 7;
      client.send({ type: 'mouse', dx, dy, buttons, wheel });
      dx = dy = wheel = 0;
    };
    const onWheel = (e: WheelEvent) => {
      if (!isLocked()) return;
      e.preventDefault();
      wheel += Math.sign(e.deltaY);
      schedule();
    };
    const onLock = () => setLocked(isLocked());
    document.addEventListener('mousemove', onMove);
    document.addEventListener('mousedown', onButton);
    document.addEventListener('mouseup', onButton);
    document.addEventListener('wheel', onWheel, { passive: false });
    document.addEventListener('pointerlockchange', onLock);
    return () => {
      if (raf) cancelAnimationFrame(raf);
      document.removeEventListener('mousemove', onMove);
      document.removeEventListener('mousedown', onButton);
      document.removeEventListener('mouseup', onButton);
      document.removeEventListener('wheel', onWheel);
      document.removeEventListener('pointerlockchange', onLock);
    };
  }, []);

  const lockMouse = () => {
    const el = canvas.current;
    if (!el) return;
    capture();
    const r = el.requestPointerLock() as unknown;
    if (r instanceof Promise) r.catch(() => usePage.getState().notify('info', 'The browser refused to lock the mouse pointer.', 'Click the screen first, then try again.'));
  };

  const on = phase !== 'off' && phase !== 'loading';
  const aspect = shown && (shown.width > 720 || shown.height > 480) ? `${shown.width} / ${shown.height}` : '4 / 3';
  return (
    <section className="panel screen-panel" aria-labelledby="screen-title">
      <div className="panel-head">
        <h2 id="screen-title">Screen</h2>
        <span className="screen-info" data-testid="screen-mode">
          {shown ? `${shown.width}×${shown.height} ${shown.mode}` : 'no signal'}
        </span>
        <span
          className="screen-info"
          data-testid="redrawn-fraction"
          data-value={shown?.last ?? 0}
          data-mean={shown?.mean ?? 0}
          title="Share of the screen's pixels redrawn by the last frame, and the mean over the last second's frames"
        >
          redrawn {pct(shown?.last ?? 0)} per frame (mean {pct(shown?.mean ?? 0)} over {shown?.fps ?? 0} frames/s)
        </span>
        <span className="spacer" />
        <button type="button" onClick={captured ? release : capture} disabled={!on} aria-pressed={captured}>
          {captured ? 'Release keyboard (Ctrl+Alt+G)' : 'Capture keyboard'}
        </button>
        <button type="button" onClick={lockMouse} disabled={!on || locked}>
          {locked ? 'Mouse locked (Esc)' : 'Lock mouse'}
        </button>
      </div>
      <div className={captured ? 'screen captured' : 'screen'}>
        <canvas
          ref={canvas}
          data-testid="screen"
          tabIndex={0}
          style={{ aspectRatio: aspect }}
          aria-label={captured ? 'Guest screen, keyboard captured: Ctrl+Alt+G releases it' : 'Guest screen: click to type into the guest'}
          onClick={() => (captured ? undefined : capture())}
          onKeyDown={(e) => onKey(e, true)}
          onKeyUp={(e) => onKey(e, false)}
          onBlur={() => {
            if (captured) release();
          }}
        />
        <pre ref={textMirror} className="sr-only" data-testid="screen-text" aria-label="Text on the guest's screen" />
        {!on && <div className="screen-off">{phase === 'loading' ? 'Loading…' : 'Powered off'}</div>}
      </div>
    </section>
  );
}

function pct(f: number): string {
  return `${(f * 100).toFixed(f < 0.01 && f > 0 ? 2 : 1)}%`;
}
