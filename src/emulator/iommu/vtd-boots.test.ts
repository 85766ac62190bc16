/**
 * Guests that know nothing of VT-d boot as before with the unit and its DMAR present
 * (-machine iommu=on): SeaBIOS alone, memtest86+ from its floppy (ISA DMA through the unit,
 * which stays off), and Debian's 686 kernel (built without INTEL_IOMMU).
 */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundledMachineModule } from '../machine/testing/bundled.ts';
import { MemoryBlockDevice } from '../devices/block-device.ts';
import { PUBLISH_DIR } from '../../../images/paths.ts';

const read = (f: string) => new Uint8Array(fs.readFileSync(path.join(PUBLISH_DIR, f)));
const have = (f: string) => fs.existsSync(path.join(PUBLISH_DIR, f));

describe.skipIf(!have('firmware/bios.bin'))('guests without a VT-d driver, with the unit and its DMAR present', () => {
  it('SeaBIOS links the DMAR into its ACPI tables and reaches "No bootable device"', { timeout: 120_000 }, async () => {
    const { createMachine } = await bundledMachineModule();
    let log = '';
    const m = createMachine(
      { memoryMiB: 128, bios: read('firmware/bios.bin'), vgaBios: read('firmware/vgabios-stdvga.bin'), boot: 'c', deterministic: true, iommu: true },
      { biosLog: (b) => (log += String.fromCharCode(b)) },
    );
    while (!log.includes('No bootable device') && m.bus.clock.now() < 30e9 && !m.stopped) m.run(1_000_000);
    expect(log).toContain('No bootable device');
    expect(log).not.toContain('WARNING');
    // The RSDT lists a DMAR whose bytes are ours (SeaBIOS copied the fw_cfg file).
    const ram = m.bus.memory.ram;
    let found = -1;
    for (let a = 0x100000; a + 64 <= ram.length; a += 4) {
      if (ram[a] === 0x44 && ram[a + 1] === 0x4d && ram[a + 2] === 0x41 && ram[a + 3] === 0x52 && ram[a + 10] === 0x54 && ram[a + 16] === 0x54) {
        found = a;
        break;
      }
    }
    expect(found).toBeGreaterThan(0);
    expect(new DataView(ram.buffer, found + 56, 4).getUint32(0, true)).toBe(0xfed90000);
    expect(m.iommu?.describe().translation).toBe(false);
    // The machine's state carries the unit's and edu's (their schemas), and loads into a twin.
    const config = { ...m.config, edu: true };
    const a = createMachine(config);
    a.run(2_000_000);
    a.iommu!.writeRegister(0x3c, 4, 0x41);
    const saved = a.saveState();
    expect(Object.keys(saved.devices)).toEqual(expect.arrayContaining(['dmar', 'edu']));
    const b = createMachine(config);
    b.loadState(saved);
    expect(b.iommu!.readRegister(0x3c, 4)).toBe(0x41);
    expect(b.iommu!.state.regs).toEqual(a.iommu!.state.regs);
    expect(b.edu!.state).toEqual(a.edu!.state);
  });

  it.skipIf(!have('memtest-floppy/memtest.img'))('memtest86+ starts its first pass from the floppy (ISA DMA through the unit, which stays off)', { timeout: 300_000 }, async () => {
    const { createMachine } = await bundledMachineModule();
    const m = createMachine({
      memoryMiB: 64, bios: read('firmware/bios.bin'), vgaBios: read('firmware/vgabios-stdvga.bin'), deterministic: true, iommu: true,
      fda: new MemoryBlockDevice(read('memtest-floppy/memtest.img')), boot: 'a',
    });
    const screen = () => (m.vga.textMode ? m.vga.textLines().join('\n') : '');
    while (!/Test #\d+\s+\[/.test(screen()) && m.bus.clock.now() < 60e9 && !m.stopped) m.run(2_000_000);
    expect(screen()).toMatch(/Test #\d+\s+\[/);
    const stats = Object.fromEntries(m.bus.stats.snapshot().devices.map((d) => [d.name, d]));
    expect(stats.dma.dmaBytesWritten).toBeGreaterThan(100_000);
    expect(stats.dma.dmaFaults).toBe(0);
  });

  it.skipIf(!have('debian-686/vmlinuz'))("Debian's 686 kernel (no INTEL_IOMMU) boots to its marker", { timeout: 600_000 }, async () => {
    const { createMachine } = await bundledMachineModule();
    let serial = '';
    const m = createMachine(
      {
        memoryMiB: 128, bios: read('firmware/bios.bin'), vgaBios: read('firmware/vgabios-stdvga.bin'), deterministic: true, iommu: true, boot: 'c',
        kernel: read('debian-686/vmlinuz'), initrd: read('debian-686/initramfs.cpio.gz'), append: 'console=tty0 console=ttyS0 cryptomgr.notests',
      },
      { serial: (i, b) => { if (i === 0) serial += String.fromCharCode(b); } },
    );
    while (!serial.includes('TRAPDOOR GUEST READY') && m.bus.clock.now() < 200e9 && !m.stopped) m.run(2_000_000);
    expect(serial).toContain('TRAPDOOR GUEST READY');
    expect(serial).toMatch(/ACPI: DMAR 0x[0-9A-F]+ 000040 \(v01 TRAPDR TRAPDOOR/);
    expect(m.iommu?.describe().counters.faults).toBe(0);
  });
});
