/**
 * Virtual time (DESIGN.md seam 6). Devices read `now()` and set timers; the machine's
 * run loop advances time (by the instruction count in deterministic mode, by the host
 * clock otherwise) and fires what is due. Timers that share a time fire in the order set.
 *
 * The timer queue is a binary min-heap over preallocated slots held in typed arrays, so
 * setting, cancelling and firing a timer allocate nothing once the slots have grown to
 * the machine's working set (a PIT re-arming every tick, a UART per character). A
 * TimerId carries its slot and the slot's generation, so cancelling a timer that already
 * fired (or whose slot was reused) does nothing.
 *
 * Timers are not state: callbacks cannot be saved. `loadState` drops every pending timer;
 * each device's own loadState re-arms what its saved registers imply (the machine loads
 * the clock first).
 */
import type { Clock, TimerId } from '../bus/device.ts';

/** Slot bits of a TimerId; the generation is above them. */
const SLOT_BITS = 16;
const MAX_SLOTS = 1 << SLOT_BITS;

export class VirtualClock implements Clock {
  private nowNs = 0;
  private capacity = 64;
  private at = new Float64Array(this.capacity);
  private seq = new Float64Array(this.capacity);
  private gen = new Uint32Array(this.capacity);
  /** Where each slot sits in the heap, -1 when free. */
  private heapPos = new Int32Array(this.capacity).fill(-1);
  private callbacks: ((() => void) | null)[] = new Array(this.capacity).fill(null);
  /** Heap of slot numbers ordered by (at, seq). */
  private heap = new Int32Array(this.capacity);
  private size = 0;
  /** Free slots, a stack. */
  private free = Int32Array.from({ length: this.capacity }, (_, i) => this.capacity - 1 - i);
  private freeCount = this.capacity;
  private nextSeq = 0;

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
    if (this.freeCount === 0) this.grow();
    const slot = this.free[--this.freeCount];
    const g = (this.gen[slot] + 1) >>> 0;
    this.gen[slot] = g;
    this.at[slot] = atNs;
    this.seq[slot] = this.nextSeq++;
    this.callbacks[slot] = callback;
    const i = this.size++;
    this.heap[i] = slot;
    this.heapPos[slot] = i;
    this.up(i);
    return g * MAX_SLOTS + slot;
  }

  cancelTimer(id: TimerId): void {
    if (!(id > 0)) return;
    const slot = id % MAX_SLOTS;
    if (slot >= this.capacity || this.gen[slot] !== Math.floor(id / MAX_SLOTS)) return;
    const i = this.heapPos[slot];
    if (i < 0) return;
    this.removeAt(i);
  }

  /** Number of pending timers. */
  get pending(): number {
    return this.size;
  }

  /** Time of the earliest pending timer, or Infinity. */
  nextDeadline(): number {
    return this.size > 0 ? this.at[this.heap[0]] : Infinity;
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
    try {
      while (this.size > 0) {
        const slot = this.heap[0];
        const t = this.at[slot];
        if (t > ns) break;
        const cb = this.callbacks[slot]!;
        this.removeAt(0);
        if (t > this.nowNs) this.nowNs = t;
        cb();
      }
      if (ns > this.nowNs) this.nowNs = ns;
    } finally {
      this.progress = progress;
    }
  }

  private removeAt(i: number): void {
    const h = this.heap;
    const slot = h[i];
    this.heapPos[slot] = -1;
    this.callbacks[slot] = null;
    this.free[this.freeCount++] = slot;
    const last = --this.size;
    if (i === last) return;
    const moved = h[last];
    h[i] = moved;
    this.heapPos[moved] = i;
    if (i > 0 && this.less(moved, h[(i - 1) >> 1])) this.up(i);
    else this.down(i);
  }

  private less(a: number, b: number): boolean {
    const ta = this.at[a];
    const tb = this.at[b];
    return ta < tb || (ta === tb && this.seq[a] < this.seq[b]);
  }

  private up(i: number): void {
    const h = this.heap;
    const slot = h[i];
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(slot, h[p])) break;
      h[i] = h[p];
      this.heapPos[h[i]] = i;
      i = p;
    }
    h[i] = slot;
    this.heapPos[slot] = i;
  }

  private down(i: number): void {
    const h = this.heap;
    const n = this.size;
    const slot = h[i];
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.less(h[r], h[l]) ? r : l;
      if (!this.less(h[c], slot)) break;
      h[i] = h[c];
      this.heapPos[h[i]] = i;
      i = c;
    }
    h[i] = slot;
    this.heapPos[slot] = i;
  }

  private grow(): void {
    const old = this.capacity;
    const cap = old * 2;
    if (cap > MAX_SLOTS) throw new Error(`more than ${MAX_SLOTS} timers pending: a device is leaking timers`);
    const f64 = (a: Float64Array) => { const b = new Float64Array(cap); b.set(a); return b; };
    this.at = f64(this.at);
    this.seq = f64(this.seq);
    const g = new Uint32Array(cap);
    g.set(this.gen);
    this.gen = g;
    const pos = new Int32Array(cap).fill(-1);
    pos.set(this.heapPos);
    this.heapPos = pos;
    const heap = new Int32Array(cap);
    heap.set(this.heap);
    this.heap = heap;
    this.callbacks.length = cap;
    this.callbacks.fill(null, old);
    const free = new Int32Array(cap);
    for (let s = cap - 1; s >= old; s--) free[this.freeCount++] = s;
    this.free = free;
    this.capacity = cap;
  }

  saveState(): { nowNs: number } {
    return { nowNs: this.nowNs };
  }

  /** Restore the time and drop every timer (the devices re-arm theirs as they load). */
  loadState(s: { nowNs: number }): void {
    while (this.size > 0) this.removeAt(this.size - 1);
    this.nowNs = s.nowNs;
  }
}
