/**
 * A WebAssembly module writer for the translator's WebAssembly tier (docs/cpu-speed.md,
 * issue 25): the binary format by hand, no dependency. Only what translated code needs:
 * i32 values, one imported memory (guest RAM, `PhysicalMemory.wasmMemory`), imported
 * functions (call-outs to the Cpu), and exported functions whose bodies are built with
 * `Body`'s opcode helpers.
 *
 * References are to the WebAssembly Core Specification 2.0, chapter 5 (binary format).
 */

/** Value type i32 (§5.3.1). */
export const I32 = 0x7f;
/** Empty block type (§5.4.1). */
export const VOID = 0x40;

/** Instruction opcodes used by translated code (§5.4). */
export const OP = {
  unreachable: 0x00, block: 0x02, loop: 0x03, if: 0x04, else: 0x05, end: 0x0b,
  br: 0x0c, br_if: 0x0d, br_table: 0x0e, return: 0x0f, call: 0x10,
  drop: 0x1a, select: 0x1b,
  local_get: 0x20, local_set: 0x21, local_tee: 0x22, global_get: 0x23, global_set: 0x24,
  i32_load: 0x28, i32_load8_s: 0x2c, i32_load8_u: 0x2d, i32_load16_s: 0x2e, i32_load16_u: 0x2f,
  i32_store: 0x36, i32_store8: 0x3a, i32_store16: 0x3b,
  i32_const: 0x41,
  i32_eqz: 0x45, i32_eq: 0x46, i32_ne: 0x47, i32_lt_s: 0x48, i32_lt_u: 0x49, i32_gt_s: 0x4a,
  i32_gt_u: 0x4b, i32_le_s: 0x4c, i32_le_u: 0x4d, i32_ge_s: 0x4e, i32_ge_u: 0x4f,
  i32_add: 0x6a, i32_sub: 0x6b, i32_mul: 0x6c, i32_and: 0x71, i32_or: 0x72, i32_xor: 0x73,
  i32_shl: 0x74, i32_shr_s: 0x75, i32_shr_u: 0x76, i32_rotl: 0x77, i32_rotr: 0x78,
  i32_extend8_s: 0xc0, i32_extend16_s: 0xc1,
} as const;

/** Unsigned LEB128 (§5.2.2) of a non-negative integer below 2^32. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  n >>>= 0;
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (§5.2.2) of an int32 (a value >= 2^31 is taken as its int32 bits). */
export function sleb(n: number): number[] {
  const out: number[] = [];
  n |= 0;
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

/** A name (§5.2.4): its UTF-8 length, then its bytes. */
function name(s: string): number[] {
  const bytes = Array.from(new TextEncoder().encode(s));
  return [...uleb(bytes.length), ...bytes];
}

/** A vector (§5.1.3) of already-encoded items. */
function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

/** A section (§5.5.2): id, byte size, contents. */
function section(id: number, contents: number[]): number[] {
  return [id, ...uleb(contents.length), ...contents];
}

/**
 * The code of one function body. Locals are numbered parameters first (§4.4.5.1): `local()`
 * adds an i32 local after the parameters and returns its index.
 */
export class Body {
  readonly code: number[] = [];
  private extra = 0;

  constructor(readonly params: number) {}

  /** A new i32 local; returns its index. */
  local(): number {
    return this.params + this.extra++;
  }

  get localCount(): number {
    return this.extra;
  }

  op(...bytes: number[]): this {
    for (const b of bytes) this.code.push(b);
    return this;
  }

  get(i: number): this {
    return this.op(OP.local_get, ...uleb(i));
  }

  set(i: number): this {
    return this.op(OP.local_set, ...uleb(i));
  }

  tee(i: number): this {
    return this.op(OP.local_tee, ...uleb(i));
  }

  getGlobal(i: number): this {
    return this.op(OP.global_get, ...uleb(i));
  }

  setGlobal(i: number): this {
    return this.op(OP.global_set, ...uleb(i));
  }

  const(v: number): this {
    return this.op(OP.i32_const, ...sleb(v));
  }

  /** A memory access (§5.4.6) with its alignment hint (log2 bytes) and constant offset. */
  mem(opcode: number, align: number, offset = 0): this {
    return this.op(opcode, ...uleb(align), ...uleb(offset));
  }

  call(func: number): this {
    return this.op(OP.call, ...uleb(func));
  }

  br(depth: number): this {
    return this.op(OP.br, ...uleb(depth));
  }

  brIf(depth: number): this {
    return this.op(OP.br_if, ...uleb(depth));
  }

  brTable(targets: number[], fallback: number): this {
    return this.op(OP.br_table, ...uleb(targets.length), ...targets.flatMap(uleb), ...uleb(fallback));
  }

  /** Structured control (§5.4.1): `block`/`loop`/`if` with an empty result, closed by `end()`. */
  block(): this {
    return this.op(OP.block, VOID);
  }

  loop(): this {
    return this.op(OP.loop, VOID);
  }

  if(): this {
    return this.op(OP.if, VOID);
  }

  else(): this {
    return this.op(OP.else);
  }

  end(): this {
    return this.op(OP.end);
  }
}

export interface FuncImport {
  module: string;
  name: string;
  params: number;
  results: 0 | 1;
}

export interface FuncDef {
  /** Export name. */
  name: string;
  params: number;
  results: 0 | 1;
  body: Body;
}

export interface ModuleDef {
  /** The imported memory ("env"."memory"), if any: its page counts and whether it is shared. */
  memory?: { initial: number; maximum: number; shared: boolean };
  imports?: FuncImport[];
  /**
   * Mutable i32 globals defined by the module, each exported under its name (a
   * WebAssembly.Global JavaScript reads and writes through `.value`): how state that lives
   * outside the linear memory (the Cpu's register file, its lazy-flag record) can cross
   * into and out of a translated function without a call per value.
   */
  globals?: { name: string; init: number }[];
  funcs: FuncDef[];
}

/**
 * The module's bytes. Function indices: the imports first in order, then `funcs` (§2.5.1),
 * so a body calls import i as `call(i)` and its own function j as `call(imports + j)`.
 * Every function takes and returns i32 only.
 */
export function encodeModule(def: ModuleDef): Uint8Array<ArrayBuffer> {
  const imports = def.imports ?? [];
  const globals = def.globals ?? [];
  // Types (§5.5.4): one per distinct (params, results) pair.
  const typeKeys: string[] = [];
  const typeOf = (params: number, results: number): number => {
    const key = `${params}:${results}`;
    let i = typeKeys.indexOf(key);
    if (i < 0) i = typeKeys.push(key) - 1;
    return i;
  };
  const importTypes = imports.map((f) => typeOf(f.params, f.results));
  const funcTypes = def.funcs.map((f) => typeOf(f.params, f.results));
  const types = typeKeys.map((k) => {
    const [p, r] = k.split(':').map(Number);
    return [0x60, ...uleb(p), ...new Array<number>(p).fill(I32), ...uleb(r), ...new Array<number>(r).fill(I32)];
  });

  const importEntries: number[][] = imports.map((f, i) => [...name(f.module), ...name(f.name), 0x00, ...uleb(importTypes[i])]);
  if (def.memory) {
    const m = def.memory;
    // Limits (§5.3.4): 0x01 min+max, 0x03 shared min+max (threads proposal).
    importEntries.push([...name('env'), ...name('memory'), 0x02, m.shared ? 0x03 : 0x01, ...uleb(m.initial), ...uleb(m.maximum)]);
  }

  const bodies = def.funcs.map((f) => {
    const locals = f.body.localCount > 0 ? vec([[...uleb(f.body.localCount), I32]]) : [0];
    const bytes = [...locals, ...f.body.code, OP.end];
    return [...uleb(bytes.length), ...bytes];
  });

  const out = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic and version (§5.5.16)
    ...section(1, vec(types)),
    ...(importEntries.length > 0 ? section(2, vec(importEntries)) : []),
    ...section(3, vec(funcTypes.map(uleb))),
    // Globals (§5.5.9): type i32, mutable (0x01), initialised by a constant expression.
    ...(globals.length > 0 ? section(6, vec(globals.map((g) => [I32, 0x01, OP.i32_const, ...sleb(g.init), OP.end]))) : []),
    // Exports (§5.5.10): functions (kind 0x00) then globals (kind 0x03).
    ...section(7, vec([
      ...def.funcs.map((f, i) => [...name(f.name), 0x00, ...uleb(imports.length + i)]),
      ...globals.map((g, i) => [...name(g.name), 0x03, ...uleb(i)]),
    ])),
    ...section(10, vec(bodies)),
  ];
  return new Uint8Array(out);
}
