/**
 * The typed messages between the page and the machine's worker.
 *
 * Bulk data never travels in messages: guest RAM, video memory, the framebuffer and the
 * statistics counters live in SharedArrayBuffers that both sides map once (`ready`).
 * Messages carry commands, serial bytes, and small state changes.
 */

/** A file handed to the machine: bytes plus the name the user knows it by. */
export interface MediumFile {
  name: string;
  bytes: ArrayBuffer;
}

export interface BootRequest {
  memoryMiB: number;
  bios: MediumFile;
  vgaBios?: MediumFile;
  kernel?: MediumFile;
  initrd?: MediumFile;
  append?: string;
  cdrom?: MediumFile;
  hda?: MediumFile;
  fda?: MediumFile;
  boot: string;
  deterministic: boolean;
}

/** Page -> worker. */
export type ToWorker =
  | { type: 'boot'; request: BootRequest }
  | { type: 'power-off' }
  | { type: 'reset' }
  | { type: 'pause' }
  | { type: 'resume' }
  /** Bytes typed into COM1. */
  | { type: 'serial-in'; data: Uint8Array }
  /** PS/2 set-2 scancode bytes for one key event (make or break). */
  | { type: 'key'; scancodes: number[] }
  | { type: 'mouse'; dx: number; dy: number; buttons: number }
  /** Ctrl+Alt+Del as the keyboard sends it. */
  | { type: 'ctrl-alt-del' }
  /** The page is hidden: keep running, stop rendering. */
  | { type: 'visibility'; visible: boolean };

/** Layout of the statistics counters: `counters[device * fields.length + field]`. */
export interface StatsLayout {
  fields: string[];
  devices: { name: string; pci?: string; irq?: number[]; kind?: string }[];
}

/** Worker -> page. */
export type FromWorker =
  | {
      type: 'ready';
      /** Per-device counters, read by the page at ~10 Hz without copying. */
      stats: { buffer: SharedArrayBuffer | ArrayBuffer; layout: StatsLayout };
    }
  | { type: 'serial-out'; index: number; data: Uint8Array }
  | { type: 'status'; running: boolean; paused: boolean; mips: number; virtualSeconds: number; realSeconds: number }
  | { type: 'reset'; reason: string }
  | { type: 'log'; message: string }
  /** A failure the user must see, in plain words, with what to do. */
  | { type: 'error'; message: string; hint?: string };
