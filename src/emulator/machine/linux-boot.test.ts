/**
 * The tiny-linux guest in deterministic mode, two ways: booted directly (SeaBIOS plus the
 * loader ROM), and from its ISO on the ATAPI drive through SeaBIOS's El Torito boot and
 * isolinux. The kernel comes up on this CPU and chipset, /init prints its marker, and the
 * shell on COM1 answers a command typed into the UART.
 */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundledMachineModule } from './testing/bundled.ts';
import { MemoryBlockDevice } from '../devices/block-device.ts';
import type { MachineConfig } from './config.ts';
import { PUBLISH_DIR } from '../../../images/paths.ts';
import { INITRD } from '../../../images/tiny-linux/recipe.ts';

const read = (f: string) => new Uint8Array(fs.readFileSync(path.join(PUBLISH_DIR, f)));

async function bootAndAsk(config: Omit<MachineConfig, 'bios' | 'vgaBios' | 'deterministic' | 'memoryMiB'>, command: string, until: RegExp) {
  const { createMachine } = await bundledMachineModule();
  let serial = '';
  let biosLog = '';
  const resets: string[] = [];
  const m = createMachine(
    { memoryMiB: 128, bios: read('firmware/bios.bin'), vgaBios: read('firmware/vgabios-stdvga.bin'), deterministic: true, ...config },
    { serial: (i, b) => { if (i === 0) serial += String.fromCharCode(b); }, biosLog: (b) => (biosLog += String.fromCharCode(b)), reset: (r) => resets.push(r) },
  );
  const runUntil = (done: () => boolean, virtualSeconds: number) => {
    const limit = m.bus.clock.now() + virtualSeconds * 1e9;
    while (!done() && m.bus.clock.now() < limit && !m.stopped && resets.length === 0) m.run(500_000);
  };
  runUntil(() => serial.includes('TRAPDOOR GUEST READY'), 120);
  expect(resets).toEqual([]);
  expect(serial).toContain('TRAPDOOR GUEST READY');
  runUntil(() => serial.includes('trapdoor:/# '), 30);
  let pending = Array.from(command, (ch) => ch.charCodeAt(0));
  const limit = m.bus.clock.now() + 30e9;
  while (!until.test(serial) && m.bus.clock.now() < limit) {
    if (pending.length) pending = pending.slice(m.serialInput(pending));
    m.run(200_000);
  }
  return { serial, biosLog, machine: m };
}

describe('tiny-linux on the PC (deterministic)', () => {
  it('boots its kernel directly to TRAPDOOR GUEST READY and answers on the serial console', { timeout: 600_000 }, async () => {
    expect(fs.existsSync(path.join(PUBLISH_DIR, 'tiny-linux', 'bzImage')), "tiny-linux is missing: run 'npm run images'").toBe(true);
    const { serial, machine } = await bootAndAsk(
      { kernel: read('tiny-linux/bzImage'), initrd: read(`tiny-linux/${INITRD}`), append: 'console=tty0 console=ttyS0', boot: 'c' },
      // busybox awk formats doubles with the guest's libc on the x87: the digits must be a real PC's.
      "awk 'BEGIN{printf \"FP %.17g %.17g %.17g %.3e\\n\", 1/3, 0.1+0.2, 2/7*3.5, 1e300*1e10}'; echo END-$((6*7)); ls /sys/bus/pci/devices\n",
      /END-42\r?\n[^\n]*0000:00:02\.0/,
    );
    expect(serial).toContain('FP 0.33333333333333331 0.30000000000000004 1 inf');
    expect(serial).toContain('Linux version 6.1');
    // The machine's RNG seed (setup_data) made the kernel's RNG ready before anything else ran.
    expect(serial).toMatch(/\[\s*0\.000000\] random: crng init done/);
    expect(serial).toContain('serial8250: ttyS0 at I/O 0x3f8 (irq = 4, base_baud = 115200) is a 16550A');
    // lspci's view matches what the machine declares: host bridge, ISA bridge, IDE, ACPI, VGA.
    expect(serial).toMatch(/END-42\r?\n0000:00:00\.0\s+0000:00:01\.0\s+0000:00:01\.1\s+0000:00:01\.3\s+0000:00:02\.0/);
    // The kernel's console went to the screen too: bochs-drm drew it into the framebuffer.
    expect(serial).toContain('bochs-drm');
    expect(machine.bus.stats.snapshot().devices.find((d) => d.name === 'vga')!.mmioWrites).toBeGreaterThan(100_000);
  });

  it('boots from its ISO on the ATAPI CD-ROM through SeaBIOS and isolinux', { timeout: 600_000 }, async () => {
    const { serial, biosLog } = await bootAndAsk(
      { cdrom: new MemoryBlockDevice(read('tiny-linux-iso/tiny-linux.iso'), true), boot: 'd' },
      'echo END-$((6*7)); grep ata_piix /proc/interrupts\n',
      /END-42[\s\S]*15:\s+\d+[^\n]*ata_piix/,
    );
    expect(biosLog).toContain('Booting from DVD/CD...');
    expect(biosLog).not.toMatch(/WARNING|error/i);
    expect(serial).toContain('ata2.00: ATAPI: TRAPDOOR ATAPI CD-ROM');
    expect(serial).toMatch(/sr 1:0:0:0: \[sr0\] scsi3-mmc drive/);
    expect(serial).toMatch(/15:\s+[1-9]\d*[^\n]*ata_piix/);
  });
});
