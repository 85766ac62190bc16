import { describe, expect, it } from 'vitest';
import { Body, encodeModule, OP, sleb, uleb } from './wasm-emit.ts';
import { PhysicalMemory } from '../../memory/physical-memory.ts';
import { DeviceStats } from '../../bus/stats.ts';

type Fn = (...args: number[]) => number;

function instantiate(bytes: Uint8Array<ArrayBuffer>, env: Record<string, unknown> = {}): Record<string, Fn> {
  const module = new WebAssembly.Module(bytes);
  return new WebAssembly.Instance(module, { env: env as WebAssembly.ModuleImports }).exports as unknown as Record<string, Fn>;
}

describe('wasm-emit', () => {
  it('encodes LEB128 as the spec does (§5.2.2)', () => {
    expect(uleb(0)).toEqual([0]);
    expect(uleb(127)).toEqual([0x7f]);
    expect(uleb(128)).toEqual([0x80, 0x01]);
    expect(uleb(0xffffffff)).toEqual([0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(sleb(0)).toEqual([0]);
    expect(sleb(63)).toEqual([0x3f]);
    expect(sleb(64)).toEqual([0xc0, 0x00]);
    expect(sleb(-1)).toEqual([0x7f]);
    expect(sleb(-64)).toEqual([0x40]);
    expect(sleb(-65)).toEqual([0xbf, 0x7f]);
    expect(sleb(0xedb88320)).toEqual(sleb(0xedb88320 | 0));
  });

  it('builds a module whose loop, locals and branches compute what JavaScript does', () => {
    // sum(n) = n + (n-1) + ... + 1, with a loop and br_if.
    const b = new Body(1);
    const acc = b.local();
    b.block().loop();
    b.get(0).op(OP.i32_eqz).brIf(1);
    b.get(acc).get(0).op(OP.i32_add).set(acc);
    b.get(0).const(1).op(OP.i32_sub).set(0);
    b.br(0).end().end();
    b.get(acc);
    const { sum } = instantiate(encodeModule({ funcs: [{ name: 'sum', params: 1, results: 1, body: b }] }));
    expect(sum(10)).toBe(55);
    expect(sum(100000)).toBe((100000 * 100001) / 2 | 0);
  });

  it('dispatches with br_table and calls imported functions', () => {
    const seen: number[] = [];
    const b = new Body(1);
    b.block().block().block();
    b.get(0).brTable([0, 1], 2);
    b.end(); // case 0
    b.const(10).call(0).const(100).op(OP.return);
    b.end(); // case 1
    b.const(11).call(0).const(0x7fffffff).op(OP.return);
    b.end(); // default
    b.const(-5);
    const { pick } = instantiate(
      encodeModule({ imports: [{ module: 'env', name: 'note', params: 1, results: 0 }], funcs: [{ name: 'pick', params: 1, results: 1, body: b }] }),
      { note: (v: number) => seen.push(v) },
    );
    expect([pick(0), pick(1), pick(7)]).toEqual([100, 0x7fffffff, -5]);
    expect(seen).toEqual([10, 11]);
  });

  it('exports mutable globals JavaScript and the function both see', () => {
    // step(): eax += ecx; ecx -= 1; returns ecx (registers as globals 0 and 1).
    const b = new Body(0);
    b.getGlobal(0).getGlobal(1).op(OP.i32_add).setGlobal(0);
    b.getGlobal(1).const(1).op(OP.i32_sub).setGlobal(1).getGlobal(1);
    const bytes = encodeModule({ globals: [{ name: 'eax', init: 0 }, { name: 'ecx', init: -7 }], funcs: [{ name: 'step', params: 0, results: 1, body: b }] });
    const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as unknown as { step: Fn; eax: WebAssembly.Global; ecx: WebAssembly.Global };
    expect(exports.ecx.value).toBe(-7);
    exports.eax.value = 0x7fffffff;
    exports.ecx.value = 3;
    expect(exports.step()).toBe(2);
    expect(exports.eax.value).toBe(0x80000002 | 0);
    expect([exports.step(), exports.step(), exports.eax.value]).toEqual([1, 0, 0x80000005 | 0]);
  });

  it('loads and stores guest RAM through PhysicalMemory.wasmMemory', () => {
    for (const shared of [false, true]) {
      const m = new PhysicalMemory(2 << 20, new DeviceStats(), shared);
      expect(m.ram.buffer).toBe(m.wasmMemory.buffer);
      expect(m.ram.byteLength).toBe(2 << 20);
      expect(m.wasmMemory.buffer instanceof SharedArrayBuffer).toBe(shared);
      // swap(p): the dword at p gets its byte at p+4 added, and returns the old dword.
      const b = new Body(1);
      const old = b.local();
      b.get(0).mem(OP.i32_load, 2).set(old);
      b.get(0).get(old).get(0).mem(OP.i32_load8_u, 0, 4).op(OP.i32_add).mem(OP.i32_store, 2);
      b.get(old);
      const pages = (2 << 20) >>> 16;
      const { swap } = instantiate(
        encodeModule({ memory: { initial: pages, maximum: pages, shared }, funcs: [{ name: 'swap', params: 1, results: 1, body: b }] }),
        { memory: m.wasmMemory },
      );
      m.write32(0x1ffff8, 0x12345678);
      m.write8(0x1ffffc, 0x08);
      expect(swap(0x1ffff8)).toBe(0x12345678);
      expect(m.read32(0x1ffff8)).toBe(0x12345680);
      expect(m.ram[0x1ffff8]).toBe(0x80);
    }
  });
});
