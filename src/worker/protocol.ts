/**
 * The typed messages between the page and the machine's worker (machine-host.ts).
 *
 * Bulk data never travels in messages: guest RAM, video memory, the rendered frame and
 * the statistics counters live in SharedArrayBuffers that both sides map once (`ready`).
 * Messages carry commands, serial bytes, frame descriptions and small state changes.
 * Without cross-origin isolation there are no SharedArrayBuffers: the worker then posts
 * copies (`stats`, and the pixels with each `frame`) instead.
 */
import type { FrameInfo } from '../emulator/devices/vga/renderer.ts';
import type { DeviceInfo, StatField } from '../emulator/bus/stats.ts';
import type { PciFunctionInfo } from '../emulator/pci/pci-bus.ts';
import type { NetworkFromWorker, NetworkToWorker, UplinkSetting } from './network-protocol.ts';

export type { FrameInfo, DeviceInfo, StatField, PciFunctionInfo };

/** A file handed to the machine: bytes plus the name the user knows it by. */
export interface MediumFile {
  name: string;
  bytes: ArrayBuffer;
}

/** What to build: the files' bytes and the settings of image-config.ts's MachineInputs. */
export interface BootRequest {
  /** Shown in the status line: the image's title or the dropped file's name. */
  label: string;
  memoryMiB?: number;
  bios: MediumFile;
  vgaBios?: MediumFile;
  kernel?: MediumFile;
  initrd?: MediumFile;
  append?: string;
  cdrom?: MediumFile;
  hda?: MediumFile;
  fda?: MediumFile;
  /** Boot order letters (a, c, d); default from image-config.ts. */
  boot?: string;
  /** Virtual time from the instruction count (tests, benchmarks) instead of the wall clock. */
  deterministic: boolean;
  /** Pause the machine as soon as COM1 has printed this text (benchmarks: "boot to marker"). */
  pauseOn?: string;
  /** QEMU's edu DMA test device (`-device edu`), direct-assigned: its DMA goes through the VMM's fence. */
  edu?: boolean;
  /** The guest-visible VT-d unit (`-machine iommu=on|off`); default on. */
  iommu?: boolean;
  /** Where the machine's LAN leads (network-protocol.ts); default the router alone. */
  network?: UplinkSetting;
}

/** Page -> worker. */
export type ToWorker =
  | { type: 'boot'; request: BootRequest }
  | { type: 'power-off' }
  | { type: 'reset' }
  | { type: 'pause' }
  | { type: 'resume' }
  /** Bytes typed (or pasted) into COM1. */
  | { type: 'serial-in'; data: Uint8Array }
  /** PS/2 scan code set 2 bytes of key events (make or F0-prefixed break codes). */
  | { type: 'key'; scancodes: number[] }
  /** A pointer movement in PS/2 terms: dx right, dy up; buttons bit 0 left, 1 right, 2 middle; wheel clicks. */
  | { type: 'mouse'; dx: number; dy: number; buttons: number; wheel: number }
  /** Ctrl+Alt+Del as the keyboard sends it. */
  | { type: 'ctrl-alt-del' }
  /** The page is hidden: keep running, stop rendering. */
  | { type: 'visibility'; visible: boolean }
  /** The page has drawn the last `frame`: the worker may render the next one. */
  | { type: 'frame-ack' }
  /** Ask for a `machine` message (PCI functions, BARs, IRQ routing). */
  | { type: 'describe' }
  /** The network panel's requests (network-protocol.ts). */
  | NetworkToWorker
  /**
   * Move a switchable device to a path (issue 22): the monitor's `device_path`, between CPU
   * slices. `resume`: resume a machine a failed device model paused, once nothing is failed.
   */
  | { type: 'device-path'; name: string; path: DevicePathName; resume?: boolean };

export type DevicePathName = 'direct' | 'emulated';

/** A switchable device's path as its card shows it. */
export interface DevicePathState {
  name: string;
  path: DevicePathName;
  /** The device model failed it (which access, what it said): the machine is paused. */
  failed: string | null;
  /** The last switch asked for and not made, or one under way, in words. */
  note: string | null;
}

/** Everything a statistics reader needs (bus/stats.ts StatsLayout, minus the version). */
export interface StatsShare {
  /** SharedArrayBuffer: read live; otherwise the counters come in `stats` messages. */
  buffer: SharedArrayBuffer | null;
  fields: readonly StatField[];
  stride: number;
  devices: DeviceInfo[];
}

export type MachinePhase = 'off' | 'running' | 'paused' | 'stopped';

export interface MachineStatus {
  phase: MachinePhase;
  /** Instructions per second over the last report interval (wall time, idle included). */
  mips: number;
  /** Instructions per second of the time the CPU actually ran (idle sleeping excluded). */
  busyMips: number;
  instructions: number;
  /** Guest (virtual) time since power-on, and host time the machine has been running. */
  virtualSeconds: number;
  realSeconds: number;
}

/** Worker -> page. */
export type FromWorker =
  | {
      type: 'ready';
      label: string;
      memoryMiB: number;
      deterministic: boolean;
      stats: StatsShare;
      /** Guest RAM and video memory (SharedArrayBuffers, or null without isolation). */
      ram: SharedArrayBuffer | null;
      vram: SharedArrayBuffer | null;
      /** RGBA frame the worker renders into (row stride = FrameInfo.width * 4). */
      frame: SharedArrayBuffer | null;
    }
  | { type: 'serial-out'; index: number; data: Uint8Array }
  | { type: 'status'; status: MachineStatus }
  /**
   * A rendered frame; `pixels` only without shared memory (the visible area, row stride
   * width * 4). In text modes, when the frame changed, `text` has the screen's lines (for
   * screen readers and tests).
   */
  | { type: 'frame'; info: FrameInfo; pixels?: ArrayBuffer; text?: string[] }
  /** Counter copies when the counters are not shared. */
  | { type: 'stats'; counters: Float64Array }
  /** The guest reset the machine (triple fault, keyboard controller, 0xCF9): why, in words. */
  | { type: 'reset'; reason: string }
  | { type: 'machine'; functions: PciFunctionInfo[]; pirq: { link: string; irq: number | null }[]; iommu?: IommuView }
  | { type: 'log'; message: string }
  /** The network panel's view, packets and capture (network-protocol.ts). */
  | NetworkFromWorker
  /**
   * Each switchable device's path (at power-on, after every switch asked for, when a device
   * model fails); `emulation`: null when this page can run a device model, else why not.
   */
  | { type: 'paths'; devices: DevicePathState[]; failure: string | null; emulation: string | null }
  /** A device changed path: when, in the guest's virtual time and on the wall clock (epoch ms, performance.timeOrigin-based). */
  | { type: 'path-switch'; name: string; path: DevicePathName; virtualNs: number; at: number }
  /** A failure the user must see, in plain words, with what to do. */
  | { type: 'error'; message: string; hint?: string };

/**
 * What the page shows of the two IOMMUs (issue 23): the guest's VT-d unit as its driver set
 * it up (null when the machine has none), and the VMM's fence for direct-assigned devices.
 */
export interface IommuView {
  vtd: null | {
    translation: boolean;
    rootTable: number;
    counters: Record<string, number>;
    /** The fault-recording registers the guest reads, decoded. */
    records: { index: number; sourceId: string; addr: number; write: boolean; reason: number; reasonText: string }[];
    /** Every fault the unit saw, newest last, with what became of it. */
    faults: { atNs: number; source: string; addr: number; write: boolean; reasonText: string; outcome: string }[];
    /** Each PCI function's context: its domain and what it maps, as runs. */
    contexts: { bdf: string; device: string; present: boolean; fault?: string; domain?: number; levels?: number; runs: { iova: number; phys: number; pages: number; read: boolean; write: boolean }[]; truncated: boolean }[];
  };
  fence: { counters: { allowed: number; refused: number }; faults: { atNs: number; device: string; addr: number; write: boolean; reason: string }[] };
}
