/**
 * The worker's machine host, driven through its protocol as the page drives it: a boot
 * that cannot start says why; SeaBIOS without a bootable medium runs, shares its buffers,
 * renders frames only while the page is visible and has drawn the last one, and says it
 * found nothing to boot; pause holds the counters still; power-off ends it.
 */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MachineHost } from './machine-host.ts';
import type { FromWorker, ToWorker } from './protocol.ts';
import { PUBLISH_DIR } from '../../images/paths.ts';

function harness() {
  const messages: FromWorker[] = [];
  const host = new MachineHost((m) => messages.push(m));
  const send = (m: ToWorker) => host.handle(m);
  const until = async (what: string, test: (m: FromWorker) => boolean, ms = 60_000): Promise<FromWorker> => {
    const end = Date.now() + ms;
    for (let seen = 0; Date.now() < end; ) {
      for (; seen < messages.length; seen++) if (test(messages[seen])) return messages[seen];
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`no ${what} within ${ms} ms; got ${messages.map((m) => m.type).join(' ')}`);
  };
  /** The n-th frame message (1-based), once it has come. */
  const frame = async (n: number) => {
    await until(`frame ${n}`, () => messages.filter((m) => m.type === 'frame').length >= n);
    return messages.filter((m) => m.type === 'frame')[n - 1] as Extract<FromWorker, { type: 'frame' }>;
  };
  return { messages, send, until, frame };
}

const file = (rel: string) => {
  const b = fs.readFileSync(path.join(PUBLISH_DIR, rel));
  return { name: path.basename(rel), bytes: b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer };
};
const haveFirmware = fs.existsSync(path.join(PUBLISH_DIR, 'firmware', 'bios.bin'));

describe('MachineHost', () => {
  it('says in plain words why a machine cannot start', async () => {
    const { send, until } = harness();
    send({ type: 'boot', request: { label: 'bad', bios: { name: 'bios.bin', bytes: new ArrayBuffer(65536) }, hda: { name: 'odd.img', bytes: new ArrayBuffer(1000) }, deterministic: true } });
    const e = await until('error', (m) => m.type === 'error');
    expect(e).toMatchObject({ type: 'error', message: expect.stringMatching(/cannot start: odd\.img \(1000 bytes\) is not a whole number of 512-byte sectors/) });
  });

  it.skipIf(!haveFirmware)('runs SeaBIOS: shared buffers, frames on demand, nothing to boot, pause, power-off', { timeout: 120_000 }, async () => {
    const { messages, send, until, frame } = harness();
    send({ type: 'boot', request: { label: 'bios only', bios: file('firmware/bios.bin'), vgaBios: file('firmware/vgabios-stdvga.bin'), deterministic: true } });
    const ready = await until('ready', (m) => m.type === 'ready');
    if (ready.type !== 'ready') throw new Error('unreachable');
    expect(ready.stats.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(ready.frame).toBeInstanceOf(SharedArrayBuffer);
    expect(ready.ram?.byteLength).toBe(128 << 20);
    expect(ready.stats.devices.map((d) => d.name)).toEqual(expect.arrayContaining(['pit', 'com1', 'vga', 'ide']));
    await until('running', (m) => m.type === 'status' && m.status.phase === 'running');

    // Hidden page: no frames. Visible: one frame, then the next only after the page drew it.
    await new Promise((r) => setTimeout(r, 200));
    expect(messages.some((m) => m.type === 'frame')).toBe(false);
    send({ type: 'visibility', visible: true });
    await until('frame', (m) => m.type === 'frame');
    await new Promise((r) => setTimeout(r, 200));
    expect(messages.filter((m) => m.type === 'frame')).toHaveLength(1);
    // The page draws each frame and acknowledges it; text-mode frames carry the screen's lines.
    let banner = '';
    for (let n = 2; n < 2000 && !banner.includes('SeaBIOS'); n++) {
      send({ type: 'frame-ack' });
      const f = await frame(n);
      if (f.text) banner = f.text.join('\n');
    }
    expect(banner).toContain('SeaBIOS (version');

    const nothing = await until('nothing to boot', (m) => m.type === 'error' && /found nothing to boot/.test(m.message), 100_000);
    expect(nothing).toMatchObject({ hint: expect.stringContaining('drop a bootable image') });

    // Paused: the counters stand still.
    send({ type: 'pause' });
    await until('paused', (m) => m.type === 'status' && m.status.phase === 'paused');
    const counters = new Float64Array(ready.stats.buffer!);
    const before = counters.slice();
    await new Promise((r) => setTimeout(r, 300));
    expect(counters).toEqual(before);
    send({ type: 'resume' });
    await until('running again', (m) => m.type === 'status' && m.status.phase === 'running' && messages.indexOf(m) > messages.findIndex((x) => x.type === 'status' && x.status.phase === 'paused'));
    send({ type: 'describe' });
    const view = await until('machine view', (m) => m.type === 'machine');
    expect(view.type === 'machine' && view.functions.map((f) => `${f.bdf} ${f.name}`)).toEqual(['00:00.0 i440fx', '00:01.0 piix3', '00:01.1 ide', '00:01.3 acpi', '00:02.0 vga', '00:03.0 ne2k']);
    send({ type: 'power-off' });
    await until('off', (m) => m.type === 'status' && m.status.phase === 'off');
  });
});
