/**
 * Virtual time (DESIGN.md seam 6). Devices read `now()` and set timers; the machine's
 * run loop advances time (by the instruction count in deterministic mode, by the host
 * clock otherwise) and fires what is due. Timers that share a time fire in the order set.
 */
import type { Clock, TimerId } from '../bus/device.ts';

interface Timer {
  at: number;
  seq: number;
  id: TimerId;
  callback: () => void;
}

export class VirtualClock implements Clock {
  private nowNs = 0;
  /** A binary min-heap on (at, seq). */
  private readonly heap: Timer[] = [];
  private readonly cancelled = new Set<TimerId>();
  private nextId = 1;
  private seq = 0;

  /**
   * Where time stands inside a run slice (the machine's run loop advances nowNs only
   * between slices): instructions retired so far, or the host clock. Devices that are
   * read in a tight loop, like the PIT during Linux's TSC calibration, need it.
   */
  progress: (() => number) | null = null;

  now(): number {
    const p = this.progress;
    if (p === null) return this.nowNs;
    const t = p();
    return t > this.nowNs ? t : this.nowNs;
  }

  setTimer(atNs: number, callback: () => void): TimerId {
    const t: Timer = { at: atNs, seq: this.seq++, id: this.nextId++, callback };
    this.heap.push(t);
    this.up(this.heap.length - 1);
    return t.id;
  }

  cancelTimer(id: TimerId): void {
    if (id > 0) this.cancelled.add(id);
  }

  /** Time of the earliest pending timer, or Infinity. */
  nextDeadline(): number {
    this.dropCancelled();
    return this.heap.length ? this.heap[0].at : Infinity;
  }

  /**
   * Move time forward (never backward) to `ns`, firing every timer due on the way in
   * order; during a callback now() is that timer's own time, so periodic devices re-arm
   * without drift.
   */
  advanceTo(ns: number): void {
    const progress = this.progress;
    // Timers fire at their own time: the in-slice progress must not run ahead of them.
    this.progress = null;
    for (;;) {
      this.dropCancelled();
      const top = this.heap[0];
      if (!top || top.at > ns) break;
      this.pop();
      if (top.at > this.nowNs) this.nowNs = top.at;
      top.callback();
    }
    if (ns > this.nowNs) this.nowNs = ns;
    this.progress = progress;
  }

  private dropCancelled(): void {
    while (this.heap.length && this.cancelled.has(this.heap[0].id)) {
      this.cancelled.delete(this.heap[0].id);
      this.pop();
    }
  }

  private less(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l], h[m])) m = l;
      if (r < h.length && this.less(h[r], h[m])) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m], h[i]];
      i = m;
    }
  }

  saveState(): { nowNs: number } {
    return { nowNs: this.nowNs };
  }
}
