/**
 * Full-machine boots in deterministic mode. These read the firmware that `npm run
 * images` publishes (Debian's SeaBIOS), so a failure here is the emulator's.
 */
import { describe, expect, it, vi } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createMachine } from './machine.ts';
import { PUBLISH_DIR } from '../../../images/paths.ts';

const BIOS = path.join(PUBLISH_DIR, 'firmware', 'bios.bin');
const VGA_BIOS = path.join(PUBLISH_DIR, 'firmware', 'vgabios-stdvga.bin');

describe('the PC in deterministic mode', () => {
  it('runs Debian\'s SeaBIOS through POST to "No bootable device" with nothing attached', { timeout: 120_000 }, () => {
    expect(fs.existsSync(BIOS), `${BIOS} is missing: run 'npm run images'`).toBe(true);
    let log = '';
    const resets: string[] = [];
    const m = createMachine(
      { memoryMiB: 128, bios: new Uint8Array(fs.readFileSync(BIOS)), vgaBios: new Uint8Array(fs.readFileSync(VGA_BIOS)), boot: 'c', deterministic: true },
      { biosLog: (b) => (log += String.fromCharCode(b)), reset: (r) => resets.push(r) },
    );
    while (!log.includes('No bootable device') && m.bus.clock.now() < 30e9 && !m.stopped) m.run(1_000_000);
    // After "No bootable device" SeaBIOS waits (etc/boot-fail-wait, 5 s) and reboots, through
    // the keyboard controller first; nothing else may reset the machine (a triple fault would show here).
    expect(resets.filter((r) => !/^reset through (port 0xCF9|the keyboard controller)$/.test(r))).toEqual([]);
    expect(log).toContain('Running on QEMU (i440fx)');
    expect(log).toContain('QEMU fw_cfg DMA interface supported');
    expect(log).toMatch(/qemu\/e820: addr 0x0000000000000000 len 0x0000000008000000 \[RAM\]/);
    expect(log).toContain('PCI: init bdf=00:00.0 id=8086:1237');
    expect(log).toContain('PIIX3/PIIX4 init: elcr=00 0c');
    expect(log).toContain('No bootable device');
    expect(log).not.toContain('WARNING');
    // The VGA BIOS ran from the ROM BAR, found the DISPI interface, and the banner and the
    // boot messages are in the VGA's text buffer.
    expect(log).toContain('Start SeaVGABIOS');
    expect(log).not.toContain('No VBE DISPI interface detected');
    expect(m.vga.textMode).toBe(true);
    const screen = m.vga.textLines();
    expect(screen[0]).toMatch(/^SeaBIOS \(version 1\.16/);
    expect(screen.join('\n')).toContain('No bootable device.');
    // The bus counted what SeaBIOS did to the chipset.
    const stats = Object.fromEntries(m.bus.stats.snapshot().devices.map((d) => [d.name, d]));
    expect(stats.pit.portWrites).toBeGreaterThan(0);
    expect(stats.pic.portWrites).toBeGreaterThan(0);
    expect(stats.rtc.portReads).toBeGreaterThan(0);
    expect(stats.fw_cfg.dmaBytesWritten).toBeGreaterThan(0);
    expect(stats.pci.portWrites).toBeGreaterThan(0);
    expect(stats.vga.mmioWrites).toBeGreaterThan(0);
    expect(stats.vga.portWrites).toBeGreaterThan(0);
  });

  it('gives the same BIOS log on every deterministic run', { timeout: 120_000 }, () => {
    const run = () => {
      let log = '';
      const m = createMachine({ memoryMiB: 64, bios: new Uint8Array(fs.readFileSync(BIOS)), boot: 'c', deterministic: true }, { biosLog: (b) => (log += String.fromCharCode(b)) });
      for (let i = 0; i < 5; i++) m.run(1_000_000);
      return { log, at: m.bus.clock.now(), instructions: m.cpu.instructionCount };
    };
    expect(run()).toEqual(run());
  });

  it('saves its state as plain data and goes on identically from a loaded copy', { timeout: 120_000 }, () => {
    const bios = new Uint8Array(fs.readFileSync(BIOS));
    const make = (log: { text: string }) => createMachine({ memoryMiB: 32, bios, boot: 'c', deterministic: true }, { biosLog: (b) => (log.text += String.fromCharCode(b)) });
    const logA = { text: '' };
    const a = make(logA);
    a.run(2_500_000); // in the middle of POST
    const saved = structuredClone(a.saveState());
    logA.text = '';
    a.run(3_000_000);
    const logB = { text: '' };
    const b = make(logB);
    b.loadState(saved);
    b.run(3_000_000);
    expect(logB.text.length).toBeGreaterThan(100);
    expect(logB.text).toBe(logA.text);
    expect(b.bus.clock.now()).toBe(a.bus.clock.now());
    expect(b.cpu.instructionCount).toBe(a.cpu.instructionCount);
    expect(Buffer.compare(b.bus.memory.ram, a.bus.memory.ram)).toBe(0);
  });

  it('resets on a triple fault in both time modes (a shutdown is not a final HLT)', () => {
    // A 64 KiB "BIOS" whose reset vector loads an empty IDT and executes INT3: #GP, #DF,
    // then shutdown. The halted CPU has interrupts off, but a reset is pending.
    const rom = new Uint8Array(65536);
    rom.set([0x2e, 0x0f, 0x01, 0x1e, 0xe0, 0xff, 0xcc, 0xeb, 0xfe], 0xfff0); // lidt cs:[0xffe0]; int3; jmp $
    for (const deterministic of [true, false]) {
      const resets: string[] = [];
      const m = createMachine({ memoryMiB: 16, bios: rom, boot: 'c', deterministic }, { reset: (r) => resets.push(r) });
      for (let i = 0; i < 5; i++) m.run(1000);
      expect(m.stopped, `deterministic: ${deterministic}`).toBeNull();
      expect(resets.length).toBeGreaterThan(1);
      expect(resets[0]).toMatch(/^triple fault: .* at f000:fff6 \(int3\)/);
    }
  });

  it('wall-clock mode: host time a halted guest slept stays its time when something wakes it and it then runs flat out', () => {
    // Reset vector: sti; hlt; jmp $. The NMI handler (IVT entry 2) is the jmp $.
    const rom = new Uint8Array(65536);
    rom.set([0xfb, 0xf4, 0xeb, 0xfe], 0xfff0);
    let host = 1000;
    const now = vi.spyOn(performance, 'now').mockImplementation(() => host);
    try {
      const m = createMachine({ memoryMiB: 16, bios: rom, boot: 'c', deterministic: false });
      m.bus.memory.ram.set([0xf2, 0xff, 0x00, 0xf0], 2 * 4);
      m.run(1000);
      expect(m.cpu.halted).toBe(true);
      // Two seconds of host time asleep in HLT, then an event wakes the guest (a frame from
      // a host socket, a key) and it runs to the end of its slice without halting again.
      host += 2000;
      m.cpu.nmi();
      m.run(200_000);
      expect(m.cpu.halted).toBe(false);
      // Those two seconds were the guest's; only host time the guest spent running beyond
      // what its instructions justify is lag (none here: the host clock stood still).
      expect(m.bus.clock.now()).toBeGreaterThanOrEqual(2e9);
    } finally {
      now.mockRestore();
    }
  });
});
