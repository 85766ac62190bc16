/**
 * Device state as the contract (issue 22): for every device of the PC, driven into the
 * middle of something through the real bus, save -> load into a fresh device on a fresh
 * bus -> save again gives the same state, and the loaded copy then behaves as the
 * original does: the same accesses at the same virtual times answer the same values,
 * drive the same interrupt lines at the same instants, call the same outputs, and leave
 * the same next state. A state from another version, another schema or with a field out
 * of shape is refused with a message naming the device and the field, and leaves the
 * device as it was.
 *
 * This is what moving a device between the emulated and the direct path relies on: its
 * state moves whole (saveState on one side, loadState on the other) while the guest runs.
 */
import { describe, expect, it } from 'vitest';
import type { Device, DeviceState } from '../bus/device.ts';
import { createTestBus, type TestBus } from '../bus/test-harness.ts';
import { STAMP_NAME, STAMP_VERSION } from '../bus/vmstate.ts';
import { MemoryBlockDevice } from '../devices/block-device.ts';
import { DebugPorts } from '../devices/debug-ports.ts';
import { Dma8237 } from '../devices/dma8237.ts';
import { Fdc82077 } from '../devices/fdc.ts';
import { Piix3Ide } from '../devices/ide/piix3-ide.ts';
import { IoApic82093 } from '../devices/io-apic.ts';
import { LAPIC, LocalApic } from '../devices/local-apic.ts';
import { Ne2000 } from '../devices/ne2000.ts';
import { ns8390Open } from '../devices/ne2000.testing.ts';
import { I8259Pic } from '../devices/pic.ts';
import { Pit8254 } from '../devices/pit.ts';
import { Port92 } from '../devices/port92.ts';
import { I8042 } from '../devices/ps2.ts';
import { Mc146818Rtc } from '../devices/rtc.ts';
import { Uart16550A } from '../devices/uart.ts';
import { StdVga } from '../devices/vga/std-vga.ts';
import { FwCfg } from '../firmware/fw-cfg.ts';
import { I440fxHostBridge } from '../pci/i440fx.ts';
import { Piix3IsaBridge } from '../pci/piix3.ts';
import { Piix4Pm } from '../pci/piix4-pm.ts';
import { FpuErrorLatch, createMachine } from './machine.ts';
import { difference } from './testing/state-difference.ts';

/** One copy of a case's devices on its own bus, with what they did to the world. */
interface Rig {
  t: TestBus;
  devices: Device[];
  /** Calls the devices made to the platform (INTR, messages, PAM changes, transmitted frames...), in order. */
  out: unknown[];
}

interface Case {
  name: string;
  /** Place fresh devices on `t` and wire their outputs to `out`, as the machine would. */
  build(t: TestBus, out: unknown[]): Device[];
  /** True when the devices sit on the PCI bus: its own state (BARs, INTx) moves with them. */
  pci?: boolean;
  /** Into the middle of something, through the bus (the original only). */
  drive(r: Rig): void;
  /** On the fresh bus before loading: input lines other devices drive (in the machine, their own loads do). */
  inputs?(r: Rig): void;
  /** Checks on the loaded copy right after loading (it must not disturb either copy). */
  loaded?(r: Rig): void;
  /** The same accesses on both copies; returns what they answered. */
  step(r: Rig): unknown[];
  /** IRQ lines the devices drive. */
  lines: number[];
  /** A corrupted field: which device (default 0), how the saved state is changed, and the message expected. */
  corrupt: { device?: number; change: (s: DeviceState) => DeviceState; message: string };
}

const saveAll = (r: Rig, pci?: boolean) => ({ devices: r.devices.map((d) => d.saveState()), pci: pci ? r.t.pci.saveState() : null });
const levels = (r: Rig, lines: number[]) => lines.map((l) => r.t.irqLevel(l));

function rig(c: Case, atNs = 0, ramBytes = 4 << 20): Rig {
  const t = createTestBus({ ramBytes });
  t.advanceTo(atNs);
  const out: unknown[] = [];
  return { t, out, devices: c.build(t, out) };
}

/** The original driven into `c`'s state, and a fresh copy loaded from its save at the same virtual time. */
function saveAndLoad(c: Case) {
  const a = rig(c);
  c.drive(a);
  const saved = saveAll(a, c.pci);
  const b = rig(c, a.t.now());
  c.inputs?.(b);
  b.t.ram.set(a.t.ram); // guest RAM is the machine's own state, saved beside the devices'
  b.devices.forEach((d, i) => d.loadState(saved.devices[i]));
  if (c.pci) b.t.pci.loadState(saved.pci!);
  return { a, b, saved };
}

// ---------------------------------------------------------------------------------------
// Helpers for driving devices as their guests do
// ---------------------------------------------------------------------------------------

/** A disk or CD image whose byte i of sector s is (s * 7 + i) & 0xff. */
function pattern(sectors: number, sectorBytes = 512): Uint8Array {
  const d = new Uint8Array(sectors * sectorBytes);
  for (let s = 0; s < sectors; s++) for (let i = 0; i < sectorBytes; i++) d[s * sectorBytes + i] = (s * 7 + i) & 0xff;
  return d;
}

function fdcSend(t: TestBus, ...bytes: number[]): void {
  for (const b of bytes) t.out8(0x3f5, b);
}
function fdcResults(t: TestBus): number[] {
  const r: number[] = [];
  while ((t.in8(0x3f4) & 0xc0) === 0xc0) r.push(t.in8(0x3f5));
  return r;
}
/** Out of reset with DMA and IRQ on, the four ready-change interrupts acknowledged, SPECIFY (ND as given). */
function fdcStart(t: TestBus, nonDma: boolean): void {
  t.out8(0x3f2, 0x00);
  t.out8(0x3f2, 0x1c);
  for (let i = 0; i < 4; i++) {
    fdcSend(t, 0x08);
    fdcResults(t);
  }
  fdcSend(t, 0x03, 0xaf, nonDma ? 0x03 : 0x02);
}

const MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);
const NIC_IO = 0xc100;
const NIC_IRQ = 11;
function ethFrame(size: number, seed: number): Uint8Array {
  const f = new Uint8Array(size);
  f.set(MAC, 0);
  f.set([0x52, 0x54, 0, 0x12, 0x34, 0x99], 6);
  f[12] = 0x08;
  for (let i = 14; i < size; i++) f[i] = (seed * 31 + i) & 0xff;
  return f;
}
/** Linux ne2k-pci's open (ne2000.testing.ts): ring 0x4C-0x80, all interrupts on. */
function nicOpen(t: TestBus): void {
  ns8390Open(t, NIC_IO, MAC);
}

const BMIBA = 0xc000;
function ideBuild(t: TestBus, withCd = true): Piix3Ide {
  const ide = new Piix3Ide({ hda: new MemoryBlockDevice(pattern(64)), cdrom: withCd ? new MemoryBlockDevice(pattern(16, 2048), true) : undefined });
  t.plugPci(ide, 1, 1);
  t.cfgWrite(1, 1, 0x40, 2, 0x8000);
  t.cfgWrite(1, 1, 0x42, 2, 0x8000);
  t.cfgWrite32(1, 1, 0x20, BMIBA | 1);
  t.cfgWrite(1, 1, 0x04, 2, 0x0005);
  return ide;
}
function ideSelect(t: TestBus, lba: number, count: number): void {
  t.out8(0x1f6, 0xe0);
  t.out8(0x1f2, count);
  t.out8(0x1f3, lba & 0xff);
  t.out8(0x1f4, (lba >> 8) & 0xff);
  t.out8(0x1f5, (lba >> 16) & 0xff);
}
const words = (t: TestBus, port: number, n: number) => Array.from({ length: n }, () => t.in16(port));

const lapicW = (t: TestBus, reg: number, v: number) => t.mmioWrite32(0xfee00000 + reg, v);
const lapicR = (t: TestBus, reg: number) => t.mmioRead32(0xfee00000 + reg);
const ioapicW = (t: TestBus, reg: number, v: number) => {
  t.mmioWrite32(0xfec00000, reg);
  t.mmioWrite32(0xfec00010, v);
};
const ioapicR = (t: TestBus, reg: number) => {
  t.mmioWrite32(0xfec00000, reg);
  return t.mmioRead32(0xfec00010);
};

const with_ = (s: DeviceState, field: string, value: unknown): DeviceState => ({ ...s, [field]: value });

// ---------------------------------------------------------------------------------------
// The devices of the PC, each in the middle of something
// ---------------------------------------------------------------------------------------

const uartSetup = (t: TestBus, base: number) => {
  t.out8(base + 3, 0x80);
  t.out8(base, 0x01); // 115200 baud: a character every 86.8 µs, the timeout after four
  t.out8(base + 1, 0);
  t.out8(base + 3, 0x03);
  t.out8(base + 2, 0xc7); // FIFOs on and cleared, trigger level 14
  t.out8(base + 1, 0x01); // received data (and character timeout) interrupt
  t.out8(base + 4, 0x0b); // DTR, RTS, OUT2 (the PC's IRQ gate)
};

const CASES: Case[] = [
  {
    name: 'PIT counting, counter 2 with a latched count half read, counter 1 with its MSB due',
    build: (t) => attachAll(t, [new Pit8254()]),
    drive: ({ t }) => {
      t.out8(0x43, 0x34); // counter 0: LSB then MSB, mode 2 (rate generator), IRQ0
      t.out8(0x40, 0xe8);
      t.out8(0x40, 0x03);
      t.out8(0x61, 0x01); // counter 2's gate on
      t.out8(0x43, 0xb0); // counter 2: mode 0
      t.out8(0x42, 0x10);
      t.out8(0x42, 0x27);
      t.out8(0x43, 0x76); // counter 1: mode 3, only the LSB written
      t.out8(0x41, 0x34);
      t.advance(2_345_678);
      t.out8(0x43, 0x80); // latch counter 2
      t.in8(0x42); // its LSB; the MSB is still latched
    },
    step: ({ t }) => {
      const r = [t.in8(0x42), t.in8(0x42), t.in8(0x42)];
      t.out8(0x41, 0x12);
      t.advance(1_000_000);
      t.out8(0x43, 0xe2); // read-back: status of counter 0
      r.push(t.in8(0x40), t.in8(0x40), t.in8(0x40), t.in8(0x41), t.in8(0x41), t.in8(0x61));
      t.advance(3_000_000);
      r.push(t.in8(0x61), t.in8(0x42), t.in8(0x42));
      return r;
    },
    lines: [0],
    corrupt: { change: (s) => with_(s, 'port61', 16), message: `i8254 pit: state field 'port61' must be a number 0..15, got 16` },
  },
  {
    name: 'UART COM1 with a character timeout pending and bytes in its FIFO (IIR 0xCC, IRQ 4 high)',
    build: (t, out) => {
      const u = new Uart16550A({ name: 'com1', port: 0x3f8, irq: 4 });
      u.onTransmit = (b) => out.push(['tx', b]);
      return attachAll(t, [u]);
    },
    drive: ({ t, devices }) => {
      uartSetup(t, 0x3f8);
      (devices[0] as Uart16550A).receive([0x41, 0x42, 0x43]);
      t.advance(1_000_000);
      expect(t.in8(0x3fa)).toBe(0xcc);
      expect(t.irqLevel(4)).toBe(1);
    },
    // The case: the old load re-armed the timeout by clearing it (IIR 0xC1, IRQ 4 low).
    loaded: ({ t }) => {
      expect(t.irqLevel(4)).toBe(1);
      expect(t.in8(0x3fa)).toBe(0xcc);
    },
    step: ({ t, devices }) => {
      const r = [t.in8(0x3fa), t.in8(0x3fd), t.in8(0x3f8), t.in8(0x3fa), t.in8(0x3f8)];
      t.advance(1_000_000);
      r.push(t.in8(0x3fa), t.in8(0x3f8), t.in8(0x3fa), t.in8(0x3fd));
      (devices[0] as Uart16550A).receive([0x44]);
      t.advance(200_000);
      t.out8(0x3f8, 0x55);
      t.out8(0x3f9, 0x03);
      r.push(t.in8(0x3fa), t.in8(0x3fa), t.in8(0x3f8), t.in8(0x3fe));
      return r;
    },
    lines: [4],
    corrupt: { change: (s) => with_(s, 'lsr', 'x'), message: `uart16550a com1: state field 'lsr' must be a number 0..255, got "x"` },
  },
  {
    name: 'UART COM2 with its character timeout armed but not yet due',
    build: (t) => attachAll(t, [new Uart16550A({ name: 'com2', port: 0x2f8, irq: 3 })]),
    drive: ({ t, devices }) => {
      uartSetup(t, 0x2f8);
      (devices[0] as Uart16550A).receive([1, 2]);
      t.advance(100_000);
      expect(t.irqLevel(3)).toBe(0);
    },
    // The timeout fires at the deadline the original set, not four characters after the load.
    step: ({ t }) => {
      t.advance(300_000);
      return [t.in8(0x2fa), t.in8(0x2f8), t.in8(0x2f8), t.in8(0x2fa)];
    },
    lines: [3],
    corrupt: { change: (s) => with_(s, 'timeoutAt', -1), message: `uart16550a com2: state field 'timeoutAt' must be a finite number >= 0 or null, got -1` },
  },
  {
    name: 'PICs with IR1 in service, IR4 and the slave\'s level IR11 requested, OCW3 reading ISR',
    build: (t, out) => {
      const pic = new I8259Pic();
      pic.onIntr = (level) => out.push(['intr', level]);
      const log = t.bus.irqSink;
      t.bus.irqSink = (line, level) => {
        log(line, level);
        pic.setIrq(line, level);
      };
      return attachAll(t, [pic]);
    },
    drive: ({ t, devices, out }) => {
      const pic = devices[0] as I8259Pic;
      t.out8(0x20, 0x11); t.out8(0x21, 0x20); t.out8(0x21, 0x04); t.out8(0x21, 0x01);
      t.out8(0xa0, 0x11); t.out8(0xa1, 0x28); t.out8(0xa1, 0x02); t.out8(0xa1, 0x01);
      t.out8(0x21, 0x00); t.out8(0xa1, 0x00);
      t.out8(0x4d1, 0x08); // IRQ11 level-triggered (ELCR)
      t.raise(4);
      t.raise(1);
      out.push(['inta', pic.acknowledge()]);
      t.raise(11);
      t.out8(0x20, 0x0b);
    },
    inputs: ({ t }) => {
      t.raise(4);
      t.raise(1);
      t.raise(11);
    },
    step: ({ t, devices }) => {
      const pic = devices[0] as I8259Pic;
      const r = [t.in8(0x20), t.in8(0x21)];
      t.out8(0x20, 0x20);
      t.out8(0x20, 0x0a);
      r.push(t.in8(0x20), pic.acknowledge(), pic.acknowledge());
      t.lower(4);
      t.raise(4);
      t.out8(0xa0, 0x20);
      t.out8(0x20, 0x20);
      r.push(pic.acknowledge(), t.in8(0xa0), t.in8(0x4d1));
      t.lower(11);
      r.push(t.in8(0xa0));
      return r;
    },
    lines: [],
    corrupt: { change: (s) => with_(s, 'master', { ...(s.master as object), isr: 256 }), message: `i8259 pic: state field 'master.isr' must be a number 0..255, got 256` },
  },
  {
    name: 'RTC with an update-ended interrupt pending (IRQ 8 high, register C unread)',
    build: (t) => attachAll(t, [new Mc146818Rtc({ startMs: Date.UTC(2026, 0, 2, 3, 4, 5, 600) })]),
    drive: ({ t }) => {
      t.out8(0x70, 0x0b);
      t.out8(0x71, 0x12); // UIE, 24-hour
      t.advance(1_500_000_000);
      t.out8(0x70, 0x0c);
      expect(t.irqLevel(8)).toBe(1);
    },
    loaded: ({ t }) => expect(t.irqLevel(8)).toBe(1),
    step: ({ t }) => {
      const r = [t.in8(0x71), t.in8(0x71)];
      t.advance(1_000_000_000);
      r.push(t.in8(0x71));
      t.out8(0x70, 0x00);
      r.push(t.in8(0x71));
      t.out8(0x70, 0x0b);
      t.out8(0x71, 0x52); // and the periodic interrupt at 1024 Hz
      t.advance(5_000_000);
      t.out8(0x70, 0x0c);
      r.push(t.in8(0x71));
      t.advance(2_000_000);
      return r;
    },
    lines: [8],
    corrupt: { change: (s) => with_(s, 'cmos', new Uint8Array(64)), message: `mc146818 rtc: state field 'cmos' must be a Uint8Array(128), got a Uint8Array(64)` },
  },
  {
    name: '8042 with keyboard bytes, a mouse ACK and a mouse packet queued',
    build: (t, out) => {
      const k = new I8042();
      k.onA20 = (on) => out.push(['a20', on]);
      k.onReset = () => out.push(['reset']);
      return attachAll(t, [k]);
    },
    drive: ({ t, devices }) => {
      const k = devices[0] as I8042;
      t.out8(0x64, 0xa8); // enable the auxiliary port
      t.out8(0x64, 0xd4);
      t.out8(0x60, 0xf4); // mouse: enable reporting (answers ACK)
      k.keyboard([0x1c, 0xf0, 0x1c]);
      k.mouse(5, -3, 1);
    },
    step: ({ t }) => {
      const r: number[] = [];
      for (let i = 0; i < 12; i++) {
        const st = t.in8(0x64);
        r.push(st);
        if (st & 1) r.push(t.in8(0x60));
      }
      t.out8(0x64, 0xd1);
      t.out8(0x60, 0xdd); // output port: A20 off
      return r;
    },
    lines: [1, 12],
    corrupt: {
      change: (s) => with_(s, 'queue', [{ byte: 300, aux: false }]),
      message: `i8042: state field 'queue[0].byte' must be a number 0..255, got 300`,
    },
  },
  {
    name: 'floppy mid-seek (interrupt pending for SENSE INTERRUPT STATUS) with DMA channel 2 programmed and a flip-flop half written',
    build: (t) => {
      const dma = new Dma8237();
      return attachAll(t, [dma, new Fdc82077(new MemoryBlockDevice(pattern(2880)), dma.channel(2))]);
    },
    drive: ({ t }) => {
      fdcStart(t, false);
      fdcSend(t, 0x0f, 0x00, 40); // SEEK to cylinder 40
      t.out8(0x0a, 0x06);
      t.out8(0x0c, 0);
      t.out8(0x0b, 0x46); // channel 2: single, write (to memory)
      t.out8(0x04, 0x00);
      t.out8(0x04, 0x00);
      t.out8(0x81, 0x01); // 0x10000
      t.out8(0x05, 0xff);
      t.out8(0x05, 0x01); // 512 bytes
      t.out8(0x0a, 0x02);
      t.out8(0x06, 0x34); // channel 3's address: only the low byte (flip-flop left set)
      expect(t.irqLevel(6)).toBe(1);
    },
    step: ({ t }) => {
      fdcSend(t, 0x08);
      const r = fdcResults(t);
      fdcSend(t, 0x46, 0x00, 40, 0, 3, 2, 3, 0x1b, 0xff); // READ DATA C40 H0 R3, one sector, by DMA
      r.push(t.irqLevel(6), ...fdcResults(t), t.in8(0x08), t.in8(0x06), t.in8(0x06));
      r.push(t.ram.subarray(0x10000, 0x10200).reduce((a, b) => (a * 31 + b) >>> 0, 0));
      return r;
    },
    lines: [6],
    corrupt: {
      device: 1,
      change: (s) => with_(s, 'phase', 'idle'),
      message: `fdc82077 fdc: state field 'phase' must be one of "command", "execution", "result", got "idle"`,
    },
  },
  {
    name: 'floppy mid-PIO READ DATA (non-DMA execution phase, 100 bytes of 512 read)',
    build: (t) => {
      const dma = new Dma8237();
      return attachAll(t, [dma, new Fdc82077(new MemoryBlockDevice(pattern(2880)), dma.channel(2))]);
    },
    drive: ({ t }) => {
      fdcStart(t, true);
      fdcSend(t, 0x46, 0x00, 0, 0, 2, 2, 2, 0x1b, 0xff);
      for (let i = 0; i < 100; i++) t.in8(0x3f5);
      expect(t.irqLevel(6)).toBe(1);
    },
    loaded: ({ t }) => expect(t.irqLevel(6)).toBe(1),
    step: ({ t }) => {
      const r = [t.in8(0x3f4)];
      let sum = 0;
      for (let i = 0; i < 412; i++) sum = (sum * 31 + t.in8(0x3f5)) >>> 0;
      r.push(sum, ...fdcResults(t), t.irqLevel(6), t.in8(0x3f4));
      return r;
    },
    lines: [6],
    corrupt: {
      device: 1,
      change: (s) => with_(s, 'pio', { data: [1, 2], write: false, cmd: [0x46, 'x'] }),
      message: `fdc82077 fdc: state field 'pio.cmd[1]' must be a number 0..65535, got "x"`,
    },
  },
  {
    name: 'I/O APIC with a level pin asserted and its remote IRR set, an edge pin delivered',
    build: (t, out) => {
      const io = new IoApic82093();
      io.send = (...m) => out.push(['send', ...m]);
      return attachAll(t, [io]);
    },
    drive: ({ t, devices }) => {
      const io = devices[0] as IoApic82093;
      ioapicW(t, 0x10 + 2 * 11, 0x8039); // pin 11: vector 0x39, level
      ioapicW(t, 0x11 + 2 * 11, 0x01000000);
      ioapicW(t, 0x10 + 2 * 2, 0x0031); // pin 2: vector 0x31, edge
      io.setPin(11, true);
      io.setPin(2, true);
      t.mmioWrite32(0xfec00000, 0x10 + 2 * 11);
      expect(t.mmioRead32(0xfec00010) & 0x4000).toBe(0x4000);
    },
    step: ({ t, devices }) => {
      const io = devices[0] as IoApic82093;
      const r = [t.mmioRead32(0xfec00010), ioapicR(t, 0x11 + 2 * 11), ioapicR(t, 1)];
      io.eoi(0x39); // still asserted: delivered again
      r.push(ioapicR(t, 0x10 + 2 * 11));
      io.setPin(11, false);
      io.eoi(0x39);
      io.setPin(2, false);
      io.setPin(2, true);
      r.push(ioapicR(t, 0x10 + 2 * 11), ioapicR(t, 0x10 + 2 * 2));
      return r;
    },
    lines: [],
    corrupt: { change: (s) => with_(s, 'low', new Uint32Array(23)), message: `ioapic82093 ioapic: state field 'low' must be a Uint32Array(24), got a Uint32Array(23)` },
  },
  {
    name: 'local APIC with its periodic timer armed, a vector in service and one requested',
    build: (t, out) => {
      const l = new LocalApic();
      l.cpuIntr = (level) => out.push(['intr', level]);
      l.onEoi = (v) => out.push(['eoi', v]);
      return attachAll(t, [l]);
    },
    drive: ({ t, devices, out }) => {
      const l = devices[0] as LocalApic;
      lapicW(t, LAPIC.SVR, 0x1ff);
      lapicW(t, LAPIC.TIMER_DIVIDE, 0x3); // divide by 16
      lapicW(t, LAPIC.LVT_TIMER, 0x20030); // periodic, vector 0x30
      lapicW(t, LAPIC.TIMER_INITIAL, 100_000); // 1.6 ms
      l.deliver(0x41, 0, false, 0, false);
      out.push(['inta', l.acknowledge()]);
      t.advance(2_000_000);
    },
    step: ({ t, devices }) => {
      const l = devices[0] as LocalApic;
      const r = [lapicR(t, LAPIC.TIMER_CURRENT), lapicR(t, LAPIC.IRR + 0x10), lapicR(t, LAPIC.ISR + 0x20)];
      lapicW(t, LAPIC.EOI, 0);
      r.push(l.acknowledge());
      t.advance(5_000_000);
      r.push(lapicR(t, LAPIC.TIMER_CURRENT), lapicR(t, LAPIC.IRR + 0x10));
      lapicW(t, LAPIC.LVT_TIMER, 0x30); // one-shot from here
      t.advance(3_000_000);
      r.push(lapicR(t, LAPIC.TIMER_CURRENT), lapicR(t, LAPIC.IRR + 0x10));
      return r;
    },
    lines: [],
    corrupt: { change: (s) => with_(s, 'svr', 0x400), message: `lapic: state field 'svr' must be a number 0..1023, got 1024` },
  },
  {
    name: 'port 0x92 with A20 off',
    build: (t, out) => {
      const p = new Port92();
      p.onA20 = (on) => out.push(['a20', on]);
      p.onReset = () => out.push(['reset']);
      return attachAll(t, [p]);
    },
    drive: ({ t }) => t.out8(0x92, 0x00),
    step: ({ t }) => {
      const r = [t.in8(0x92)];
      t.out8(0x92, 0x02);
      t.out8(0x92, 0x03);
      r.push(t.in8(0x92));
      return r;
    },
    lines: [],
    corrupt: { change: (s) => with_(s, 'value', 4), message: `port92: state field 'value' must be a number 0..3, got 4` },
  },
  {
    name: 'debug ports with a POST code',
    build: (t, out) => {
      const d = new DebugPorts();
      d.onPostCode = (c) => out.push(['post', c]);
      return attachAll(t, [d]);
    },
    drive: ({ t }) => t.out8(0x80, 0x42),
    step: ({ t }) => {
      const r = [t.in8(0x80)];
      t.out8(0x80, 0x55);
      r.push(t.in8(0x80), t.in8(0x402));
      return r;
    },
    lines: [],
    corrupt: { change: (s) => with_(s, 'postCode', -1), message: `debug-ports debug: state field 'postCode' must be a number 0..255, got -1` },
  },
  {
    name: 'FPU error latch asserting IRQ 13',
    build: (t) => attachAll(t, [new FpuErrorLatch()]),
    drive: ({ devices }) => (devices[0] as FpuErrorLatch).assert(),
    loaded: ({ t }) => expect(t.irqLevel(13)).toBe(1),
    step: ({ t, devices }) => {
      const r = [t.in8(0xf0), t.irqLevel(13)];
      t.out8(0xf0, 0);
      r.push(t.irqLevel(13));
      (devices[0] as FpuErrorLatch).assert();
      return r;
    },
    lines: [13],
    corrupt: { change: (s) => with_(s, 'asserted', 1), message: `fpu-error: state field 'asserted' must be a boolean, got 1` },
  },
  {
    name: 'fw_cfg mid-file (100 of 300 bytes read through the data port)',
    build: (t) => {
      const f = new FwCfg();
      f.addFile('etc/trapdoor-test', Uint8Array.from({ length: 300 }, (_, i) => (i * 13) & 0xff));
      return attachAll(t, [f]);
    },
    drive: ({ t }) => {
      t.out16(0x510, 0x20); // the first file
      for (let i = 0; i < 100; i++) t.in8(0x511);
      t.out32(0x514, 0);
    },
    step: ({ t }) => {
      const r = Array.from({ length: 50 }, () => t.in8(0x511));
      // A DMA read of the next 60 bytes: descriptor {be32 control, be32 length, be64 address} at 0x2000.
      const d = new DataView(t.ram.buffer, 0x2000, 16);
      d.setUint32(0, 0x02, false);
      d.setUint32(4, 60, false);
      d.setUint32(8, 0, false);
      d.setUint32(12, 0x3000, false);
      t.out32(0x518, 0x00200000); // 0x2000 big-endian: starts the transfer
      r.push(...t.ram.subarray(0x3000, 0x303c), d.getUint32(0, false), t.in8(0x511));
      return r;
    },
    lines: [],
    corrupt: { change: (s) => with_(s, 'offset', -1), message: `fw_cfg: state field 'offset' must be a number 0..4294967295, got -1` },
  },
  {
    name: 'NE2000 with frames queued in front of a full ring and a remote DMA read half done',
    pci: true,
    build: (t, out) => {
      const nic = new Ne2000({ mac: MAC });
      nic.onTransmit = (f) => out.push(['tx', f.length, f.reduce((a, b) => (a * 31 + b) >>> 0, 0)]);
      t.plugPci(nic, 3);
      t.cfgWrite32(3, 0, 0x10, NIC_IO | 1);
      t.cfgWrite(3, 0, 0x04, 2, 0x0001);
      t.pci.setPirq(2, NIC_IRQ); // INTA# of slot 3 on link C, as SeaBIOS routes it
      return [nic];
    },
    drive: ({ t, devices }) => {
      const nic = devices[0] as Ne2000;
      nicOpen(t);
      for (let i = 0; i < 12; i++) nic.receive(ethFrame(1514, i));
      expect(nic.queuedFrames).toBe(4);
      t.out8(NIC_IO + 0x0a, 64); // remote read of 64 bytes from the ring's first page
      t.out8(NIC_IO + 0x0b, 0);
      t.out8(NIC_IO + 0x08, 0x00);
      t.out8(NIC_IO + 0x09, 0x4c);
      t.out8(NIC_IO, 0x0a);
      for (let i = 0; i < 16; i++) t.in16(NIC_IO + 0x10);
    },
    loaded: ({ t }) => expect(t.irqLevel(NIC_IRQ)).toBe(1),
    step: ({ t }) => {
      const io = NIC_IO;
      const r = [...words(t, io + 0x10, 16), t.in8(io + 0x07)];
      t.out8(io + 0x07, 0xff);
      t.out8(io, 0x62);
      const curr = t.in8(io + 0x07);
      t.out8(io, 0x22);
      t.out8(io + 0x03, curr === 0x4c ? 0x7f : curr - 1); // the guest took every frame: room for the queue
      t.advance(1_000);
      t.out8(io, 0x62);
      r.push(curr, t.in8(io + 0x07));
      t.out8(io, 0x22);
      r.push(t.in8(io + 0x07), t.in8(io + 0x03));
      // Transmit 60 bytes from the transmit buffer (whatever it holds) and look at TSR.
      t.out8(io + 0x05, 60);
      t.out8(io + 0x06, 0);
      t.out8(io, 0x26);
      r.push(t.in8(io + 0x04), t.in8(io + 0x07));
      return r;
    },
    lines: [NIC_IRQ],
    corrupt: {
      change: (s) => with_(s, 'rxQueue', [new Uint8Array(5000)]),
      message: `ne2000 ne2k: state field 'rxQueue[0]' must be a Uint8Array(14..1518), got a Uint8Array(5000)`,
    },
  },
  {
    name: 'IDE disk mid-PIO READ SECTORS (100 of 256 words of the first of three sectors read)',
    pci: true,
    build: (t) => [ideBuild(t)],
    drive: ({ t }) => {
      ideSelect(t, 5, 3);
      t.out8(0x1f7, 0x20);
      t.in8(0x1f7);
      words(t, 0x1f0, 100);
    },
    step: ({ t }) => {
      const r: number[] = [t.irqLevel(14), t.in8(0x3f6)];
      r.push(...words(t, 0x1f0, 156), t.irqLevel(14), t.in8(0x1f7), ...words(t, 0x1f0, 256));
      r.push(t.in8(0x1f7), ...words(t, 0x1f0, 256), t.in8(0x1f7), t.in8(0x1f2), t.in8(0x1f3));
      return r;
    },
    lines: [14, 15],
    corrupt: {
      change: (s) => ({ ...s, channels: (s.channels as Record<string, unknown>[]).map((c, i) => (i === 0 ? { ...c, xfer: { ...(c.xfer as object), kind: 'pio-sideways' } } : c)) }),
      message: `piix3-ide ide: state field 'channels[0].xfer.kind' must be one of "none", "pio-in", "pio-out", "packet", "dma-in", "dma-out", got "pio-sideways"`,
    },
  },
  {
    name: 'IDE disk mid-bus-master DMA (READ DMA issued, PRD table set, the engine not yet started)',
    pci: true,
    build: (t) => [ideBuild(t)],
    drive: ({ t }) => {
      const prd = new DataView(t.ram.buffer, 0x1000, 16);
      prd.setUint32(0, 0x20000, true);
      prd.setUint32(4, 512, true);
      prd.setUint32(8, 0x30000, true);
      prd.setUint32(12, 0x80000000 | 512, true);
      t.out32(BMIBA + 4, 0x1000);
      ideSelect(t, 9, 2);
      t.out8(0x1f7, 0xc8);
    },
    step: ({ t }) => {
      const r: number[] = [t.in8(BMIBA + 2), t.in8(0x3f6)];
      t.out8(BMIBA, 0x09); // start, to memory
      r.push(t.in8(BMIBA + 2), t.irqLevel(14), t.in8(0x1f7), t.irqLevel(14));
      t.out8(BMIBA + 2, 0x04);
      r.push(t.in8(BMIBA + 2), ...t.ram.subarray(0x20000, 0x20010), ...t.ram.subarray(0x301f0, 0x30200));
      return r;
    },
    lines: [14, 15],
    corrupt: {
      change: (s) => with_(s, 'config', new Uint8Array(0x40)),
      message: `piix3-ide ide: state field 'config' must be a Uint8Array(256), got a Uint8Array(64)`,
    },
  },
  {
    name: 'IDE after a bus-master DMA: the guest cleared the BMIDE interrupt bit, INTRQ still pending',
    pci: true,
    build: (t) => [ideBuild(t)],
    drive: ({ t }) => {
      const prd = new DataView(t.ram.buffer, 0x1000, 8);
      prd.setUint32(0, 0x20000, true);
      prd.setUint32(4, 0x80000000 | 512, true);
      t.out32(BMIBA + 4, 0x1000);
      ideSelect(t, 2, 1);
      t.out8(0x1f7, 0xc8);
      t.out8(BMIBA, 0x09);
      t.out8(BMIBA, 0x08); // stop the engine
      t.out8(BMIBA + 2, 0x04); // clear the interrupt bit, as Linux's ata_bmdma_irq_clear does first
      expect(t.irqLevel(14)).toBe(1);
    },
    loaded: ({ t }) => {
      expect(t.irqLevel(14)).toBe(1);
      expect(t.in8(BMIBA + 2) & 0x04).toBe(0);
    },
    step: ({ t }) => [t.in8(BMIBA + 2), t.irqLevel(14), t.in8(0x1f7), t.irqLevel(14), t.in8(BMIBA + 2)],
    lines: [14, 15],
    corrupt: {
      change: (s) => ({ ...s, channels: (s.channels as Record<string, unknown>[]).map((c) => ({ ...c, bm: { ...(c.bm as object), prd: 2 ** 32 } })) }),
      message: `piix3-ide ide: state field 'channels[0].bm.prd' must be a number 0..4294967295, got 4294967296`,
    },
  },
  {
    name: 'IDE CD-ROM mid-PIO READ(10) (1000 of 2048 bytes of the first DRQ block read, a second block due)',
    pci: true,
    build: (t) => [ideBuild(t)],
    drive: ({ t }) => {
      t.out8(0x176, 0xa0);
      t.out8(0x171, 0);
      t.out8(0x174, 0x00);
      t.out8(0x175, 0x08); // byte count limit 2048: one sector per DRQ block
      t.out8(0x177, 0xa0); // PACKET
      const p = [0x28, 0, 0, 0, 0, 3, 0, 0, 2, 0, 0, 0]; // READ(10): LBA 3, two sectors
      for (let i = 0; i < 12; i += 2) t.out16(0x170, p[i] | (p[i + 1] << 8));
      expect(t.in8(0x177) & 0x08).toBe(0x08);
      words(t, 0x170, 500);
    },
    step: ({ t }) => {
      const r: number[] = [t.in8(0x172), t.in8(0x174), t.in8(0x175)];
      let sum = 0;
      for (const w of words(t, 0x170, 524)) sum = (sum * 31 + w) >>> 0;
      r.push(sum, t.irqLevel(15), t.in8(0x177), t.in8(0x172));
      for (const w of words(t, 0x170, 1024)) sum = (sum * 31 + w) >>> 0;
      r.push(sum, t.irqLevel(15), t.in8(0x177), t.in8(0x172));
      return r;
    },
    lines: [14, 15],
    corrupt: {
      change: (s) => ({ ...s, channels: [(s.channels as unknown[])[0]] }),
      message: `piix3-ide ide: state field 'channels' must be an array of 2 items, got an array of 1`,
    },
  },
  {
    name: 'VGA in a DISPI mode (640x480x32, linear framebuffer) with a DAC write and an attribute index half done',
    pci: true,
    build: (t) => {
      const vga = new StdVga();
      t.plugPci(vga, 2);
      t.cfgWrite32(2, 0, 0x10, 0xe0000000);
      t.cfgWrite32(2, 0, 0x18, 0xfebf0000);
      t.cfgWrite(2, 0, 0x04, 2, 0x0003);
      return [vga];
    },
    drive: ({ t }) => {
      for (const [i, v] of [[1, 640], [2, 480], [3, 32], [4, 0x41]]) {
        t.out16(0x1ce, i);
        t.out16(0x1cf, v);
      }
      for (let i = 0; i < 64; i++) t.mmioWrite32(0xe0000000 + i * 4, (i * 0x01020304) >>> 0);
      t.out8(0x3c8, 5);
      t.out8(0x3c9, 10);
      t.out8(0x3c9, 20); // blue still due
      t.in8(0x3da);
      t.out8(0x3c0, 0x10); // attribute index written: the next write is data
    },
    step: ({ t }) => {
      t.out8(0x3c9, 30);
      t.out8(0x3c7, 5);
      const r = [t.in8(0x3c9), t.in8(0x3c9), t.in8(0x3c9)];
      t.out8(0x3c0, 0x01);
      r.push(t.in8(0x3c1));
      t.out16(0x1ce, 1);
      r.push(t.in16(0x1cf), t.in16(0x1ce));
      for (let i = 0; i < 16; i++) r.push(t.mmioRead32(0xe0000000 + i * 4));
      t.out16(0x1ce, 9);
      t.out16(0x1cf, 3);
      r.push(t.mmioRead16(0xfebf0500 + 9 * 2), t.mmioRead8(0xfebf0400 + 0x1a));
      return r;
    },
    lines: [],
    corrupt: { change: (s) => with_(s, 'dispi', new Uint16Array(15)), message: `std-vga vga: state field 'dispi' must be a Uint16Array(16), got a Uint16Array(15)` },
  },
  {
    name: 'i440FX with PAM areas switched to RAM and SMRAM programmed',
    pci: true,
    build: (t, out) => {
      const h = new I440fxHostBridge();
      h.onPam = (i, v) => out.push(['pam', i, v]);
      t.plugPci(h, 0);
      return [h];
    },
    drive: ({ t }) => {
      t.cfgWrite(0, 0, 0x59, 1, 0x30);
      t.cfgWrite(0, 0, 0x5a, 1, 0x11);
      t.cfgWrite(0, 0, 0x72, 1, 0x0a);
    },
    // The PAM map is applied again from the loaded registers.
    loaded: ({ out }) => {
      expect(out).toContainEqual(['pam', 0, 3]);
      expect(out).toContainEqual(['pam', 1, 1]);
      expect(out).toContainEqual(['pam', 2, 1]);
    },
    step: ({ t }) => {
      const r = [t.cfgRead(0, 0, 0x59, 1), t.cfgRead32(0, 0, 0x58)];
      t.cfgWrite(0, 0, 0x5b, 1, 0x33);
      r.push(t.cfgRead(0, 0, 0x72, 1), t.cfgRead32(0, 0, 0x00), t.cfgRead(0, 0, 0x5b, 1));
      return r;
    },
    lines: [],
    corrupt: { change: (s) => with_(s, 'config', new Uint8Array(0x100)), message: `i440fx: state field 'config' must be a Uint8Array(192), got a Uint8Array(256)` },
  },
  {
    name: 'PIIX3 ISA bridge with PIRQ links routed',
    pci: true,
    build: (t, out) => {
      const p = new Piix3IsaBridge();
      p.onPirq = (link, v) => out.push(['pirq', link, v]);
      t.plugPci(p, 1, 0);
      return [p];
    },
    drive: ({ t }) => {
      t.cfgWrite(1, 0, 0x60, 1, 0x0b);
      t.cfgWrite(1, 0, 0x61, 1, 0x0a);
    },
    loaded: ({ out }) => expect(out).toContainEqual(['pirq', 0, 0x0b]),
    step: ({ t }) => {
      const r = [t.cfgRead32(1, 0, 0x60)];
      t.cfgWrite(1, 0, 0x62, 1, 0x05);
      r.push(t.cfgRead32(1, 0, 0x60), t.cfgRead32(1, 0, 0x4c));
      return r;
    },
    lines: [],
    corrupt: { change: (s) => with_(s, 'config', null), message: `piix3: state field 'config' must be a Uint8Array(192), got null` },
  },
  {
    name: 'PIIX4 PM with SCI enabled and the PM timer overflow (TMR_STS) armed',
    pci: true,
    build: (t, out) => {
      const pm = new Piix4Pm();
      pm.onPowerOff = () => out.push(['off']);
      t.plugPci(pm, 1, 3);
      return [pm];
    },
    drive: ({ t }) => {
      t.cfgWrite(1, 3, 0x40, 4, 0xb001);
      t.cfgWrite(1, 3, 0x80, 1, 0x01);
      t.out8(0xb2, 0xf1); // ACPI enable: SCI_EN
      t.out16(0xb002, 0x0001); // TMR_EN
      t.advance(1_500_000_000);
    },
    step: ({ t }) => {
      const r = [t.in32(0xb008), t.in16(0xb000), t.in16(0xb004)];
      t.advance(1_000_000_000); // bit 23 of the timer toggles at 2.34 s: TMR_STS and the SCI
      r.push(t.in16(0xb000), t.irqLevel(9));
      t.out16(0xb000, 0x0001);
      r.push(t.in16(0xb000), t.irqLevel(9));
      t.advance(2_400_000_000);
      r.push(t.in16(0xb000), t.in32(0xb008));
      return r;
    },
    lines: [9],
    corrupt: { change: (s) => with_(s, 'overflowAt', 'soon'), message: `piix4-pm acpi: state field 'overflowAt' must be a finite number >= 0 or null, got "soon"` },
  },
];

function attachAll(t: TestBus, devices: Device[]): Device[] {
  for (const d of devices) t.attach(d);
  return devices;
}

describe('device state: save -> load -> save, and the loaded copy runs on as the original', () => {
  for (const c of CASES) {
    describe(c.name, () => {
      it('saves the same state after loading it, with its lines driven again', () => {
        const { a, b, saved } = saveAndLoad(c);
        for (const s of saved.devices) {
          expect(typeof s[STAMP_NAME]).toBe('string');
          expect(typeof s[STAMP_VERSION]).toBe('number');
        }
        expect(difference(saveAll(b, c.pci), saved)).toBeNull();
        expect(levels(b, c.lines)).toEqual(levels(a, c.lines));
        // The saved state is plain data: it crosses a worker boundary as it is.
        expect(difference(structuredClone(saved), saved)).toBeNull();
        c.loaded?.(b);
      });

      it('answers, interrupts and saves as the original does when both go on', () => {
        const { a, b } = saveAndLoad(c);
        for (const r of [a, b]) {
          r.t.clearIrqLog();
          r.out.length = 0;
        }
        const answersA = c.step(a);
        const answersB = c.step(b);
        expect(answersB).toEqual(answersA);
        expect(b.t.irqLog).toEqual(a.t.irqLog);
        expect(b.out).toEqual(a.out);
        expect(levels(b, c.lines)).toEqual(levels(a, c.lines));
        expect(b.t.now()).toBe(a.t.now());
        expect(difference(saveAll(b, c.pci), saveAll(a, c.pci))).toBeNull();
      });

      it('refuses a state of another version or schema, or with a field out of shape, and stays as it was', () => {
        const { b, saved } = saveAndLoad(c);
        const i = c.corrupt.device ?? 0;
        const device = b.devices[i];
        const good = saved.devices[i];
        const before = device.saveState();
        const linesBefore = levels(b, c.lines);
        const name = good[STAMP_NAME] as string;
        const version = good[STAMP_VERSION] as number;
        const refusals: [DeviceState, string][] = [
          [{ ...good, [STAMP_VERSION]: version + 1 }, `state version ${version + 1} is newer than this build's ${version}`],
          [{ ...good, [STAMP_VERSION]: 0 }, `state version 0 is older than the oldest loadable`],
          [{ ...good, [STAMP_NAME]: `${name}-other` }, `not a ${name} state (stamped "${name}-other")`],
          [{ ...good, bogus: 1 }, `state field 'bogus' is not part of the state`],
          [c.corrupt.change(good), c.corrupt.message],
        ];
        for (const [bad, message] of refusals) {
          expect(() => device.loadState(bad)).toThrow(message);
          expect(() => device.loadState(bad)).toThrow(new RegExp(`^${name}( ${device.name})?: `));
          expect(difference(device.saveState(), before)).toBeNull();
          expect(levels(b, c.lines)).toEqual(linesBefore);
        }
        // A field missing altogether is named too.
        const firstField = Object.keys(good).find((k) => !k.startsWith('$'))!;
        const { [firstField]: _dropped, ...missing } = good;
        expect(() => device.loadState(missing)).toThrow(`state field '${firstField}' is missing`);
      });
    });
  }

  it('refuses an IDE state whose drives are not the ones this controller has, before changing anything', () => {
    const c = CASES.find((x) => x.name.startsWith('IDE disk mid-PIO'))!;
    const { saved } = saveAndLoad(c);
    const t = createTestBus({ ramBytes: 4 << 20 });
    const ide = ideBuild(t, false);
    const before = ide.saveState();
    expect(() => ide.loadState(saved.devices[0])).toThrow(`piix3-ide ide: ide1 drive 0 is absent but the state holds a cdrom`);
    expect(difference(ide.saveState(), before)).toBeNull();
  });

  it('refuses a PCI bus state naming a function the bus lacks, before changing anything', () => {
    const c = CASES.find((x) => x.name.startsWith('NE2000'))!;
    const { saved } = saveAndLoad(c);
    const t = createTestBus();
    t.plugPci(new I440fxHostBridge(), 0);
    const before = t.pci.saveState();
    expect(() => t.pci.loadState(saved.pci!)).toThrow(`pci-bus: the state has a PCI function at 00:03.0 this bus lacks`);
    expect(difference(t.pci.saveState(), before)).toBeNull();
  });
});

describe('every device of the machine', () => {
  it('has a versioned schema and a case in this table', () => {
    // A machine that never runs: its firmware need not be real to list its devices.
    const config = {
      memoryMiB: 16, bios: new Uint8Array(0x20000), boot: 'c', deterministic: true,
      network: { nics: [{ model: 'ne2k_pci' as const, mac: MAC, netdev: null }], netdevs: [] },
    };
    const m = createMachine(config);
    const state = m.saveState();
    // Machine.loadState takes them all back.
    const again = createMachine(config);
    again.loadState(state);
    expect(difference(again.saveState().devices, state.devices)).toBeNull();
    expect(difference(again.saveState().pci, state.pci)).toBeNull();
    const stamped = Object.entries(state.devices).map(([name, s]) => [name, s[STAMP_NAME]]);
    for (const [name, schema] of stamped) expect(schema, `${name} has no schema stamp`).toEqual(expect.any(String));
    const covered = new Set<string>();
    for (const c of CASES) {
      const t = createTestBus();
      for (const d of c.build(t, [])) covered.add(d.saveState()[STAMP_NAME] as string);
    }
    const missing = stamped.filter(([, schema]) => !covered.has(schema as string)).map(([name]) => name);
    expect(missing).toEqual([]);
    expect(state.pci[STAMP_NAME]).toBe('pci-bus');
  });
});
