/**
 * The page's switch, through the worker protocol as the page sends it (issue 22): the
 * machine host tells the page each switchable device's path at power-on, moves a device
 * to the device model (the page's Web Worker host, here in a Node thread) and back when a
 * card asks, says when it switched, and when a device model stops answering pauses the
 * machine with the failure in words, on the card too, until the device goes direct and the
 * machine resumes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { bundle } from '../../bin/bundle.mjs';
import { MachineHost } from './machine-host.ts';
import { DeviceModelSpawner, type WorkerLike } from './device-model-web-spawn.ts';
import type { FromWorker, ToWorker } from './protocol.ts';
import type { Machine } from '../emulator/machine/machine.ts';
import { PUBLISH_DIR } from '../../images/paths.ts';

let url: string;
const spawner = new DeviceModelSpawner(() => {
  const w = new Worker(new URL(url));
  w.unref();
  const like: WorkerLike = { postMessage: (m) => w.postMessage(m), onmessage: null, onerror: null, terminate: () => void w.terminate() };
  w.on('message', (data: unknown) => like.onmessage?.({ data }));
  w.on('error', (err) => like.onerror?.({ message: err.message }));
  return like;
});

beforeAll(async () => {
  url = await bundle('src/worker/device-model-web.testing.ts');
}, 60_000);
afterAll(() => spawner.close());

const file = (rel: string) => {
  const b = fs.readFileSync(path.join(PUBLISH_DIR, rel));
  return { name: path.basename(rel), bytes: b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer };
};

describe.skipIf(!fs.existsSync(path.join(PUBLISH_DIR, 'firmware', 'bios.bin')))('the device-path switch of the page', () => {
  it('switches from a card between slices, marks it, and pauses on a failed device model until the device goes direct', { timeout: 120_000 }, async () => {
    const messages: FromWorker[] = [];
    const host = new MachineHost((m) => messages.push(m), { deviceModel: spawner });
    const send = (m: ToWorker) => host.handle(m);
    const until = async <T extends FromWorker['type']>(what: string, test: (m: Extract<FromWorker, { type: T }>) => boolean, type: T, ms = 30_000) => {
      const end = Date.now() + ms;
      for (let seen = 0; Date.now() < end; ) {
        for (; seen < messages.length; seen++) {
          const m = messages[seen];
          if (m.type === type && test(m as Extract<FromWorker, { type: T }>)) {
            messages.splice(0, seen + 1);
            return m as Extract<FromWorker, { type: T }>;
          }
        }
        await new Promise((r) => setTimeout(r, 5));
      }
      throw new Error(`no ${what} within ${ms} ms; got ${messages.map((m) => m.type).join(' ')}`);
    };
    send({ type: 'boot', request: { label: 'bios only', bios: file('firmware/bios.bin'), vgaBios: file('firmware/vgabios-stdvga.bin'), deterministic: true } });
    const first = await until('paths', () => true, 'paths');
    expect(first.emulation).toBeNull();
    expect(first.devices.map((d) => `${d.name} ${d.path}`)).toEqual(expect.arrayContaining(['com1 direct', 'com2 direct', 'ide direct', 'ne2k direct']));
    const machine = (host as unknown as { machine: Machine }).machine;
    // How long a round trip may take before the device model is given up (set before it starts).
    machine.paths.timeoutMs = 2000;
    // Paused, so that the test's own accesses to COM1 are the only ones (a switch works paused too).
    send({ type: 'pause' });
    await until('paused', (m) => m.status.phase === 'paused', 'status');

    machine.bus.io.out8(0x3ff, 0x5a);
    send({ type: 'device-path', name: 'com1', path: 'emulated' });
    const marked = await until('the switch', (m) => m.name === 'com1', 'path-switch');
    expect(marked.path).toBe('emulated');
    expect(marked.virtualNs).toBe(machine.bus.clock.now()); // paused: the clock stands where it switched
    expect(marked.at).toBeGreaterThan(Date.now() - 60_000);
    const after = await until('paths after the switch', (m) => m.devices.some((d) => d.name === 'com1' && d.path === 'emulated'), 'paths');
    expect(after.devices.find((d) => d.name === 'com1')!.note).toBeNull();
    // The scratch register, through the device model (a write buffered, a read answered).
    expect(machine.bus.io.in8(0x3ff)).toBe(0x5a);
    machine.bus.io.out8(0x3ff, 0x66);
    expect(machine.bus.io.in8(0x3ff)).toBe(0x66);

    // A name that is not switchable is answered in words.
    send({ type: 'device-path', name: 'pit', path: 'emulated' });
    expect((await until('refusal', () => true, 'error')).message).toMatch(/^pit cannot change path \(switchable: com1, com2, .*ide.*\)\.$/);

    // The device model stops answering: on the next access, the machine pauses and says why.
    machine.paths.sabotage('com1', 'hang');
    expect(machine.bus.io.in8(0x3fd)).toBe(0xff);
    send({ type: 'resume' });
    const card = (await until('paths with the failure', (m) => m.failure !== null, 'paths')).devices.find((d) => d.name === 'com1')!;
    expect(card.failed).toMatch(/^the device model of com1 stopped answering/);
    const failed = await until('the failure', () => true, 'error');
    expect(failed.message).toBe('A device model failed: the device model of com1 stopped answering (no answer within 2000 ms) on a port read of 1 at offset 0x5; the machine is paused (switch com1 to direct to resume).');
    await until('paused', (m) => m.status.phase === 'paused', 'status');

    // Direct, and resume: the device carries on from the state it had at its switch (the
    // stopped device model took what it did since with it).
    send({ type: 'device-path', name: 'com1', path: 'direct', resume: true });
    expect((await until('paths', () => true, 'paths')).failure).toBeNull();
    await until('running', (m) => m.status.phase === 'running', 'status');
    expect(machine.paths.pathOf('com1')).toBe('direct');
    expect(machine.bus.io.in8(0x3ff)).toBe(0x5a);

    // And a fresh device model takes the next switch.
    send({ type: 'pause' });
    await until('paused', (m) => m.status.phase === 'paused', 'status');
    machine.bus.io.out8(0x3ff, 0x77);
    send({ type: 'device-path', name: 'com1', path: 'emulated' });
    await until('emulated again', (m) => m.devices.some((d) => d.name === 'com1' && d.path === 'emulated'), 'paths');
    expect(machine.bus.io.in8(0x3ff)).toBe(0x77);
    expect(machine.paths.list().find((d) => d.name === 'com1')!.failed).toBeNull();
    send({ type: 'power-off' });
    await until('off', (m) => m.status.phase === 'off', 'status');
  });
});
