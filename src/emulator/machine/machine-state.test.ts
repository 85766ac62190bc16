/**
 * A whole machine saved mid-boot and loaded into a fresh one (deterministic mode): the
 * loaded machine reaches the same serial output as the original, byte for byte, running
 * the same slices, and ends in the same state. This is the machine-level form of device-state.test.ts: every device's
 * state, the CPU's, RAM and the clock together are the whole of what the guest sees.
 */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundledMachineModule } from './testing/bundled.ts';
import { difference } from './testing/state-difference.ts';
import type { MachineConfig } from './config.ts';
import { PUBLISH_DIR } from '../../../images/paths.ts';
import { INITRD } from '../../../images/tiny-linux/recipe.ts';

const file = (f: string) => path.join(PUBLISH_DIR, f);
const read = (f: string) => new Uint8Array(fs.readFileSync(file(f)));
const haveImages = ['firmware/bios.bin', 'firmware/vgabios-stdvga.bin', 'tiny-linux/bzImage', `tiny-linux/${INITRD}`].every((f) => fs.existsSync(file(f)));

describe.skipIf(!haveImages)('a tiny-linux machine saved mid-boot (deterministic)', () => {
  it('loads into a fresh machine that prints the same serial output as the original', { timeout: 900_000 }, async () => {
    const { createMachine } = await bundledMachineModule();
    const config: MachineConfig = {
      memoryMiB: 64, bios: read('firmware/bios.bin'), vgaBios: read('firmware/vgabios-stdvga.bin'), deterministic: true,
      kernel: read('tiny-linux/bzImage'), initrd: read(`tiny-linux/${INITRD}`), append: 'console=ttyS0', boot: 'c',
    };
    const serial = ['', ''];
    const resets: string[] = [];
    const events = (i: number) => ({
      serial: (port: number, b: number) => {
        if (port === 0) serial[i] += String.fromCharCode(b);
      },
      reset: (r: string) => resets.push(r),
    });
    const original = createMachine(config, events(0));
    // Into the kernel's boot: its timers are on the local APIC and it is probing the UARTs.
    const limit = 120e9;
    const marker = 'serial8250: ttyS0';
    while (!serial[0].includes(marker) && original.bus.clock.now() < limit && !original.stopped) original.run(500_000);
    expect(serial[0]).toContain(marker);
    original.run(3_000_000);
    const saved = original.saveState();
    const printed = serial[0].length;

    const loaded = createMachine(config, events(1));
    loaded.loadState(saved);
    // What the fresh machine holds is what was saved (the devices' states compare as data).
    expect(difference(loaded.saveState().devices, saved.devices)).toBeNull();

    // Both run the same slices to the guest's marker.
    const done = () => serial[0].includes('TRAPDOOR GUEST READY') && serial[1].includes('TRAPDOOR GUEST READY');
    while (!done() && original.bus.clock.now() < limit && !original.stopped && !loaded.stopped) {
      original.run(500_000);
      loaded.run(500_000);
    }
    expect(resets).toEqual([]);
    expect(serial[1]).toContain('TRAPDOOR GUEST READY');
    expect(serial[1]).toBe(serial[0].slice(printed));
    expect(loaded.bus.clock.now()).toBe(original.bus.clock.now());
    // And not only the text: the two machines are the same machine (CPU, RAM, every device).
    expect(difference(loaded.saveState(), original.saveState())).toBeNull();
  });
});
