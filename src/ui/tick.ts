/**
 * The page's tick: one timer, four times a second, for everything the page shows that is
 * not the guest's screen: the devices' counters and plots, the speed readout, the redraw
 * figures, the serial log's accessible mirror and bursts of serial output.
 *
 * Why one timer and not one per panel: any change to the page's DOM costs Chrome's main
 * thread a whole frame of style, layout, paint, layerize and commit, about 7-12 ms in
 * traces of a tiny-linux boot almost whatever changed (the commit and layerize steps
 * cover the whole page). With a timer per panel the page had ~19 such frames a second;
 * on a two-core machine that time is taken from the guest's worker. The callbacks run in
 * one task, and the React state they set is rendered and committed in that task too
 * (flushSync: otherwise React renders in a task of its own, often after the next frame),
 * so all of a tick's changes reach the screen in one frame: about four a second.
 */
import { flushSync } from 'react-dom';

/** The tick's period: a few changes a second is what a person can read. */
export const TICK_MS = 250;

const callbacks = new Set<() => void>();
let timer: ReturnType<typeof setInterval> | null = null;

function tick(): void {
  flushSync(() => {
    for (const cb of callbacks) {
      try {
        cb();
      } catch (e) {
        // One panel's failure must not stop the others' updates.
        console.error(e);
      }
    }
  });
}

/** Run `cb` on every tick until the returned function is called. */
export function onTick(cb: () => void): () => void {
  callbacks.add(cb);
  timer ??= setInterval(tick, TICK_MS);
  return () => {
    callbacks.delete(cb);
    if (callbacks.size === 0 && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  };
}
