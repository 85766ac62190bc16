/**
 * memtest86+ (Debian's build) starts its first test pass on this PC, loaded two ways:
 * directly as a kernel, and by SeaBIOS from a 1.44 MB floppy through the 82077AA and DMA
 * channel 2. Its screen is read from the VGA's text buffer.
 */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundledMachineModule } from './testing/bundled.ts';
import { MemoryBlockDevice } from '../devices/block-device.ts';
import type { MachineConfig } from './config.ts';
import { PUBLISH_DIR } from '../../../images/paths.ts';

const read = (f: string) => new Uint8Array(fs.readFileSync(path.join(PUBLISH_DIR, f)));

async function bootToFirstTest(config: Pick<MachineConfig, 'kernel' | 'append' | 'fda' | 'boot'>) {
  const { createMachine } = await bundledMachineModule();
  let biosLog = '';
  const m = createMachine(
    { memoryMiB: 64, bios: read('firmware/bios.bin'), vgaBios: read('firmware/vgabios-stdvga.bin'), deterministic: true, ...config },
    { biosLog: (b) => (biosLog += String.fromCharCode(b)) },
  );
  const screen = () => (m.vga.textMode ? m.vga.textLines().join('\n') : '');
  while (!/Test #\d+\s+\[/.test(screen()) && m.bus.clock.now() < 60e9 && !m.stopped) m.run(2_000_000);
  return { screen: screen(), biosLog, machine: m };
}

describe('memtest86+ on the PC (deterministic)', () => {
  it('starts its first pass when loaded as a kernel', { timeout: 300_000 }, async () => {
    const { screen } = await bootToFirstTest({ kernel: read('memtest/memtest.bin'), append: 'console=ttyS0,115200', boot: 'c' });
    expect(screen).toContain('Memtest86+ v6');
    expect(screen).toMatch(/Test #\d+\s+\[/);
    expect(screen).toMatch(/Memory\s*:\s*6\dMB/);
  });

  it('starts its first pass when booted by SeaBIOS from the floppy', { timeout: 300_000 }, async () => {
    const { screen, biosLog, machine } = await bootToFirstTest({ fda: new MemoryBlockDevice(read('memtest-floppy/memtest.img')), boot: 'a' });
    expect(biosLog).toContain('Booting from Floppy...');
    expect(screen).toContain('Memtest86+ v6');
    expect(screen).toMatch(/Test #\d+\s+\[/);
    const stats = Object.fromEntries(machine.bus.stats.snapshot().devices.map((d) => [d.name, d]));
    expect(stats.fdc.portWrites).toBeGreaterThan(0);
    expect(stats.dma.dmaBytesWritten).toBeGreaterThan(100_000); // the image came in through channel 2
  });
});
