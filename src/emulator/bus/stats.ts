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
  // A NIC's traffic as its link to the LAN carried it (net/switch.ts counts frames sent and the
  // link's own drops) and as the chip took it into its ring (received, and refusals by reason).
  'framesReceived', 'framesSent', 'netBytesReceived', 'netBytesSent',
  'dropRingFull', 'dropStopped', 'dropFiltered', 'dropMalformed', 'dropLink',
  // The two paths of DESIGN.md seam 4 (bus/device-paths.ts): accesses that reached a
  // direct-assigned device without a trap; writes posted to the device model's buffered
  // ring (no round trip); time the device model spent answering (its own clock); how many
  // times the device changed path (the page marks the plot there); the slowest round trip;
  // and a log2 histogram of answered round trips: rtt0 counts those under 1 µs, rttN
  // (1..15) those in [2^(N-1), 2^N) µs, rtt15 everything from 16.4 ms up.
  'directAccesses', 'bufferedWrites', 'modelTimeNs', 'pathSwitches', 'rttMaxNs',
  'rtt0', 'rtt1', 'rtt2', 'rtt3', 'rtt4', 'rtt5', 'rtt6', 'rtt7',
  'rtt8', 'rtt9', 'rtt10', 'rtt11', 'rtt12', 'rtt13', 'rtt14', 'rtt15',
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
export const FRAMES_RECEIVED = 14;
export const FRAMES_SENT = 15;
export const NET_BYTES_RECEIVED = 16;
export const NET_BYTES_SENT = 17;
export const DROP_RING_FULL = 18;
export const DROP_STOPPED = 19;
export const DROP_FILTERED = 20;
export const DROP_MALFORMED = 21;
export const DROP_LINK = 22;
export const DIRECT_ACCESSES = 23;
export const BUFFERED_WRITES = 24;
export const MODEL_TIME_NS = 25;
export const PATH_SWITCHES = 26;
export const RTT_MAX_NS = 27;
/** First of the RTT_BUCKETS histogram columns (see STAT_FIELDS). */
export const RTT_HISTOGRAM = 28;
export const RTT_BUCKETS = 16;

/** DeviceStats.paths values. */
export const PATH_CORE = 0;
export const PATH_DIRECT = 1;
export const PATH_EMULATED = 2;
const STRIDE = STAT_FIELDS.length;

/**
 * "Time in device" is measured on a sample of the traps, because reading the clock can
 * cost more than the handler it measures: performance.now() took about 0.3 µs in a
 * cross-origin isolated Chromium worker (0.08 µs in Node), two readings per trap, against
 * 0.1-1 µs in most handlers, and a tiny-linux boot traps 580,000 times (mostly the PIT,
 * the BIOS debug port and the VGA). Timing all of them cost the page's guest a few
 * percent of its speed. So (DeviceStats.trap):
 *  - a device's first TIMED_IN_FULL traps are all timed, so a rarely used device gets an
 *    exact figure, and so are all traps of a device whose handlers average SLOW_NS or
 *    more (there the clock's cost is small beside the handler's);
 *  - otherwise each trap is timed with probability 1/SAMPLE_WEIGHT, drawn independently
 *    (a guest's periodic pattern of accesses cannot line up with it), and counts
 *    SAMPLE_WEIGHT times: the total is an estimate with the right mean;
 *  - except that a sampled trap that took over SAMPLE_CAP_NS (the host stopped the thread
 *    for a collection, a compile or another process) stands for itself once and for the
 *    others at SAMPLE_CAP_NS: the traps it stands for are fast ones, and a pause
 *    multiplied by SAMPLE_WEIGHT would show as a burst of time the device never took.
 */
export const TIMED_IN_FULL = 256;
const SLOW_NS = 2_000;
export const SAMPLE_WEIGHT = 16;
const SAMPLE_CAP_NS = 50_000;

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
  /** Each row's path (DeviceStats.paths), over a SharedArrayBuffer when the counters are: read it live too. */
  paths: Uint8Array;
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
    this.paths = new Uint8Array(typeof SharedArrayBuffer === 'function' ? new SharedArrayBuffer(capacity) : new ArrayBuffer(capacity));
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

  /** Publish a total counted elsewhere (a NIC's frames, counted by its switch port and the chip). */
  set(device: number, field: number, value: number): void {
    this.counters[device * STRIDE + field] = value;
  }

  /** xorshift32 state drawing which traps are timed (see SAMPLE_WEIGHT). */
  private sampleSeed = 0x9e3779b9;

  /**
   * Count a trap into `device`'s model; returns how many traps timing this one stands
   * for (pass it to addTime with the handler's time), or 0 if it is not to be timed.
   */
  trap(device: number): number {
    const row = device * STRIDE;
    return this.sample(row, (this.counters[row + TRAPS] += 1));
  }

  /**
   * Count an access that reached a direct-assigned device without a trap; returns the
   * weight to time it with, drawn as trap() draws it (the devices panel's time in device).
   */
  direct(device: number): number {
    const row = device * STRIDE;
    return this.sample(row, (this.counters[row + DIRECT_ACCESSES] += 1));
  }

  /** The sampling of SAMPLE_WEIGHT's comment, for the `n`-th counted access of a row. */
  private sample(row: number, n: number): number {
    if (n <= TIMED_IN_FULL || this.counters[row + TIME_NS] >= SLOW_NS * n) return 1;
    let x = this.sampleSeed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.sampleSeed = x;
    return (x & (SAMPLE_WEIGHT - 1)) === 0 ? SAMPLE_WEIGHT : 0;
  }

  /** Add `ns` spent in `device`'s handler by an access that stands for `weight` accesses (trap's or direct's answer). */
  addTime(device: number, ns: number, weight: number): void {
    this.counters[device * STRIDE + TIME_NS] += weight === 1 || ns <= SAMPLE_CAP_NS ? ns * weight : ns + SAMPLE_CAP_NS * (weight - 1);
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
      paths: this.paths,
    };
  }

  /**
   * Which path each device row is on (bus/device-paths.ts): PATH_CORE for the platform
   * core and every device not switchable (a trap handled in the vCPU's thread, as KVM
   * handles its in-kernel PIT), PATH_DIRECT, PATH_EMULATED. The dispatchers read it per
   * access. Not cleared with the counters.
   */
  readonly paths: Uint8Array;

  /** Record one answered ioreq round trip of `ns` for `device` (max and log2 histogram). */
  roundTrip(device: number, ns: number): void {
    const row = device * STRIDE;
    if (ns > this.counters[row + RTT_MAX_NS]) this.counters[row + RTT_MAX_NS] = ns;
    const us = ns / 1000;
    const bucket = us < 1 ? 0 : Math.min(RTT_BUCKETS - 1, 1 + Math.floor(Math.log2(us)));
    this.counters[row + RTT_HISTOGRAM + bucket] += 1;
  }

  /**
   * The round-trip time under which a fraction `p` (0.5 median, 0.99) of `device`'s
   * answered ioreqs fell, as the upper edge of its histogram bucket in ns (capped by the
   * maximum seen); 0 when there were none.
   */
  rttPercentile(device: number, p: number): number {
    const row = device * STRIDE + RTT_HISTOGRAM;
    let total = 0;
    for (let i = 0; i < RTT_BUCKETS; i++) total += this.counters[row + i];
    if (total === 0) return 0;
    const max = this.counters[device * STRIDE + RTT_MAX_NS];
    let seen = 0;
    for (let i = 0; i < RTT_BUCKETS; i++) {
      seen += this.counters[row + i];
      if (seen >= p * total) return Math.min(max, 1000 * 2 ** i);
    }
    return max;
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
