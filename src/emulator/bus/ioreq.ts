/**
 * The emulated path's wire (DESIGN.md seam 4): one ioreq slot in a SharedArrayBuffer
 * shared by the vCPU's thread and the device-model worker, modelled on Xen's
 * `struct ioreq` (xen/include/public/hvm/ioreq.h) and its buffered ring
 * (`buffered_iopage`). No messages, no promises: the vCPU writes a request, flips the
 * slot's state and blocks in Atomics.wait until the device model flips it back.
 *
 * Slot states (Xen's STATE_IOREQ_*):
 *   IDLE -> READY (vCPU posted a request) -> INPROCESS (device model took it)
 *        -> RESPONSE (answer in `data`, or in the data area for string I/O) -> IDLE.
 * Unlike Xen, the device model may, while INPROCESS, put a *callback request* into the
 * slot (CALLBACK: raise an IRQ line, set or cancel a timer, DMA, hand a frame to the
 * network) and wait for the vCPU to service it (CALLBACK_DONE). Every effect of an access
 * then happens synchronously, at the virtual instant it would on the direct path, which
 * keeps deterministic mode deterministic. ERROR replaces RESPONSE when the device threw.
 *
 * Buffered writes (Xen's buf_ioreq): writes a device declares harmless to defer go into a
 * ring of RING_SLOTS entries (each: device, block key, offset, size, value and the virtual
 * time of the write) that the vCPU fills without waking anyone; the device model drains it
 * in order before it handles the next answered request. When the ring is full the write
 * goes as an answered request (which drains the ring first), so nothing is lost or reordered.
 */

/** Xen's ioreq types; TIMER, CALL and CONTROL are this emulator's own. */
export const IOREQ_TYPE_PIO = 0;
export const IOREQ_TYPE_COPY = 1; // MMIO
export const IOREQ_TYPE_PCI_CONFIG = 2;
/** A timer the device model set has come due on the vCPU's clock: `data` is its id. */
export const IOREQ_TYPE_TIMER = 8;
/** A call from the machine into the device's outside interface (receive(bytes)): `addr` names it, bytes in the data area. */
export const IOREQ_TYPE_CALL = 9;
/** Take the next control message (load, save, remove a device) from the link. */
export const IOREQ_TYPE_CONTROL = 10;

/** Xen: IOREQ_WRITE 0, IOREQ_READ 1. */
export const IOREQ_WRITE = 0;
export const IOREQ_READ = 1;

export const STATE_IDLE = 0;
export const STATE_READY = 1;
export const STATE_INPROCESS = 2;
export const STATE_CALLBACK = 3;
export const STATE_CALLBACK_DONE = 4;
export const STATE_RESPONSE = 5;
export const STATE_ERROR = 6;

/** Callback requests from the device model to the vCPU (the slot's `cb` field). */
export const CB_IRQ = 1; // a0 = line (-1: PCI INTx), a1 = level
export const CB_SET_TIMER = 2; // a0 = deadline ns, a1 = the model's timer id -> result: 0
export const CB_CANCEL_TIMER = 3; // a1 = the model's timer id
export const CB_DMA_READ = 4; // a0 = address; length bytes -> data area; result 1 ok, 0 fault
export const CB_DMA_WRITE = 5; // a0 = address; length bytes from the data area; result 1 ok, 0 fault
export const CB_OUTBOUND = 6; // a0 = which outbound callback; its bytes in the data area
export const CB_LOG = 7; // UTF-8 message in the data area
export const CB_MAP = 8; // a0 = the mapping's ordinal, a1 = its new start, or -1 to unmap it
export const CB_BUS_MASTER = 9; // result 1 if the PCI command register lets the function master the bus

/** Entries in the buffered ring, a power of two (Xen has 511 in a page; ours is not bound to a page). */
export const RING_SLOTS = 512;
const RING_FIELDS = 6;

// Int32 fields of the header.
const I_STATE = 0;
const I_TYPE = 1;
const I_SIZE = 2;
const I_DIR = 3;
const I_DF = 4;
const I_DATA_IS_PTR = 5;
const I_COUNT = 6;
const I_DEVICE = 7;
const I_KEY = 8;
const I_CB = 9;
const I_LENGTH = 10;
/** The ring's free-running producer and consumer counts (exported for the wrap-around test). */
export const I_RING_WRITE = 11;
export const I_RING_READ = 12;
const I_READY = 13;
// Float64 fields of the header (index into the Float64Array).
const F_ADDR = 8;
const F_DATA = 9;
const F_NOW = 10;
const F_A0 = 11;
const F_A1 = 12;
const F_RESULT = 13;
const F_MODEL_NS = 14;

const HEADER_BYTES = 128;
const RING_BYTES = RING_SLOTS * RING_FIELDS * 8;
/** Default size of the data area: string I/O, DMA chunks, frames, messages. */
export const DEFAULT_DATA_BYTES = 64 * 1024;

/** Allocate the shared page of one vCPU's ioreq slot, ring and data area. */
export function createIoreqBuffer(dataBytes = DEFAULT_DATA_BYTES): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER_BYTES + RING_BYTES + dataBytes);
}

/** One ioreq as the vCPU describes it (Xen's fields). */
export interface Ioreq {
  type: number;
  /** Which device in the device model (its id there). */
  device: number;
  /** Which register block of the device (device-paths.ts's keys). */
  key: number;
  /** Offset in the block (PIO/MMIO), the config register, or the timer/call id. */
  addr: number;
  size: number;
  dir: number;
  /** The value written, for a single write. */
  data: number;
  /** Repeat count of string I/O (REP INS/OUTS): elements of `size` bytes in the data area. */
  count: number;
  /** Direction flag of string I/O: 1 walks addresses downward. */
  df: number;
}

/** Views of the shared page; both sides build one over the same buffer. */
export class IoreqPage {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly ring: Float64Array;
  readonly data: Uint8Array;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.i32 = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.f64 = new Float64Array(buffer, 0, HEADER_BYTES / 8);
    this.ring = new Float64Array(buffer, HEADER_BYTES, RING_SLOTS * RING_FIELDS);
    this.data = new Uint8Array(buffer, HEADER_BYTES + RING_BYTES);
  }

  get state(): number {
    return Atomics.load(this.i32, I_STATE);
  }

  setState(s: number): void {
    Atomics.store(this.i32, I_STATE, s);
    Atomics.notify(this.i32, I_STATE);
  }

  /** Block while the state is `s` (at most timeoutMs); returns the state seen after. */
  waitWhile(s: number, timeoutMs: number): number {
    // Spin first: an answer usually comes within microseconds, and a sleep in Atomics.wait
    // with its wake-up by the other thread costs 10-30 µs more (measured on this project's
    // 2-core machine), which would be most of the round trip.
    const spinUntil = performance.now() + Math.min(this.spinMs, timeoutMs);
    for (;;) {
      for (let i = 0; i < 256; i++) {
        const now = Atomics.load(this.i32, I_STATE);
        if (now !== s) return now;
      }
      if (performance.now() >= spinUntil) break;
    }
    Atomics.wait(this.i32, I_STATE, s, timeoutMs);
    return Atomics.load(this.i32, I_STATE);
  }

  /** How long waitWhile spins before it sleeps (ms). */
  spinMs = 0.2;

  /** The device model says it is up (set once its loop runs). */
  get modelReady(): boolean {
    return Atomics.load(this.i32, I_READY) === 1;
  }

  markModelReady(): void {
    Atomics.store(this.i32, I_READY, 1);
    Atomics.notify(this.i32, I_READY);
  }

  waitModelReady(timeoutMs: number): boolean {
    if (this.modelReady) return true;
    Atomics.wait(this.i32, I_READY, 0, timeoutMs);
    return this.modelReady;
  }

  /** Virtual time at the request (written by the vCPU; the device model's clock reads it). */
  get now(): number {
    return this.f64[F_NOW];
  }

  set now(ns: number) {
    this.f64[F_NOW] = ns;
  }

  writeRequest(r: Ioreq): void {
    const i = this.i32;
    i[I_TYPE] = r.type;
    i[I_DEVICE] = r.device;
    i[I_KEY] = r.key;
    i[I_SIZE] = r.size;
    i[I_DIR] = r.dir;
    i[I_COUNT] = r.count;
    i[I_DF] = r.df;
    i[I_DATA_IS_PTR] = r.count > 1 ? 1 : 0;
    this.f64[F_ADDR] = r.addr;
    this.f64[F_DATA] = r.data;
  }

  readRequest(): Ioreq {
    const i = this.i32;
    return {
      type: i[I_TYPE], device: i[I_DEVICE], key: i[I_KEY], size: i[I_SIZE], dir: i[I_DIR],
      count: i[I_COUNT], df: i[I_DF], addr: this.f64[F_ADDR], data: this.f64[F_DATA],
    };
  }

  /** Is the request's data in the data area (string I/O) rather than in `data`? */
  get dataIsPtr(): boolean {
    return this.i32[I_DATA_IS_PTR] === 1;
  }

  get responseData(): number {
    return this.f64[F_DATA];
  }

  set responseData(v: number) {
    this.f64[F_DATA] = v;
  }

  /** Device-model time spent on the last request, ns (reported with the response). */
  get modelNs(): number {
    return this.f64[F_MODEL_NS];
  }

  set modelNs(v: number) {
    this.f64[F_MODEL_NS] = v;
  }

  /** Bytes in the data area that go with the current request, callback or response. */
  get length(): number {
    return this.i32[I_LENGTH];
  }

  set length(n: number) {
    this.i32[I_LENGTH] = n;
  }

  writeCallback(cb: number, a0: number, a1: number, length: number): void {
    this.i32[I_CB] = cb;
    this.f64[F_A0] = a0;
    this.f64[F_A1] = a1;
    this.i32[I_LENGTH] = length;
  }

  readCallback(): { cb: number; a0: number; a1: number; length: number } {
    return { cb: this.i32[I_CB], a0: this.f64[F_A0], a1: this.f64[F_A1], length: this.i32[I_LENGTH] };
  }

  get callbackResult(): number {
    return this.f64[F_RESULT];
  }

  set callbackResult(v: number) {
    this.f64[F_RESULT] = v;
  }

  writeText(text: string): void {
    const bytes = new TextEncoder().encode(text).subarray(0, this.data.length);
    this.data.set(bytes);
    this.length = bytes.length;
  }

  readText(): string {
    return new TextDecoder().decode(this.data.slice(0, this.length));
  }

  // -- the buffered ring: the vCPU produces, the device model consumes --------------------

  /** Entries waiting in the ring. */
  get buffered(): number {
    return (Atomics.load(this.i32, I_RING_WRITE) - Atomics.load(this.i32, I_RING_READ)) | 0;
  }

  /** Post a write that needs no answer; false when the ring is full (send it answered instead). */
  pushBuffered(device: number, key: number, offset: number, size: number, value: number, now: number): boolean {
    const w = Atomics.load(this.i32, I_RING_WRITE);
    const r = Atomics.load(this.i32, I_RING_READ);
    if (((w - r) | 0) >= RING_SLOTS) return false;
    const at = (w & (RING_SLOTS - 1)) * RING_FIELDS;
    const ring = this.ring;
    ring[at] = device;
    ring[at + 1] = key;
    ring[at + 2] = offset;
    ring[at + 3] = size;
    ring[at + 4] = value;
    ring[at + 5] = now;
    // The entry is complete before the pointer that publishes it moves (Atomics.store is sequentially consistent).
    Atomics.store(this.i32, I_RING_WRITE, (w + 1) | 0);
    return true;
  }

  /** Hand every waiting entry to `fn` in the order written; returns how many. */
  drainBuffered(fn: (device: number, key: number, offset: number, size: number, value: number, now: number) => void): number {
    const w = Atomics.load(this.i32, I_RING_WRITE);
    let r = Atomics.load(this.i32, I_RING_READ);
    let n = 0;
    const ring = this.ring;
    while (r !== w) {
      const at = (r & (RING_SLOTS - 1)) * RING_FIELDS;
      fn(ring[at], ring[at + 1], ring[at + 2], ring[at + 3], ring[at + 4], ring[at + 5]);
      r = (r + 1) | 0;
      Atomics.store(this.i32, I_RING_READ, r);
      n++;
    }
    return n;
  }
}

/**
 * String I/O (REP INS/OUTS as one ioreq, Xen's data_is_ptr): element `i` of `count`
 * sits in the data area at i * size, little-endian, in the order the CPU moves them; `df`
 * says whether the guest's addresses walk down, which the element order already reflects.
 * The same layout serves the bus's string runs in guest RAM (IoBus.insString).
 */
export function loadElement(bytes: Uint8Array, o: number, size: number): number {
  return size === 1 ? bytes[o] : size === 2 ? bytes[o] | (bytes[o + 1] << 8) : (bytes[o] | (bytes[o + 1] << 8) | (bytes[o + 2] << 16) | (bytes[o + 3] << 24)) >>> 0;
}

export function storeElement(bytes: Uint8Array, o: number, size: number, v: number): void {
  bytes[o] = v;
  if (size === 1) return;
  bytes[o + 1] = v >>> 8;
  if (size === 2) return;
  bytes[o + 2] = v >>> 16;
  bytes[o + 3] = v >>> 24;
}

/** Most elements of `size` bytes one string ioreq can carry. */
export function maxElements(page: IoreqPage, size: number): number {
  return Math.floor(page.data.length / size);
}

/** Why a round trip did not complete: the device model threw, or stopped answering. */
export class IoreqError extends Error {
  constructor(message: string, readonly reason: 'threw' | 'timeout') {
    super(message);
    this.name = 'IoreqError';
  }
}

/**
 * The vCPU's side: post one request and wait for its answer, servicing the device
 * model's callback requests meanwhile. `wait` is how it blocks (Atomics; a test in one
 * thread passes a function that runs the other side instead).
 */
export class IoreqRequester {
  /** Give up on the device model after this long without an answer (ms of host time). */
  timeoutMs = 5_000;

  constructor(
    readonly page: IoreqPage,
    private readonly service: (cb: number, a0: number, a1: number, length: number) => number,
    private readonly wait: (state: number, timeoutMs: number) => number = (s, t) => page.waitWhile(s, t),
  ) {}

  /**
   * Post `r` at virtual time `now` and return the answer's data (0 for a write). Throws
   * IoreqError when the device model threw or did not answer within timeoutMs; the slot is
   * then left IDLE so the next request starts clean.
   */
  /** If the device model has put a callback request in the slot, service it; false if there was none. */
  serviceCallback(): boolean {
    const page = this.page;
    if (page.state !== STATE_CALLBACK) return false;
    const { cb, a0, a1, length } = page.readCallback();
    page.callbackResult = this.service(cb, a0, a1, length);
    page.setState(STATE_CALLBACK_DONE);
    return true;
  }

  request(r: Ioreq, now: number): number {
    const page = this.page;
    page.now = now;
    page.writeRequest(r);
    page.setState(STATE_READY);
    let deadline = performance.now() + this.timeoutMs;
    for (;;) {
      const s = page.state;
      if (s === STATE_RESPONSE) {
        const v = page.responseData;
        page.setState(STATE_IDLE);
        return v;
      }
      if (s === STATE_ERROR) {
        const message = page.readText();
        page.setState(STATE_IDLE);
        throw new IoreqError(message, 'threw');
      }
      if (this.serviceCallback()) {
        deadline = performance.now() + this.timeoutMs;
        continue;
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        page.setState(STATE_IDLE);
        throw new IoreqError(`no answer within ${this.timeoutMs} ms`, 'timeout');
      }
      this.wait(s, left);
    }
  }
}

/** The device model's poll window before it sleeps: where it starts and its bounds (ms). */
export const POLL_MIN_MS = 0.2;
export const POLL_MAX_MS = 2;

/** The poll window after a request that came `idleMs` after the wait began, while the model slept (RequestPoller). */
export function nextPollMs(pollMs: number, idleMs: number): number {
  if (idleMs <= POLL_MAX_MS) return Math.min(POLL_MAX_MS, Math.max(pollMs * 2, idleMs * 1.5));
  return Math.max(POLL_MIN_MS, pollMs / 2);
}

/**
 * How the device model waits for the next request: it polls the slot for a while before it
 * sleeps in Atomics.wait, and adapts how long, as KVM's halt polling does for a halted vCPU
 * (Linux, Documentation/virt/kvm/halt-polling.rst). A request that finds the model asleep
 * pays for the wake-up: 10-30 µs between two Node threads on this project's machine, and
 * 250-500 µs between two Chromium workers (bench-paths-page), which is most of a round trip.
 * So when a request comes while the model sleeps but within POLL_MAX_MS of its last one,
 * the window grows (doubling, or to 1.5 times that gap) and the next such request is caught
 * polling; when the model sleeps longer than POLL_MAX_MS, no window would have paid off and
 * it halves. A request caught polling leaves the window as it is. The cost is a core kept
 * busy while the guest works its devices, which is what an answered trap needs anyway.
 */
export class RequestPoller {
  /** The current poll window (ms). */
  pollMs = POLL_MIN_MS;

  constructor(private readonly page: IoreqPage) {}

  /** Block until a request is READY (true) or timeoutMs passed (false). */
  wait(timeoutMs: number): boolean {
    const i32 = this.page.i32;
    if (Atomics.load(i32, I_STATE) === STATE_READY) return true;
    const start = performance.now();
    const pollUntil = start + Math.min(this.pollMs, timeoutMs);
    for (;;) {
      for (let i = 0; i < 256; i++) if (Atomics.load(i32, I_STATE) === STATE_READY) return true;
      if (performance.now() >= pollUntil) break;
    }
    const deadline = start + timeoutMs;
    for (;;) {
      const s = Atomics.load(i32, I_STATE);
      const now = performance.now();
      if (s === STATE_READY) {
        this.pollMs = nextPollMs(this.pollMs, now - start);
        return true;
      }
      if (now >= deadline) {
        this.pollMs = nextPollMs(this.pollMs, Infinity);
        return false;
      }
      Atomics.wait(i32, I_STATE, s, deadline - now);
    }
  }
}

/**
 * The device model's side of one request: take it, call back into the vCPU as often as
 * needed, then answer. `wait` as for IoreqRequester.
 */
export class IoreqResponder {
  timeoutMs = 5_000;

  /** Waits for requests when this side blocks with Atomics (no `wait` given); null in a one-thread test. */
  private readonly poller: RequestPoller | null;

  private readonly wait: (state: number, timeoutMs: number) => number;

  constructor(readonly page: IoreqPage, wait?: (state: number, timeoutMs: number) => number) {
    this.wait = wait ?? ((s, t) => page.waitWhile(s, t));
    this.poller = wait === undefined ? new RequestPoller(page) : null;
  }

  /** Block until a request is READY (or timeoutMs passed: false); mark it INPROCESS. */
  take(timeoutMs: number): boolean {
    if (this.poller !== null) {
      if (!this.poller.wait(timeoutMs)) return false;
    } else {
      const deadline = performance.now() + timeoutMs;
      let s = this.page.state;
      while (s !== STATE_READY) {
        const left = deadline - performance.now();
        if (left <= 0) return false;
        s = this.wait(s, left);
      }
    }
    this.page.setState(STATE_INPROCESS);
    return true;
  }

  /** Ask the vCPU for a service and return its result (bytes go both ways in the data area). */
  callback(cb: number, a0: number, a1: number, length: number): number {
    const page = this.page;
    page.writeCallback(cb, a0, a1, length);
    page.setState(STATE_CALLBACK);
    let s = page.state;
    const deadline = performance.now() + this.timeoutMs;
    while (s === STATE_CALLBACK) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error('the vCPU did not service a callback');
      s = this.wait(s, left);
    }
    const v = page.callbackResult;
    page.setState(STATE_INPROCESS);
    return v;
  }

  respond(data: number, modelNs: number): void {
    this.page.responseData = data;
    this.page.modelNs = modelNs;
    this.page.setState(STATE_RESPONSE);
  }

  fail(message: string): void {
    this.page.writeText(message);
    this.page.setState(STATE_ERROR);
  }
}
