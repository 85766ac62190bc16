/**
 * Device state as a contract (issue 22): each device declares its state once, as data,
 * the way QEMU declares a VMStateDescription — a name, a version, the oldest version it
 * can still load, and every field with its type. The same declaration
 *   - types the device's `state` (VmStateOf<typeof SCHEMA>),
 *   - stamps what saveState() returns with the schema's name and version,
 *   - checks what loadState() is given, field by field, before the device changes anything.
 *
 * Moving a device between the emulated and the direct path hands its state from one copy
 * of the device to another, so a state that does not fit the schema is refused with a
 * message naming the device and the field, never half-applied.
 *
 *   const UART_STATE = vmstate('uart16550a', 2, {
 *     ier: u8, lcr: u8, rx: array(u8, 0, 16), timeoutAt: deadline,
 *     msrDelta: since(2, u8, 0),          // added in version 2: a version-1 state loads with 0
 *   });
 *   saveState() { return UART_STATE.save(this.state); }
 *   loadState(s) { this.state = UART_STATE.load(s, this.name); ...re-arm timers... }
 *
 * Saved states are plain data (numbers, booleans, strings, null, typed arrays, arrays and
 * records of those): structuredClone-able, so they cross a worker boundary as they are.
 */
import type { DeviceState } from './device.ts';

/** One field's type: what it accepts (`expect`, for messages), how it is checked and copied. */
export interface FieldType<T> {
  readonly expect: string;
  /** An error message for `value` at `path`, or null when it fits. `version` is the saved state's. */
  check(value: unknown, path: string, version: number): string | null;
  /** A deep copy (typed arrays and arrays are never shared between a device and a saved state). */
  copy(value: T): T;
}

/** A field added in a later version: absent from older states, which load with `fallback`. */
export interface SinceField<T> extends FieldType<T> {
  readonly since: number;
  readonly fallback: T;
}

export type Fields = Record<string, FieldType<unknown>>;
export type TypeOf<F> = F extends FieldType<infer T> ? T : never;
export type RecordOf<F extends Fields> = { -readonly [K in keyof F]: TypeOf<F[K]> };

/** Keys that stamp a saved state; no field may use them. */
export const STAMP_NAME = '$vmstate';
export const STAMP_VERSION = '$version';

export interface VmStateDescription<F extends Fields> {
  readonly name: string;
  readonly version: number;
  /** The oldest saved version load() accepts (fields `since` a later version take their fallback). */
  readonly minVersion: number;
  readonly fields: F;
  /** A stamped deep copy of `state`: what a device's saveState() returns. */
  save(state: RecordOf<F>): DeviceState;
  /**
   * Check `saved` against the schema and return a deep copy as the device's state.
   * Throws an Error naming `device` and the first field that does not fit; `saved` is not modified.
   */
  load(saved: unknown, device: string): RecordOf<F>;
  /** The first problem with `saved` (as load() would report it), or null. */
  validate(saved: unknown, device: string): string | null;
}

export type VmStateOf<D> = D extends VmStateDescription<infer F> ? RecordOf<F> : never;

/** How a value reads in a message: strings quoted, arrays and typed arrays by their shape. */
export function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}(${(v as unknown as ArrayLike<number>).length})`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') return 'a record';
  return typeof v;
}

const fail = (path: string, expect: string, v: unknown) => `state field '${path}' must be ${expect}, got ${show(v)}`;

/** An integer in lo..hi (inclusive). */
export function int(lo: number, hi: number): FieldType<number> {
  const expect = `a number ${lo}..${hi}`;
  return {
    expect,
    check: (v, path) => (typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi ? null : fail(path, expect, v)),
    copy: (v) => v,
  };
}

/** A finite number in lo..hi (inclusive), fractions allowed (times, ratios). */
export function real(lo = -Number.MAX_VALUE, hi = Number.MAX_VALUE): FieldType<number> {
  const expect =
    hi !== Number.MAX_VALUE ? `a number ${lo}..${hi}` : lo !== -Number.MAX_VALUE ? `a finite number >= ${lo}` : 'a finite number';
  return {
    expect,
    check: (v, path) => (typeof v === 'number' && Number.isFinite(v) && v >= lo && v <= hi ? null : fail(path, expect, v)),
    copy: (v) => v,
  };
}

export const u8 = int(0, 0xff);
export const u16 = int(0, 0xffff);
export const u32 = int(0, 0xffffffff);
export const i32 = int(-0x80000000, 0x7fffffff);
/** A 32-bit register as JavaScript's bit operators leave it: signed (v | 0) or unsigned (v >>> 0). */
export const reg32 = int(-0x80000000, 0xffffffff);
export const f64 = real();
/** A monotone event count (frames, bytes, errors). */
export const count = int(0, Number.MAX_SAFE_INTEGER);
/** Virtual nanoseconds since power-on (clock.ts): never negative. */
export const ns = real(0);

export const bool: FieldType<boolean> = {
  expect: 'a boolean',
  check: (v, path) => (typeof v === 'boolean' ? null : fail(path, 'a boolean', v)),
  copy: (v) => v,
};

export const str: FieldType<string> = {
  expect: 'a string',
  check: (v, path) => (typeof v === 'string' ? null : fail(path, 'a string', v)),
  copy: (v) => v,
};

/** One of a fixed set of strings or numbers (a state machine's phase, a mode). */
export function oneOf<const V extends string | number>(...values: V[]): FieldType<V> {
  const expect = `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`;
  const set = new Set<unknown>(values);
  return { expect, check: (v, path) => (set.has(v) ? null : fail(path, expect, v)), copy: (v) => v };
}

/** `inner` or null (an optional register, a cleared reference). */
export function nullable<T>(inner: FieldType<T>): FieldType<T | null> {
  const expect = `${inner.expect} or null`;
  return {
    expect,
    check(v, path, version) {
      if (v === null) return null;
      const e = inner.check(v, path, version);
      // Inside a record, the field that does not fit says more than "a record or null".
      return e === null ? null : inner.expect === 'a record' && isRecord(v) ? e : fail(path, expect, v);
    },
    copy: (v) => (v === null ? null : inner.copy(v)),
  };
}

/**
 * A timer as state (DESIGN.md seam 6): the virtual time in ns it fires at, or null when not
 * armed. Callbacks cannot be saved; the device re-arms the timer at this deadline on load.
 */
export const deadline = nullable(ns);

type TypedArrayCtor<A> = { new (n: number): A; readonly name: string };
type NumericArray = Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array;

function typedArray<A extends NumericArray>(ctor: TypedArrayCtor<A>) {
  return (min: number, max = min): FieldType<A> => {
    const len = min === max ? `${min}` : `${min}..${max}`;
    const expect = `a ${ctor.name}(${len})`;
    return {
      expect,
      check: (v, path) =>
        v instanceof (ctor as unknown as typeof Uint8Array) && (v as A).length >= min && (v as A).length <= max ? null : fail(path, expect, v),
      copy: (v) => v.slice() as A,
    };
  };
}

/** Typed arrays of a fixed length (`bytes(128)`) or a length range (`bytes(0, 2048)`). */
export const bytes = typedArray<Uint8Array>(Uint8Array);
export const words = typedArray<Uint16Array>(Uint16Array);
export const dwords = typedArray<Uint32Array>(Uint32Array);
export const int32s = typedArray<Int32Array>(Int32Array);
export const doubles = typedArray<Float64Array>(Float64Array);

/** A plain array of `min`..`max` items of one type (a FIFO, a queue of frames). */
export function array<T>(item: FieldType<T>, min: number, max = min): FieldType<T[]> {
  const len = min === max ? `${min}` : `${min}..${max}`;
  const expect = `an array of ${len} items`;
  return {
    expect,
    check(v, path, version) {
      if (!Array.isArray(v) || v.length < min || v.length > max) return fail(path, expect, v);
      for (let i = 0; i < v.length; i++) {
        const e = item.check(v[i], `${path}[${i}]`, version);
        if (e) return e;
      }
      return null;
    },
    copy: (v) => v.map((x) => item.copy(x)),
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

function checkFields(fields: Fields, v: unknown, path: string, version: number): string | null {
  if (!isRecord(v)) {
    return path ? fail(path, 'a record', v) : `state must be a record, got ${show(v)}`;
  }
  const rec = v as Record<string, unknown>;
  const at = (k: string) => (path ? `${path}.${k}` : k);
  for (const [k, type] of Object.entries(fields)) {
    const since = (type as Partial<SinceField<unknown>>).since;
    if (!(k in rec)) {
      if (since !== undefined && version < since) continue;
      return `state field '${at(k)}' is missing`;
    }
    const e = type.check(rec[k], at(k), version);
    if (e) return e;
  }
  for (const k of Object.keys(rec)) {
    if (!path && (k === STAMP_NAME || k === STAMP_VERSION)) continue;
    if (!(k in fields)) return `state field '${at(k)}' is not part of the state`;
  }
  return null;
}

function copyFields<F extends Fields>(fields: F, rec: Record<string, unknown>): RecordOf<F> {
  const out: Record<string, unknown> = {};
  for (const [k, type] of Object.entries(fields)) {
    out[k] = k in rec ? type.copy(rec[k]) : type.copy((type as SinceField<unknown>).fallback);
  }
  return out as RecordOf<F>;
}

/** A nested record (one channel, one drive, one counter). */
export function record<F extends Fields>(fields: F): FieldType<RecordOf<F>> {
  return {
    expect: 'a record',
    check: (v, path, version) => checkFields(fields, v, path, version),
    copy: (v) => copyFields(fields, v as Record<string, unknown>),
  };
}

/** A field added in version `version`: states saved before it load with `fallback`. */
export function since<T>(version: number, type: FieldType<T>, fallback: T): SinceField<T> {
  return { ...type, since: version, fallback, check: type.check, copy: type.copy };
}

/**
 * Declare a device's state. `version` is bumped whenever a field is added, removed or
 * changes meaning; `minVersion` is the oldest saved version still accepted (added fields
 * are declared with since()).
 */
export function vmstate<F extends Fields>(name: string, version: number, fields: F, options: { minVersion?: number } = {}): VmStateDescription<F> {
  const minVersion = options.minVersion ?? version;
  if (STAMP_NAME in fields || STAMP_VERSION in fields) throw new Error(`vmstate ${name}: '${STAMP_NAME}' and '${STAMP_VERSION}' are reserved`);
  const validate = (saved: unknown, device: string): string | null => {
    const who = device === name ? name : `${name} ${device}`;
    if (typeof saved !== 'object' || saved === null || Array.isArray(saved)) return `${who}: state must be a record, got ${show(saved)}`;
    const rec = saved as Record<string, unknown>;
    if (rec[STAMP_NAME] !== name) return `${who}: not a ${name} state (stamped ${show(rec[STAMP_NAME])})`;
    const v = rec[STAMP_VERSION];
    if (typeof v !== 'number' || !Number.isInteger(v)) return `${who}: state version must be an integer, got ${show(v)}`;
    if (v > version) return `${who}: state version ${v} is newer than this build's ${version}`;
    if (v < minVersion) return `${who}: state version ${v} is older than the oldest loadable, ${minVersion}`;
    const e = checkFields(fields, rec, '', v);
    return e ? `${who}: ${e}` : null;
  };
  return {
    name,
    version,
    minVersion,
    fields,
    save: (state) => ({ [STAMP_NAME]: name, [STAMP_VERSION]: version, ...copyFields(fields, state as Record<string, unknown>) }),
    load(saved, device) {
      const e = validate(saved, device);
      if (e) throw new Error(e);
      return copyFields(fields, saved as Record<string, unknown>);
    },
    validate,
  };
}
