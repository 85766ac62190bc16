/**
 * Per-device statistics counted by the bus (DESIGN.md seam 3): one Float64Array row per
 * device, incremented where an access is dispatched, never inside a device. Over a
 * SharedArrayBuffer when the platform has one, so the page reads the counters without
 * copying; integers in a Float64Array stay exact up to 2^53.
 */

/** Counter columns, in row order. The page's devices panel shows them by these names. */
export const STAT_FIELDS = [
  'portReads', 'portWrites', 'mmioReads', 'mmioWrites', 'bytesRead', 'bytesWritten',
  'traps', 'dmaBytesRead', 'dmaBytesWritten', 'dmaFaults', 'irqs', 'timeNs',
  // PCI configuration cycles that reached this function (the 0xCFC port accesses themselves count on the "pci" row).
  'configReads', 'configWrites',
] as const;
export type StatField = (typeof STAT_FIELDS)[number];

export const PORT_READS = 0;
export const PORT_WRITES = 1;
export const MMIO_READS = 2;
export const MMIO_WRITES = 3;
export const BYTES_READ = 4;
export const BYTES_WRITTEN = 5;
export const TRAPS = 6;
export const DMA_BYTES_READ = 7;
export const DMA_BYTES_WRITTEN = 8;
export const DMA_FAULTS = 9;
export const IRQS = 10;
export const TIME_NS = 11;
export const CONFIG_READS = 12;
export const CONFIG_WRITES = 13;
const STRIDE = STAT_FIELDS.length;
/** Counters per device row: the counter of field f for row r is counters[r * STAT_STRIDE + f]. */
export const STAT_STRIDE = STRIDE;

/**
 * What the page needs to read the counters live: the buffer (a SharedArrayBuffer when the
 * platform has one: read it at ~10 Hz without copying or messages; otherwise post
 * snapshot() instead), the field names in column order, and the device table. `version`
 * changes when a device is added, so the page knows to ask for the table again.
 */
export interface StatsLayout {
  buffer: ArrayBufferLike;
  shared: boolean;
  fields: readonly StatField[];
  stride: number;
  devices: DeviceInfo[];
  version: number;
}

export interface DeviceInfo {
  name: string;
  /** bus:device.function for PCI functions, e.g. "00:01.1". */
  pci?: string;
  irq?: number[];
}

export class DeviceStats {
  readonly devices: DeviceInfo[] = [];
  counters: Float64Array;
  /** Last value written to the POST code port (0x80), shown with the statistics. */
  postCode = 0;

  constructor(readonly capacity = 64) {
    const bytes = capacity * STRIDE * 8;
    const buffer = typeof SharedArrayBuffer === 'function' ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
    this.counters = new Float64Array(buffer);
  }

  /** Bumped whenever the device table changes (a device added, the IRQ lines it drives). */
  version = 0;

  /** Register a device; returns its row. */
  add(info: DeviceInfo): number {
    if (this.devices.length >= this.capacity) throw new Error(`more than ${this.capacity} devices on the bus`);
    this.version++;
    this.devices.push(info);
    return this.devices.length - 1;
  }

  count(device: number, field: number, n = 1): void {
    this.counters[device * STRIDE + field] += n;
  }

  get(device: number, field: StatField): number {
    return this.counters[device * STRIDE + STAT_FIELDS.indexOf(field)];
  }

  layout(): StatsLayout {
    const buffer = this.counters.buffer;
    return {
      buffer,
      shared: typeof SharedArrayBuffer === 'function' && buffer instanceof SharedArrayBuffer,
      fields: STAT_FIELDS,
      stride: STRIDE,
      devices: this.devices.map((d) => ({ ...d, irq: d.irq?.slice() })),
      version: this.version,
    };
  }

  /** Zero every counter (the devices panel's reset button). */
  clear(): void {
    this.counters.fill(0);
  }

  /** Plain-data snapshot: what `--stats FILE` writes. */
  snapshot(): { postCode: number; devices: (DeviceInfo & Record<StatField, number>)[] } {
    return {
      postCode: this.postCode,
      devices: this.devices.map((d, i) => {
        const row: Record<string, number> = {};
        STAT_FIELDS.forEach((f, j) => (row[f] = this.counters[i * STRIDE + j]));
        return { ...d, ...(row as Record<StatField, number>) };
      }),
    };
  }
}
