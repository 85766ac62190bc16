/**
 * A one-way message pipe through a SharedArrayBuffer, for replies that must reach a thread
 * that never returns to its event loop while it waits for them (the page's device model
 * answering the vCPU: docs/device-paths.md, "The page"). Node reads a MessagePort
 * synchronously with receiveMessageOnPort; a browser worker has no such call, so the
 * device model's replies (a device's saved state, a property's value) are encoded as bytes
 * (encodePlain) and written into a shared mailbox the vCPU reads with Atomics.
 *
 * The mailbox holds one chunk at a time: a header (state EMPTY/FULL, message id, the
 * chunk's offset and length, the message's total length) and a data area. A message longer
 * than the data area goes in several chunks; the reader takes them in order, waiting for
 * each, and the writer sends the rest (flush) once its thread is free to wait.
 *
 * Only plain data crosses: what a device's saveState returns (vmstate.ts: numbers,
 * booleans, strings, null, typed arrays, arrays and records of those) and the values of
 * SwitchableSpec.getters. Anything else is refused with an error naming it.
 */

// -- the encoding of plain data ----------------------------------------------------------

const T_UNDEFINED = 0;
const T_NULL = 1;
const T_FALSE = 2;
const T_TRUE = 3;
const T_NUMBER = 4;
const T_STRING = 5;
const T_ARRAY = 6;
const T_RECORD = 7;
const T_TYPED = 8;

/** Typed arrays by their tag byte (the order is the wire format: append only). */
const TYPED: { name: string; ctor: new (b: ArrayBuffer) => ArrayBufferView }[] = [
  { name: 'Uint8Array', ctor: Uint8Array },
  { name: 'Int8Array', ctor: Int8Array },
  { name: 'Uint16Array', ctor: Uint16Array },
  { name: 'Int16Array', ctor: Int16Array },
  { name: 'Uint32Array', ctor: Uint32Array },
  { name: 'Int32Array', ctor: Int32Array },
  { name: 'Float32Array', ctor: Float32Array },
  { name: 'Float64Array', ctor: Float64Array },
  { name: 'Uint8ClampedArray', ctor: Uint8ClampedArray },
];

class Writer {
  bytes = new Uint8Array(256);
  view = new DataView(this.bytes.buffer);
  at = 0;

  room(n: number): void {
    if (this.at + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.at + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.bytes.subarray(0, this.at));
    this.bytes = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.room(1);
    this.bytes[this.at++] = v;
  }

  u32(v: number): void {
    this.room(4);
    this.view.setUint32(this.at, v, true);
    this.at += 4;
  }

  f64(v: number): void {
    this.room(8);
    this.view.setFloat64(this.at, v, true);
    this.at += 8;
  }

  raw(b: Uint8Array): void {
    this.room(b.length);
    this.bytes.set(b, this.at);
    this.at += b.length;
  }

  str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u32(b.length);
    this.raw(b);
  }
}

function put(w: Writer, v: unknown, path: string): void {
  if (v === undefined) return w.u8(T_UNDEFINED);
  if (v === null) return w.u8(T_NULL);
  if (v === false) return w.u8(T_FALSE);
  if (v === true) return w.u8(T_TRUE);
  if (typeof v === 'number') {
    w.u8(T_NUMBER);
    return w.f64(v);
  }
  if (typeof v === 'string') {
    w.u8(T_STRING);
    return w.str(v);
  }
  if (Array.isArray(v)) {
    w.u8(T_ARRAY);
    w.u32(v.length);
    v.forEach((x, i) => put(w, x, `${path}[${i}]`));
    return;
  }
  if (ArrayBuffer.isView(v)) {
    const kind = TYPED.findIndex((t) => v.constructor === t.ctor);
    if (kind < 0) throw new Error(`${path || 'the value'} is a ${v.constructor.name}, which cannot cross the mailbox`);
    w.u8(T_TYPED);
    w.u8(kind);
    w.u32(v.byteLength);
    w.raw(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    return;
  }
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const entries = Object.entries(v);
    w.u8(T_RECORD);
    w.u32(entries.length);
    for (const [k, x] of entries) {
      w.str(k);
      put(w, x, path ? `${path}.${k}` : k);
    }
    return;
  }
  const what = typeof v === 'object' ? (v.constructor?.name ?? 'object') : typeof v;
  throw new Error(`${path || 'the value'} is a ${what}, which cannot cross the mailbox (plain data only)`);
}

/** Plain data as bytes (see the header for what is plain). Throws naming the first part that is not. */
export function encodePlain(value: unknown): Uint8Array {
  const w = new Writer();
  put(w, value, '');
  return w.bytes.slice(0, w.at);
}

/** The value encodePlain encoded; typed arrays come back as fresh copies. */
export function decodePlain(bytes: Uint8Array): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const need = (n: number) => {
    if (at + n > bytes.length) throw new Error('a message in the mailbox ends early');
  };
  const u32 = () => {
    need(4);
    const v = view.getUint32(at, true);
    at += 4;
    return v;
  };
  const str = () => {
    const n = u32();
    need(n);
    const s = new TextDecoder().decode(bytes.subarray(at, at + n));
    at += n;
    return s;
  };
  const get = (): unknown => {
    need(1);
    const tag = bytes[at++];
    switch (tag) {
      case T_UNDEFINED: return undefined;
      case T_NULL: return null;
      case T_FALSE: return false;
      case T_TRUE: return true;
      case T_NUMBER: {
        need(8);
        const v = view.getFloat64(at, true);
        at += 8;
        return v;
      }
      case T_STRING: return str();
      case T_ARRAY: {
        const n = u32();
        const out: unknown[] = [];
        for (let i = 0; i < n; i++) out.push(get());
        return out;
      }
      case T_RECORD: {
        const n = u32();
        const out: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          const k = str();
          out[k] = get();
        }
        return out;
      }
      case T_TYPED: {
        need(1);
        const t = TYPED[bytes[at++]];
        const n = u32();
        need(n);
        if (!t) throw new Error('a message in the mailbox names an unknown typed array');
        // A copy into a buffer of its own: aligned for the array's element size.
        const copy = bytes.slice(at, at + n);
        at += n;
        return new t.ctor(copy.buffer);
      }
      default:
        throw new Error(`a message in the mailbox has an unknown tag ${tag}`);
    }
  };
  const v = get();
  if (at !== bytes.length) throw new Error('a message in the mailbox has bytes after its end');
  return v;
}

// -- the shared mailbox -------------------------------------------------------------------

const EMPTY = 0;
const FULL = 1;
// Int32 header fields.
const H_STATE = 0;
const H_ID = 1;
const H_OFFSET = 2;
const H_LENGTH = 3;
const H_TOTAL = 4;
const HEADER_BYTES = 32;

/** Default data area: a NE2000 with its 512 KiB receive queue full fits in one chunk. */
export const MAILBOX_BYTES = 1 << 20;

export function createMailbox(dataBytes = MAILBOX_BYTES): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER_BYTES + dataBytes);
}

class Views {
  readonly head: Int32Array;
  readonly data: Uint8Array;
  constructor(buffer: SharedArrayBuffer) {
    this.head = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.data = new Uint8Array(buffer, HEADER_BYTES);
  }
}

/** The sending end. `send` never blocks; chunks that do not fit yet go out in `flush`. */
export class MailboxSender {
  private readonly v: Views;
  private nextId = 1;
  /** The message being sent, and how much of it is in the mailbox or read already. */
  private message: Uint8Array | null = null;
  private id = 0;
  private sent = 0;

  constructor(buffer: SharedArrayBuffer) {
    this.v = new Views(buffer);
  }

  /** Chunks of the current message still to go. */
  get pending(): boolean {
    return this.message !== null;
  }

  /**
   * Start sending `value`. A message the reader never took (it gave up on it) is replaced:
   * the reader only wants the newest reply.
   */
  send(value: unknown): void {
    this.message = encodePlain(value);
    this.id = this.nextId++;
    this.sent = 0;
    this.writeChunk();
  }

  /**
   * Put the next chunks in as the reader takes them; gives up (dropping the rest) after
   * timeoutMs, or as soon as `abandon()` says the reader has moved on.
   */
  flush(timeoutMs: number, abandon: () => boolean = () => false): boolean {
    const deadline = performance.now() + timeoutMs;
    while (this.message !== null) {
      if (Atomics.load(this.v.head, H_STATE) === EMPTY) {
        this.writeChunk();
        continue;
      }
      if (abandon() || performance.now() >= deadline) {
        this.message = null;
        return false;
      }
      Atomics.wait(this.v.head, H_STATE, FULL, 1);
    }
    return true;
  }

  private writeChunk(): void {
    const m = this.message!;
    const { head, data } = this.v;
    const n = Math.min(data.length, m.length - this.sent);
    data.set(m.subarray(this.sent, this.sent + n));
    head[H_ID] = this.id;
    head[H_OFFSET] = this.sent;
    head[H_LENGTH] = n;
    head[H_TOTAL] = m.length;
    this.sent += n;
    if (this.sent >= m.length) this.message = null;
    // The chunk is complete before the state that publishes it (Atomics.store is sequentially consistent).
    Atomics.store(head, H_STATE, FULL);
    Atomics.notify(head, H_STATE);
  }
}

/** The receiving end. */
export class MailboxReceiver {
  private readonly v: Views;
  /** How long to wait for the next chunk of a message already begun. */
  chunkTimeoutMs = 5_000;

  constructor(buffer: SharedArrayBuffer) {
    this.v = new Views(buffer);
  }

  /**
   * The next message, or undefined when none is waiting (it does not wait for a message to
   * start; once one has, it waits for the rest of it).
   */
  receive(): unknown {
    const { head, data } = this.v;
    if (Atomics.load(head, H_STATE) !== FULL) return undefined;
    let message: Uint8Array | null = null;
    let id = 0;
    let got = 0;
    for (;;) {
      const offset = head[H_OFFSET];
      const length = head[H_LENGTH];
      if (offset === 0) {
        // The start of a message (a newer one replaces a message left half-read).
        message = new Uint8Array(head[H_TOTAL]);
        id = head[H_ID];
        got = 0;
      }
      const ours = message !== null && head[H_ID] === id && offset === got && offset + length <= message.length;
      if (ours) {
        message!.set(data.subarray(0, length), offset);
        got += length;
      }
      Atomics.store(head, H_STATE, EMPTY);
      Atomics.notify(head, H_STATE);
      if (!ours) return undefined;
      if (got === message!.length) return decodePlain(message!);
      const deadline = performance.now() + this.chunkTimeoutMs;
      while (Atomics.load(head, H_STATE) !== FULL) {
        const left = deadline - performance.now();
        if (left <= 0) return undefined;
        Atomics.wait(head, H_STATE, EMPTY, left);
      }
    }
  }
}
