/**
 * Backing store of a disk, CD or floppy. The emulator never reads files itself: the
 * CLI hands it bytes from Node's fs, the page hands it a user's dropped file.
 */
export interface BlockDevice {
  /** Size in bytes. */
  readonly size: number;
  readonly readOnly: boolean;
  /** Copy `dst.length` bytes starting at byte `offset` into `dst`. */
  read(offset: number, dst: Uint8Array): void;
  /** Write `src` at byte `offset` (never called when `readOnly`). */
  write(offset: number, src: Uint8Array): void;
}

/** A disk held in memory (the default: images here are small). Writes stay in memory. */
export class MemoryBlockDevice implements BlockDevice {
  readonly size: number;
  constructor(private readonly data: Uint8Array, readonly readOnly = false) {
    this.size = data.length;
  }
  read(offset: number, dst: Uint8Array): void {
    const end = Math.min(offset + dst.length, this.size);
    if (offset >= end) { dst.fill(0); return; }
    dst.set(this.data.subarray(offset, end));
    if (end - offset < dst.length) dst.fill(0, end - offset);
  }
  write(offset: number, src: Uint8Array): void {
    if (this.readOnly) throw new Error('write to a read-only medium');
    const n = Math.max(0, Math.min(src.length, this.size - offset));
    this.data.set(src.subarray(0, n), offset);
  }
}
