/**
 * The page's device-model host (device-model-web.ts and device-model-web-spawn.ts) without
 * a browser: its worker runs in a Node worker thread whose global scope is played by
 * parentPort (device-model-web.testing.ts), and nothing on either side reads a MessagePort
 * synchronously, as nothing can in a browser. Each switchable device gives the same trace
 * direct, emulated and switched at every step; a device's state crosses back in several
 * chunks of a small mailbox; a switch before the worker is up is refused in words; a
 * device model that stops answering is replaced by a fresh one for the next switch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { bundle } from '../../bin/bundle.mjs';
import { DeviceModelSpawner, type WorkerLike } from './device-model-web-spawn.ts';
import { decodePlain, encodePlain } from './mailbox.ts';
import type { DeviceModelLink } from '../emulator/bus/device-paths.ts';
import { COM1, pathCases, runCase, uartRig } from '../emulator/bus/device-paths.cases.ts';

let url: string;
const spawners: DeviceModelSpawner[] = [];

/** A Node worker thread dressed as a browser Worker. */
function nodeWorker(): WorkerLike {
  const w = new Worker(new URL(url));
  w.unref();
  const like: WorkerLike = {
    postMessage: (m) => w.postMessage(m),
    onmessage: null,
    onerror: null,
    terminate: () => void w.terminate(),
  };
  w.on('message', (data: unknown) => like.onmessage?.({ data }));
  w.on('error', (err) => like.onerror?.({ message: err.message }));
  return like;
}

function spawner(options: { mailboxBytes?: number } = {}): DeviceModelSpawner {
  const s = new DeviceModelSpawner(nodeWorker, options);
  spawners.push(s);
  return s;
}

beforeAll(async () => {
  url = await bundle('src/worker/device-model-web.testing.ts');
}, 60_000);

afterAll(() => {
  for (const s of spawners) s.close();
});

describe('plain data through the mailbox encoding', () => {
  it('carries a device state as it is, typed arrays included, and refuses what is not plain data', () => {
    const state = {
      $vmstate: 'ne2000', $version: 3, cr: 0x22, mac: Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56), mem: new Uint16Array([1, 0xffff]),
      t: new Float64Array([1.5, -0]), when: null, on: true, off: false, gone: undefined, name: 'ne2k ü', queue: [Uint8Array.of(1, 2, 3), new Int32Array([-7])],
      nested: { a: [1, { b: 'c' }] },
    };
    const back = decodePlain(encodePlain(state)) as typeof state;
    expect(back).toEqual(state);
    expect(back.mem).toBeInstanceOf(Uint16Array);
    expect(back.t[1]).toBe(-0);
    expect(() => encodePlain({ rx: new Map() })).toThrow("rx is a Map, which cannot cross the mailbox (plain data only)");
    expect(() => encodePlain({ cb: () => 0 })).toThrow('cb is a function');
    expect(() => decodePlain(encodePlain({ a: 1 }).subarray(0, 5))).toThrow('ends early');
  });
});

describe('the page\'s device model, its worker in a Node thread with no synchronous message port', () => {
  it('refuses a switch in words while its worker is still starting, and takes it once ready()', async () => {
    const s = spawner();
    s.start();
    const r = uartRig(s.connector);
    expect(() => r.paths.switchNow('com1', 'emulated')).toThrow('the device-model worker is still starting; try again in a moment');
    expect(r.paths.pathOf('com1')).toBe('direct');
    expect(await s.ready()).toBeNull();
    r.t.out8(COM1 + 7, 0x5a);
    r.paths.switchNow('com1', 'emulated');
    expect(r.t.in8(COM1 + 7)).toBe(0x5a);
    r.paths.switchNow('com1', 'direct');
    expect(r.t.in8(COM1 + 7)).toBe(0x5a);
    expect(r.t.stats('com1').traps).toBe(1);
    r.paths.close();
  }, 60_000);

  it.each(['ide (PIIX3, ATA disk and ATAPI CD)', 'uart (com1)', 'ne2000 (RTL8029 on PCI)', 'edu (MMIO, timers, DMA)'])('%s: the same trace direct, emulated and switched', async (name) => {
    // A 4 KiB mailbox: the NE2000's and the IDE's states come back in several chunks.
    const s = spawner({ mailboxBytes: 4096 });
    let link: DeviceModelLink | null = null;
    const connect = () => (link = s.connector());
    const c = () => pathCases(connect).find((x) => x.name === name)!;
    const direct = runCase(c(), 'direct');
    expect(await s.ready()).toBeNull();
    const emulated = runCase(c(), 'emulated');
    link!.close();
    expect(await s.ready()).toBeNull();
    const switching = runCase(c(), 'switching');
    link!.close();
    expect(emulated.failure).toBeNull();
    expect(switching.failure).toBeNull();
    expect(emulated.trace).toEqual(direct.trace);
    expect(switching.trace).toEqual(direct.trace);
    expect(emulated.stats.traps).toBe(direct.stats.directAccesses);
  }, 60_000);

  it('a device model that stops answering pauses the machine in words; direct resumes it, and a fresh worker takes the next switch', async () => {
    const s = spawner();
    expect(await s.ready()).toBeNull();
    const logs: string[] = [];
    const r = uartRig(s.connector, (m) => logs.push(m));
    r.paths.timeoutMs = 1000;
    r.t.out8(COM1 + 7, 0x44);
    r.paths.switchNow('com1', 'emulated');
    r.paths.sabotage('com1', 'hang');
    expect(r.t.in8(COM1 + 5)).toBe(0xff);
    expect(r.paths.failure).toBe('the device model of com1 stopped answering (no answer within 1000 ms) on a port read of 1 at offset 0x5; the machine is paused (switch com1 to direct to resume)');
    r.paths.switchNow('com1', 'direct');
    expect(r.paths.failure).toBeNull();
    expect(r.t.in8(COM1 + 7)).toBe(0x44);
    // The stuck worker was terminated; a new one is starting.
    expect(['starting', 'ready']).toContain(s.state);
    expect(await s.ready()).toBeNull();
    r.paths.switchNow('com1', 'emulated');
    r.t.out8(COM1 + 7, 0x45);
    expect(r.t.in8(COM1 + 7)).toBe(0x45);
    r.paths.close();
  }, 60_000);

  it('says in words why there is no device model when its worker cannot start', async () => {
    const s = new DeviceModelSpawner(() => {
      throw new Error('Worker is not defined');
    });
    expect(await s.ready(1000)).toBe('the device-model worker could not be started: Worker is not defined');
    const r = uartRig(s.connector);
    expect(() => r.paths.switchNow('com1', 'emulated')).toThrow('the device-model worker could not be started: Worker is not defined');
  });
});
