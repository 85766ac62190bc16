/**
 * A dirty log: one byte per 4 KiB page of some memory (DESIGN.md seam 5). Whoever writes
 * marks; whoever redraws or copies collects, which snapshots and clears in one pass, so
 * a write landing after the collect is seen next time and none is lost.
 *
 * One byte a page rather than one bit: marking is a single store with no read-modify-
 * write, and a 16 MiB VRAM needs only 4 KiB of log. Over a SharedArrayBuffer when the
 * platform has one, so a renderer in another thread can read it without copying.
 */
import { PAGE_SHIFT } from './physical-bus.ts';

export class DirtyBitmap {
  readonly pages: Uint8Array;

  constructor(bytes: number, shared = typeof SharedArrayBuffer === 'function', pages?: Uint8Array) {
    const n = Math.ceil(bytes / (1 << PAGE_SHIFT));
    this.pages = pages ?? new Uint8Array(shared ? new SharedArrayBuffer(n) : new ArrayBuffer(n));
  }

  /** A log over marks another copy keeps (one byte a page): a device's copy in another thread. */
  static over(pages: Uint8Array): DirtyBitmap {
    return new DirtyBitmap(pages.length << PAGE_SHIFT, false, pages);
  }

  /** Mark the page holding byte `offset`. */
  mark(offset: number): void {
    this.pages[offset >>> PAGE_SHIFT] = 1;
  }

  /** Mark every page touched by [offset, offset + length). */
  markRange(offset: number, length: number): void {
    if (length <= 0) return;
    const first = offset >>> PAGE_SHIFT;
    const last = Math.min((offset + length - 1) >>> PAGE_SHIFT, this.pages.length - 1);
    for (let p = first; p <= last; p++) this.pages[p] = 1;
  }

  markAll(): void {
    this.pages.fill(1);
  }

  /**
   * Copy the marks of pages [firstPage, firstPage + into.length) into `into` and clear
   * them; returns how many were dirty.
   */
  collect(into: Uint8Array, firstPage = 0): number {
    const pages = this.pages;
    const n = Math.min(into.length, pages.length - firstPage);
    let dirty = 0;
    for (let i = 0; i < n; i++) {
      const d = pages[firstPage + i];
      into[i] = d;
      if (d !== 0) {
        dirty++;
        pages[firstPage + i] = 0;
      }
    }
    return dirty;
  }

  clear(): void {
    this.pages.fill(0);
  }
}
