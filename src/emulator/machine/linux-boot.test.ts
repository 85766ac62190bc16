/**
 * The tiny-linux guest, booted directly (SeaBIOS plus the loader ROM) in deterministic
 * mode: the kernel comes up on this CPU and chipset, /init prints its marker, and the
 * shell on COM1 answers a command typed into the UART.
 */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundledMachineModule } from './testing/bundled.ts';
import { PUBLISH_DIR } from '../../../images/paths.ts';
import { INITRD } from '../../../images/tiny-linux/recipe.ts';

const dir = path.join(PUBLISH_DIR, 'tiny-linux');
const read = (f: string) => new Uint8Array(fs.readFileSync(f));

describe('tiny-linux on the PC (deterministic)', () => {
  it('boots to TRAPDOOR GUEST READY and answers on the serial console', { timeout: 600_000 }, async () => {
    const { createMachine } = await bundledMachineModule();
    expect(fs.existsSync(path.join(dir, 'bzImage')), "tiny-linux is missing: run 'npm run images'").toBe(true);
    let serial = '';
    const resets: string[] = [];
    const m = createMachine(
      {
        memoryMiB: 128,
        bios: read(path.join(PUBLISH_DIR, 'firmware', 'bios.bin')),
        kernel: read(path.join(dir, 'bzImage')),
        initrd: read(path.join(dir, INITRD)),
        append: 'console=ttyS0',
        boot: 'c',
        deterministic: true,
      },
      { serial: (i, b) => { if (i === 0) serial += String.fromCharCode(b); }, reset: (r) => resets.push(r) },
    );
    const runUntil = (text: string, virtualSeconds: number) => {
      const limit = m.bus.clock.now() + virtualSeconds * 1e9;
      while (!serial.includes(text) && m.bus.clock.now() < limit && !m.stopped && resets.length === 0) m.run(500_000);
    };
    runUntil('TRAPDOOR GUEST READY', 120);
    expect(resets).toEqual([]);
    expect(serial).toContain('Linux version 6.1');
    expect(serial).toContain('serial8250: ttyS0 at I/O 0x3f8 (irq = 4, base_baud = 115200) is a 16550A');
    expect(serial).toContain('TRAPDOOR GUEST READY');
    runUntil('trapdoor:/# ', 30);
    const command = 'echo END-$((6*7)); ls /sys/bus/pci/devices\n';
    let pending = Array.from(command, (ch) => ch.charCodeAt(0));
    const limit = m.bus.clock.now() + 30e9;
    while (!/END-42\r?\n[^\n]*0000:00:01\.0/.test(serial) && m.bus.clock.now() < limit) {
      if (pending.length) pending = pending.slice(m.serialInput(pending));
      m.run(200_000);
    }
    expect(serial).toMatch(/END-42\r?\n0000:00:00\.0\s+0000:00:01\.0/);
  });
});
