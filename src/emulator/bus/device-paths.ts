/**
 * Which path each switchable device is on, and the live switch between them (DESIGN.md
 * seam 4, issue 22; docs/device-paths.md says what each path models and what it does not).
 *
 * - direct: the device's code runs here, in the vCPU's thread, called by the bus without
 *   a trap (as assigned hardware answers through EPT-mapped BARs); its accesses count as
 *   direct accesses, its DMA goes through the bus's DMA path and its IRQ lines are its own.
 * - emulated: a copy of the same device class runs in the device-model worker. Every
 *   access becomes an ioreq (bus/ioreq.ts) and the vCPU waits for the answer; the device's
 *   IRQ levels, timers, DMA, log lines and outbound callbacks (a transmitted byte or frame)
 *   come back as callback requests inside the round trip and take effect here, on this
 *   thread's bus and clock, at the same virtual instant as on the direct path.
 *
 * The copy in this thread stays attached either way: its mappings in IoBus/PhysicalMemory
 * name the device (DeviceStats.paths decides where an access goes), its IRQ line handles
 * are the ones the device model's levels drive, and on the way back it loads the state the
 * device model hands over. While a device is emulated, the machine's calls into it
 * (a UART's receive(bytes), a NIC's receive(frame)) are forwarded as CALL ioreqs.
 *
 * The switch happens between CPU slices (Machine.run), where no ioreq is in flight:
 * saveState on one side, loadState on the other; the side given up has its timers
 * cancelled, the side taking over re-arms them from the saved deadlines and drives its
 * IRQ lines again, and a NIC's queued frames travel inside its state.
 */
import type { AccessSize, Device, DeviceState, IrqLine, Mapping, RegisterBlock, TimerId } from './device.ts';
import type { PlatformBus } from './platform-bus.ts';
import type { RemoteDispatch } from './io-bus.ts';
import {
  CB_BUS_MASTER, CB_CANCEL_TIMER, CB_DMA_READ, CB_DMA_WRITE, CB_IRQ, CB_LOG, CB_MAP, CB_OUTBOUND, CB_SET_TIMER,
  IOREQ_READ, IOREQ_TYPE_CALL, IOREQ_TYPE_CONTROL, IOREQ_TYPE_COPY, IOREQ_TYPE_PCI_CONFIG, IOREQ_TYPE_PIO, IOREQ_TYPE_TIMER, IOREQ_WRITE,
  IoreqError, IoreqRequester, loadElement, storeElement, type IoreqPage,
} from './ioreq.ts';
import {
  BUFFERED_WRITES, DIRECT_ACCESSES, MODEL_TIME_NS, PATH_DIRECT, PATH_EMULATED, PATH_SWITCHES, RTT_MAX_NS, STAT_STRIDE, TIME_NS, TRAPS,
} from './stats.ts';

export type DevicePath = 'direct' | 'emulated';

export function isDevicePath(s: string): s is DevicePath {
  return s === 'direct' || s === 'emulated';
}

/**
 * How to build a device of this kind in the device model and what crosses between the
 * machine and it besides register accesses. `config` is plain data (structured-cloneable)
 * given to the kind's constructor in the device model (src/worker/device-model.ts).
 */
export interface SwitchableSpec {
  kind: string;
  /** The constructor's options, or a function giving them at the switch (media moved to shared memory then). */
  config: unknown;
  /** Methods the machine calls on the device, taking one byte array and returning a number or nothing. */
  inbound: readonly string[];
  /** Callback properties the device calls with one byte or one byte array (onTransmit). */
  outbound: readonly string[];
  /** Read-only properties the machine reads (a NIC's counters): read from the device model while emulated. */
  getters?: readonly string[];
  /** Writes that may go through the buffered ring (no answer, no side effect until the next access). */
  buffered?: (key: number, offset: number, size: number) => boolean;
  /**
   * Both copies of the device work on the same shared memory (the VGA's video memory, as
   * QEMU maps VRAM): a switch moves the device's saveHandOver() state, the rest, instead of
   * its whole saveState(). A machine snapshot still saves it whole.
   */
  sharedMemory?: boolean;
}

/** What a device whose memory both copies share (SwitchableSpec.sharedMemory) implements. */
export interface HandOver {
  saveHandOver(): DeviceState;
  loadHandOver(state: DeviceState): void;
}

function handOverOf(device: Device): HandOver {
  const d = device as Device & Partial<HandOver>;
  if (typeof d.saveHandOver !== 'function' || typeof d.loadHandOver !== 'function') throw new Error(`${device.name} shares its memory but has no saveHandOver/loadHandOver`);
  return d as Device & HandOver;
}

/** Control messages to the device model (sent with an IOREQ_TYPE_CONTROL request). */
export type DeviceModelControl =
  /** `pci`: the device was plugged into the PCI bus here (a class that can be either, like the NE2000, was). */
  | {
    op: 'load'; id: number; kind: string; config: unknown; pci: boolean; state: DeviceState; inbound: readonly string[]; outbound: readonly string[];
    /** `state` is the device's saveHandOver() (SwitchableSpec.sharedMemory), to loadHandOver(). */
    handOver?: boolean;
    /** Where each mapping the device made as it attached is now (by ordinal): its copy starts there. */
    mappings: { start: number; mapped: boolean }[];
  }
  /** `handOver`: the device's saveHandOver() (a switch of a SwitchableSpec.sharedMemory device), not saveState(). */
  | { op: 'save'; id: number; handOver?: boolean }
  /** Device.loadState and Device.reset of the copy in the device model (a machine snapshot, a reboot). */
  | { op: 'restore'; id: number; state: DeviceState }
  | { op: 'reset'; id: number }
  | { op: 'remove'; id: number }
  /** Test hook: the device's next register access throws, or never answers. */
  | { op: 'sabotage'; id: number; mode: 'throw' | 'hang' }
  /** Read a property (SwitchableSpec.getters); the answer comes back as a DeviceModelReply 'value'. */
  | { op: 'get'; id: number; name: string };

/** What the device model sends back (only on 'save'). */
export type DeviceModelReply = { op: 'state'; id: number; state: DeviceState } | { op: 'value'; id: number; value: unknown };

/** The vCPU's end of a device-model worker: the shared ioreq page and a synchronous message pipe. */
export interface DeviceModelLink {
  readonly page: IoreqPage;
  post(message: DeviceModelControl): void;
  /** The next message from the device model, or undefined if none is waiting (never blocks). */
  receive(): unknown;
  /** Stop the worker. */
  close(): void;
  /**
   * A device model in the vCPU's own thread (tests, a host without workers): how the vCPU
   * waits (by running the device model), and the requester the device model's waits
   * service callbacks through. Absent for a worker: the vCPU blocks in Atomics.wait.
   */
  wait?: (state: number, timeoutMs: number) => number;
  bind?(requester: IoreqRequester): void;
}

/** Starts a device model (the host's job: worker_threads in Node, a Web Worker in the page). */
export type DeviceModelConnector = () => DeviceModelLink;

/** Register blocks of a PCI function's BARs are keyed BAR_KEY + index; the others by the order the device mapped them. */
export const BAR_KEY = 0x100;

interface Entry {
  device: Device;
  spec: SwitchableSpec;
  row: number;
  path: DevicePath;
  /** The device's id in the device model (while emulated). */
  id: number;
  /** RegisterBlock -> key, learned from the mappings the device made as it attached. */
  keys: Map<RegisterBlock, number>;
  /** The PCI INTx# line the device was given (captured as it was plugged). */
  intx: IrqLine | null;
  /** The PCI context it was given (bus-master enable). */
  pciCtx: { busMasterEnabled(): boolean } | null;
  /** The mappings it made as it attached, by ordinal (the device model moves them through CB_MAP). */
  mappings: Mapping[];
  /** The device model's timer id -> this clock's timer, while emulated. */
  remoteTimers: Map<number, TimerId>;
  /** The state handed to the device model: what a failed device falls back to. */
  handedOver: DeviceState | null;
  handedOverAt: number;
  /** Set when the device model failed this device (the machine pauses). */
  failed: string | null;
  /**
   * Getters read from the device model since its last round trip: the device's state changes
   * only inside round trips (accesses, timers, calls), so a value read after the last one is
   * still exact, and a renderer reading the VGA's registers many times a frame asks once.
   */
  cache: Map<string, unknown>;
  /** The device model that held it is gone (stopped answering and was terminated): its state is lost with it. */
  lost: boolean;
}

export interface DevicePathInfo {
  name: string;
  path: DevicePath;
  traps: number;
  directAccesses: number;
  bufferedWrites: number;
  rttMedianNs: number;
  rtt99Ns: number;
  rttMaxNs: number;
  failed: string | null;
}

/** What register() needs of a PCI function's declaration (pci/pci-function.ts's PciFunctionSpec). */
interface PciSpecLike {
  bars: readonly { index: number; block: RegisterBlock }[];
  configRead?(offset: number, size: 1 | 2 | 4): number | undefined;
  configWrite?(offset: number, size: 1 | 2 | 4, value: number): boolean;
}

export class DevicePaths implements RemoteDispatch {
  private readonly entries: Entry[] = [];
  private readonly byName = new Map<string, Entry>();
  private readonly byRow: (Entry | undefined)[] = [];
  private link: DeviceModelLink | null = null;
  private requester: IoreqRequester | null = null;
  private nextId = 1;
  /** The entry whose request is in flight (callbacks are for it). */
  private current: Entry | null = null;
  /** Calls into a device that arrived while a round trip was in flight (a NIC's own frame looped back). */
  private readonly deferred: (() => void)[] = [];
  private readonly pending = new Map<string, DevicePath>();
  /** Why the machine is paused: a device model threw or stopped answering. */
  failure: string | null = null;
  /** Called when a round trip fails (the machine stops its CPU slice). */
  onFailure: () => void = () => {};
  /** Give up on an ioreq after this long (ms of host time). */
  timeoutMs = 5_000;

  constructor(private readonly bus: PlatformBus, private readonly connect: DeviceModelConnector | undefined, private readonly log: (message: string) => void = () => {}) {}

  /**
   * Make `device` switchable. Call before it is attached or plugged: the bus then keeps a
   * list of its timers, and its mappings made during attach are given keys. It starts direct.
   */
  register(device: Device, spec: SwitchableSpec): void {
    if (this.byName.has(device.name)) throw new Error(`${device.name} is already switchable`);
    this.bus.trackTimers.add(device.name);
    const entry: Entry = {
      device, spec, row: -1, path: 'direct', id: 0, keys: new Map(), intx: null, pciCtx: null, mappings: [], remoteTimers: new Map(),
      handedOver: null, handedOverAt: 0, failed: null, lost: false, cache: new Map(),
    };
    // Learn which blocks the device maps as it attaches (the device model's copy maps them in the same order).
    const attach = device.attach.bind(device);
    device.attach = (ctx) => {
      let ordinal = 0;
      attach({
        ...ctx,
        mapPorts: (start, length, block) => {
          entry.keys.set(block, ordinal++);
          const m = ctx.mapPorts(start, length, block);
          entry.mappings.push(m);
          return m;
        },
        mapMmio: (start, length, block, options) => {
          entry.keys.set(block, ordinal++);
          const m = ctx.mapMmio(start, length, block, options);
          entry.mappings.push(m);
          return m;
        },
      });
      entry.row = this.bus.rowOf(device);
      this.byRow[entry.row] = entry;
      this.bus.stats.paths[entry.row] = PATH_DIRECT;
      // Only the first attach is wrapped: later ones (none today) would be plain.
      device.attach = attach;
    };
    const pci = device as Device & { attachPci?: (ctx: { intx: IrqLine; busMasterEnabled(): boolean }) => void; pci?: PciSpecLike };
    if (pci.attachPci && pci.pci) {
      const spec = pci.pci;
      for (const bar of spec.bars) entry.keys.set(bar.block, BAR_KEY + bar.index);
      const attachPci = pci.attachPci.bind(device);
      pci.attachPci = (ctx) => {
        entry.intx = ctx.intx;
        entry.pciCtx = ctx;
        attachPci(ctx);
      };
      // The function's own configuration registers (0x40-0xFF) are device state: while it is
      // emulated, the PCI bus's config cycles to them are ioreqs of Xen's PCI_CONFIG type.
      const { configRead, configWrite } = spec;
      if (configRead) {
        spec.configRead = (offset, size) => {
          if (entry.path !== 'emulated') return configRead.call(spec, offset, size);
          const v = this.config(entry, offset, size, IOREQ_READ, 0);
          return Number.isNaN(v) ? undefined : v;
        };
      }
      if (configWrite) {
        spec.configWrite = (offset, size, value) => {
          if (entry.path !== 'emulated') return configWrite.call(spec, offset, size, value);
          return this.config(entry, offset, size, IOREQ_WRITE, value >>> 0) === 1;
        };
      }
    }
    this.entries.push(entry);
    this.byName.set(device.name, entry);
  }

  names(): string[] {
    return this.entries.map((e) => e.device.name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  pathOf(name: string): DevicePath {
    return this.entry(name).path;
  }

  private entry(name: string): Entry {
    const e = this.byName.get(name);
    if (!e) throw new Error(`no switchable device '${name}' (switchable: ${this.names().join(', ') || 'none'})`);
    return e;
  }

  /** Ask for `name` to move to `path` at the next instruction boundary (Machine.run applies it). */
  request(name: string, path: DevicePath): void {
    this.entry(name);
    this.pending.set(name, path);
  }

  get switchPending(): boolean {
    return this.pending.size > 0;
  }

  /** Apply requested switches (between CPU slices); a switch that cannot be made is logged and the device stays. */
  applyPending(): string[] {
    const todo = [...this.pending];
    this.pending.clear();
    const errors: string[] = [];
    for (const [name, path] of todo) {
      try {
        this.switchNow(name, path);
      } catch (err) {
        errors.push((err as Error).message);
        this.log((err as Error).message);
      }
    }
    return errors;
  }

  /**
   * Move `name` to `path` now. Only at an instruction boundary with no ioreq in flight
   * (between Machine.run's slices, or before the machine runs). Throws with a plain
   * message if the device model cannot be started.
   */
  switchNow(name: string, path: DevicePath): void {
    const e = this.entry(name);
    if (e.row < 0) throw new Error(`${name} is not attached yet`);
    if (this.current) throw new Error(`${name}: a path switch inside an ioreq`);
    if (e.path === path) return;
    if (path === 'emulated') this.toEmulated(e);
    else this.toDirect(e);
    this.bus.stats.count(e.row, PATH_SWITCHES);
    if (e.path === path) this.onPathChange?.(e.row, name, path);
  }

  /**
   * Told after each switch that took effect: the machine puts a direct-assigned device's DMA
   * behind the VMM's fence and takes it away again when the device goes back to the model.
   */
  onPathChange: ((row: number, name: string, path: DevicePath) => void) | null = null;

  private ensureLink(): DeviceModelLink {
    if (this.link) return this.link;
    if (!this.connect) throw new Error('this host has no device-model worker: every device stays direct');
    const link = this.connect();
    this.link = link;
    this.requester = new IoreqRequester(link.page, (cb, a0, a1, length) => this.service(cb, a0, a1, length), link.wait);
    link.bind?.(this.requester);
    this.requester.timeoutMs = this.timeoutMs;
    return link;
  }

  private toEmulated(e: Entry): void {
    const link = this.ensureLink();
    const handOver = e.spec.sharedMemory === true;
    const state = handOver ? handOverOf(e.device).saveHandOver() : e.device.saveState();
    // The copy here stops acting: its timers go (the device model re-arms them from the state).
    this.bus.cancelTimersOf(e.row);
    e.id = this.nextId++;
    e.handedOver = state;
    e.handedOverAt = this.bus.clock.now();
    e.failed = null;
    e.lost = false;
    e.cache.clear();
    const config: unknown = typeof e.spec.config === 'function' ? (e.spec.config as () => unknown)() : e.spec.config;
    const mappings = e.mappings.map((m) => ({ start: m.start, mapped: m.mapped }));
    link.post({ op: 'load', id: e.id, kind: e.spec.kind, config, pci: e.pciCtx !== null, mappings, state, inbound: e.spec.inbound, outbound: e.spec.outbound, handOver });
    e.path = 'emulated';
    this.bus.stats.paths[e.row] = PATH_EMULATED;
    this.bus.io.remote = this;
    this.bus.memory.remote = this;
    try {
      this.control(e);
    } catch (err) {
      // The device model could not take it: the copy here carries on as if nothing happened.
      e.path = 'direct';
      this.bus.stats.paths[e.row] = PATH_DIRECT;
      if (handOver) handOverOf(e.device).loadHandOver(state);
      else e.device.loadState(state);
      throw new Error(`${e.device.name}: the device model could not take the device: ${(err as Error).message}`, { cause: err });
    }
    // The machine's calls into the device go to the device model from now on.
    const dev = e.device as unknown as Record<string, unknown>;
    e.spec.inbound.forEach((method, index) => {
      dev[method] = (bytes: ArrayLike<number>) => this.call(e, index, bytes);
    });
    for (const name of e.spec.getters ?? []) {
      Object.defineProperty(dev, name, { configurable: true, get: () => this.get(e, name) });
    }
    // A machine snapshot or reboot while the device is emulated reaches the copy that runs.
    dev.saveState = () => this.remoteSave(e);
    dev.loadState = (st: DeviceState) => this.remoteControl(e, { op: 'restore', id: e.id, state: st }, 'load its state');
    dev.reset = () => this.remoteControl(e, { op: 'reset', id: e.id }, 'reset');
  }

  private remoteSave(e: Entry): DeviceState {
    if (e.failed !== null || !this.link) throw new Error(`${e.device.name}: its device model failed; switch it to direct to save it`);
    this.link.post({ op: 'save', id: e.id });
    this.control(e);
    return this.takeReply(e.id, 'state') as DeviceState;
  }

  private remoteControl(e: Entry, m: DeviceModelControl, what: string): void {
    if (e.failed !== null || !this.link) throw new Error(`${e.device.name}: its device model failed; switch it to direct to ${what}`);
    e.cache.clear();
    this.link.post(m);
    this.control(e);
  }

  /** A property of an emulated device, read in the device model (its counters go on growing there). */
  private get(e: Entry, name: string): unknown {
    if (e.failed !== null || this.current !== null || !this.link) return this.stale(e, name);
    if (e.cache.has(name)) return e.cache.get(name);
    try {
      this.link.post({ op: 'get', id: e.id, name });
      this.control(e);
      const value = this.takeReply(e.id, 'value');
      e.cache.set(name, value);
      return value;
    } catch {
      return this.stale(e, name);
    }
  }

  /** The property as the copy in this thread last knew it. */
  private stale(e: Entry, name: string): unknown {
    const proto = Object.getPrototypeOf(e.device) as object;
    const d = Object.getOwnPropertyDescriptor(proto, name);
    return d?.get ? d.get.call(e.device) : undefined;
  }

  private toDirect(e: Entry): void {
    let state: DeviceState | null = null;
    let how = '';
    const handOver = e.spec.sharedMemory === true;
    e.cache.clear();
    if (this.link && !e.lost) {
      try {
        this.link.post({ op: 'save', id: e.id, handOver });
        this.control(e);
        state = this.takeReply(e.id, 'state') as DeviceState;
      } catch (err) {
        how = (err as Error).message;
      }
    }
    if (state === null) {
      // The device model is gone or lost the device: fall back to what it was given.
      state = e.handedOver!;
      this.log(`${e.device.name}: the device model could not hand its state back${how ? ` (${how})` : ''}; the device continues from its state at ${(e.handedOverAt / 1e6).toFixed(3)} ms`);
    } else if (this.link) {
      try {
        this.link.post({ op: 'remove', id: e.id });
        this.control(e);
      } catch {
        // Its state is safe here; a device model that cannot forget it does no harm.
      }
    }
    for (const t of e.remoteTimers.values()) this.bus.clock.cancelTimer(t);
    e.remoteTimers.clear();
    const dev = e.device as unknown as Record<string, unknown>;
    for (const method of e.spec.inbound) delete dev[method];
    for (const name of e.spec.getters ?? []) delete dev[name];
    delete dev.saveState;
    delete dev.loadState;
    delete dev.reset;
    e.path = 'direct';
    e.failed = null;
    e.lost = false;
    this.bus.stats.paths[e.row] = PATH_DIRECT;
    if (handOver) handOverOf(e.device).loadHandOver(state);
    else e.device.loadState(state);
    if (!this.entries.some((x) => x.failed !== null)) this.failure = null;
  }

  /** The device model's reply to a control request just answered (posted before its answer). */
  private takeReply(id: number, op: DeviceModelReply['op']): unknown {
    const link = this.link!;
    for (let tries = 0; tries < 1000; tries++) {
      const m = link.receive() as DeviceModelReply | undefined;
      if (m && m.op === op && m.id === id) return m.op === 'state' ? m.state : m.value;
      if (m === undefined) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
    throw new Error(`the device model did not send the ${op}`);
  }

  /** One control round trip for `e` (its message already posted). */
  private control(e: Entry): void {
    this.roundTrip(e, IOREQ_TYPE_CONTROL, 0, 0, IOREQ_WRITE, 0, 'a path switch', true);
  }

  // -- the emulated path ---------------------------------------------------------------

  read(row: number, block: RegisterBlock, offset: number, size: AccessSize, mmio: boolean): number {
    const e = this.byRow[row]!;
    const key = e.keys.get(block);
    // Not one of the device's own blocks (the PCI bus's ROM BAR): plain data of the bus.
    if (key === undefined || e.failed !== null) return this.unanswered(e, block, offset, size, false, 0);
    const v = this.roundTrip(e, mmio ? IOREQ_TYPE_COPY : IOREQ_TYPE_PIO, key, offset, IOREQ_READ, 0, null, false, size);
    return v;
  }

  write(row: number, block: RegisterBlock, offset: number, size: AccessSize, value: number, mmio: boolean): void {
    const e = this.byRow[row]!;
    const key = e.keys.get(block);
    if (key === undefined || e.failed !== null) {
      this.unanswered(e, block, offset, size, true, value);
      return;
    }
    if (e.spec.buffered?.(key, offset, size) && this.link!.page.pushBuffered(e.id, key, offset, size, value >>> 0, this.bus.clock.now())) {
      e.cache.clear();
      this.bus.stats.count(e.row, BUFFERED_WRITES);
      return;
    }
    this.roundTrip(e, mmio ? IOREQ_TYPE_COPY : IOREQ_TYPE_PIO, key, offset, IOREQ_WRITE, value >>> 0, null, false, size);
  }

  readString(row: number, block: RegisterBlock, offset: number, size: AccessSize, bytes: Uint8Array, count: number): void {
    this.string(row, block, offset, size, bytes, count, IOREQ_READ);
  }

  writeString(row: number, block: RegisterBlock, offset: number, size: AccessSize, bytes: Uint8Array, count: number): void {
    this.string(row, block, offset, size, bytes, count, IOREQ_WRITE);
  }

  /**
   * REP INS/OUTS as ioreqs with a repeat count (Xen's data_is_ptr): the elements travel
   * in the data area, as many per request as it holds. A run the device model fails on
   * reads all ones from there on, as single reads of a failed device do.
   */
  private string(row: number, block: RegisterBlock, offset: number, size: AccessSize, bytes: Uint8Array, count: number, dir: number): void {
    const e = this.byRow[row]!;
    const key = e.keys.get(block);
    const write = dir === IOREQ_WRITE;
    if (key === undefined || e.failed !== null) {
      for (let i = 0, o = 0; i < count; i++, o += size) {
        if (write) this.unanswered(e, block, offset, size, true, loadElement(bytes, o, size));
        else storeElement(bytes, o, size, this.unanswered(e, block, offset, size, false, 0));
      }
      return;
    }
    const data = this.link!.page.data;
    const most = Math.floor(data.length / size);
    for (let done = 0; done < count; ) {
      const k = Math.min(count - done, most);
      const from = done * size;
      const n = k * size;
      if (write) data.set(bytes.subarray(from, from + n));
      this.roundTrip(e, IOREQ_TYPE_PIO, key, offset, dir, 0, null, false, size, k);
      if (e.failed !== null) {
        if (!write) bytes.fill(0xff, from);
        return;
      }
      if (!write) bytes.set(data.subarray(0, n), from);
      done += k;
    }
  }

  /** An access the device model will not see: the bus's own blocks answer; a failed device reads all ones. */
  private unanswered(e: Entry, block: RegisterBlock, offset: number, size: AccessSize, write: boolean, value: number): number {
    if (e.failed === null || !e.keys.has(block)) {
      if (write) {
        block.write(offset, size, value);
        return 0;
      }
      return block.read(offset, size);
    }
    return write ? 0 : size === 4 ? -1 : (1 << (size * 8)) - 1;
  }

  /**
   * One answered request. `what` names it in a failure report; null for the register
   * accesses, which are described from their fields only if they fail (formatting a
   * string on every trap would cost more than the handler it reports on).
   */
  private roundTrip(e: Entry, type: number, key: number, addr: number, dir: number, data: number, what: string | null, control: boolean, size = 0, count = 1): number {
    const requester = this.requester!;
    // Anything but a control request may change the device: what was read of it is stale.
    if (!control) e.cache.clear();
    this.current = e;
    const t0 = performance.now();
    let v: number;
    try {
      v = requester.request({ type, device: e.id, key, addr, size, dir, data, count, df: 0 }, this.bus.clock.now());
    } catch (err) {
      this.current = null;
      if (control) throw err;
      this.fail(e, what ?? describeAccess(type, dir, size, addr, data, count), err);
      return dir === IOREQ_READ ? (size === 4 ? -1 : (1 << (size * 8)) - 1) : 0;
    }
    this.current = null;
    const stats = this.bus.stats;
    const ns = (performance.now() - t0) * 1e6;
    if (!control) {
      stats.roundTrip(e.row, ns);
      stats.count(e.row, TIME_NS, ns);
      stats.count(e.row, MODEL_TIME_NS, requester.page.modelNs);
    }
    if (this.deferred.length) {
      const calls = this.deferred.splice(0);
      for (const c of calls) c();
    }
    return v;
  }

  private fail(e: Entry, what: string, err: unknown): void {
    const timeout = err instanceof IoreqError && err.reason === 'timeout';
    const why = timeout ? `stopped answering (no answer within ${this.timeoutMs} ms)` : `threw: ${(err as Error).message}`;
    e.failed = `the device model of ${e.device.name} ${why} on a ${what}`;
    const affected = [e];
    if (timeout) {
      // A device model that stopped answering cannot be trusted with the slot again: it is
      // stopped, and every device it held goes with it (each resumes from its state at its switch).
      this.link?.close();
      this.link = null;
      this.requester = null;
      for (const x of this.entries) {
        if (x.path !== 'emulated') continue;
        x.lost = true;
        if (x !== e) {
          x.failed = `the device model holding ${x.device.name} was stopped when ${e.device.name}'s stopped answering`;
          affected.push(x);
        }
      }
    }
    const names = affected.map((x) => x.device.name).join(', ');
    this.failure = `${e.failed}; the machine is paused (switch ${names} to direct to resume)`;
    this.log(this.failure);
    this.onFailure();
  }

  /** A call into the device's outside interface while it is emulated. */
  private call(e: Entry, index: number, bytes: ArrayLike<number>): number {
    if (e.failed !== null) return 0;
    if (this.current !== null) {
      // Inside another device's round trip (a frame one NIC sent reaching another): after it.
      const copy = Uint8Array.from(bytes);
      this.deferred.push(() => void this.call(e, index, copy));
      return 0;
    }
    const page = this.requester!.page;
    const n = Math.min(bytes.length, page.data.length);
    for (let i = 0; i < n; i++) page.data[i] = bytes[i];
    page.length = n;
    return this.roundTrip(e, IOREQ_TYPE_CALL, 0, index, IOREQ_WRITE, 0, `call of ${e.spec.inbound[index]}(${n} bytes)`, false);
  }

  /** A config cycle to the function's own registers; NaN when the device leaves the register to the bus. */
  private config(e: Entry, offset: number, size: number, dir: number, value: number): number {
    if (e.failed !== null) return dir === IOREQ_READ ? NaN : 1;
    if (this.current !== null) throw new Error(`${e.device.name}: a configuration cycle inside a round trip`);
    const what = `configuration ${dir === IOREQ_READ ? 'read' : `write of ${hex(value)}`} (${size} bytes) at ${hex(offset)}`;
    // A round trip that fails answers all ones, as a read of a function that stopped responding would.
    return this.roundTrip(e, IOREQ_TYPE_PCI_CONFIG, 0, offset, dir, value, what, false, size);
  }

  private fireTimer(e: Entry, modelId: number): void {
    e.remoteTimers.delete(modelId);
    if (e.path !== 'emulated' || e.failed !== null) return;
    this.roundTrip(e, IOREQ_TYPE_TIMER, 0, modelId, IOREQ_WRITE, 0, 'timer', false);
  }

  /** A callback request from the device model, for the device whose round trip is in flight. */
  private service(cb: number, a0: number, a1: number, length: number): number {
    const e = this.current!;
    const ctx = this.bus.contextOf(e.row);
    const page = this.requester!.page;
    switch (cb) {
      case CB_IRQ: {
        const line = a0 === -1 ? e.intx : ctx.irq(a0);
        line?.set(a1 !== 0);
        return 0;
      }
      case CB_SET_TIMER: {
        const id = a1;
        const t = this.bus.clock.setTimer(a0, () => this.fireTimer(e, id));
        e.remoteTimers.set(id, t);
        return 0;
      }
      case CB_CANCEL_TIMER: {
        const t = e.remoteTimers.get(a1);
        if (t !== undefined) this.bus.clock.cancelTimer(t);
        e.remoteTimers.delete(a1);
        return 0;
      }
      case CB_DMA_READ:
        return ctx.dma.read(a0 >>> 0, page.data.subarray(0, length)) ? 1 : 0;
      case CB_DMA_WRITE:
        return ctx.dma.write(a0 >>> 0, page.data.subarray(0, length)) ? 1 : 0;
      case CB_OUTBOUND: {
        const name = e.spec.outbound[a0];
        const fn = (e.device as unknown as Record<string, unknown>)[name];
        if (typeof fn === 'function') (fn as (v: number | Uint8Array) => void).call(e.device, length < 0 ? a1 : page.data.slice(0, length));
        return 0;
      }
      case CB_LOG:
        ctx.log(page.readText());
        return 0;
      case CB_MAP: {
        const m = e.mappings[a0];
        if (!m) return -1;
        if (a1 < 0) m.unmap();
        else m.move(a1);
        return 0;
      }
      case CB_BUS_MASTER:
        return e.pciCtx?.busMasterEnabled() ? 1 : 0;
      default:
        return -1;
    }
  }

  /** Each switchable device's path and figures (the monitor's `info paths`). */
  list(): DevicePathInfo[] {
    const stats = this.bus.stats;
    return this.entries.filter((e) => e.row >= 0).map((e) => ({
      name: e.device.name,
      path: e.path,
      traps: stats.counters[e.row * STAT_STRIDE + TRAPS],
      directAccesses: stats.counters[e.row * STAT_STRIDE + DIRECT_ACCESSES],
      bufferedWrites: stats.counters[e.row * STAT_STRIDE + BUFFERED_WRITES],
      rttMedianNs: stats.rttPercentile(e.row, 0.5),
      rtt99Ns: stats.rttPercentile(e.row, 0.99),
      rttMaxNs: stats.counters[e.row * STAT_STRIDE + RTT_MAX_NS],
      failed: e.failed,
    }));
  }

  /** Test hook: make the device model fail `name`'s next register access. */
  sabotage(name: string, mode: 'throw' | 'hang'): void {
    const e = this.entry(name);
    if (e.path !== 'emulated' || !this.link) throw new Error(`${name} is not on the emulated path`);
    this.link.post({ op: 'sabotage', id: e.id, mode });
    this.control(e);
  }

  /** Stop the device-model worker (devices on the emulated path come back direct first). */
  close(): void {
    for (const e of this.entries) if (e.path === 'emulated') this.switchNow(e.device.name, 'direct');
    this.link?.close();
    this.link = null;
  }
}

function hex(v: number): string {
  return '0x' + v.toString(16);
}

/** A register access in words, for a failure report: "port read of 4 at offset 0x10". */
function describeAccess(type: number, dir: number, size: number, addr: number, data: number, count: number): string {
  const space = type === IOREQ_TYPE_COPY ? 'MMIO' : 'port';
  if (count > 1) return `${dir === IOREQ_READ ? 'REP INS' : 'REP OUTS'} of ${count} × ${size} bytes at offset ${hex(addr)}`;
  if (dir === IOREQ_READ) return `${space} read of ${size} at offset ${hex(addr)}`;
  return `${space} write of ${hex(data)} (${size} bytes) at offset ${hex(addr)}`;
}
