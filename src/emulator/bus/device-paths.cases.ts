/**
 * Guest sessions with each switchable device, for the path tests (device-paths.test.ts with
 * the device model in this thread, src/worker/device-model.test.ts with it in a worker):
 * the same steps run direct, emulated and switched between every step must give the same
 * trace. Test support only.
 */
import { createTestBus, type TestBus } from './test-harness.ts';
import { DevicePaths, type DeviceModelConnector, type DevicePath } from './device-paths.ts';
import type { Device } from './device.ts';
import { Uart16550A } from '../devices/uart.ts';
import { Ne2000 } from '../devices/ne2000.ts';
import { ShareableBlockDevice, eduSpec, ideSpec, ne2000Spec, uartSpec } from '../machine/switchable.ts';
import { EDU, EduDevice } from '../devices/edu.ts';
import { Piix3Ide } from '../devices/ide/piix3-ide.ts';
import { MemoryBlockDevice } from '../devices/block-device.ts';

export interface Rig {
  t: TestBus;
  paths: DevicePaths;
  device: Device;
  /** What the device sent out (bytes, frames, a disk's or RAM's bytes at the end), in order. */
  out: string[];
  /** Anything else the trace should hold at the end (RAM the device wrote, its medium). */
  finish?: () => string[];
}

export interface Case {
  name: string;
  rig(): Rig;
  /** Steps a guest and the machine take; each returns what it read. */
  steps: ((r: Rig) => number[])[];
  /** Every port the device answers once the first step has run (for the random accesses). */
  ports: number[];
  /** Its registers in memory space, if any: [base, bytes] (for the random accesses). */
  mmio?: [number, number];
}

const MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);

export function uartRig(connect: DeviceModelConnector, log?: (message: string) => void): Rig {
  const t = createTestBus();
  const paths = new DevicePaths(t.bus, connect, log);
  const uart = new Uart16550A({ name: 'com1', port: 0x3f8, irq: 4 });
  paths.register(uart, uartSpec({ name: 'com1', port: 0x3f8, irq: 4 }));
  t.attach(uart);
  const out: string[] = [];
  uart.onTransmit = (b) => out.push(`${b}@${t.bus.clock.now()}`);
  return { t, paths, device: uart, out };
}

export const COM1 = 0x3f8;

function range(start: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => start + i);
}
const uartCase = (connect: DeviceModelConnector): Case => ({
  name: 'uart (com1)',
  rig: () => uartRig(connect),
  ports: range(COM1, 8),
  steps: [
    ({ t }) => {
      t.out8(COM1 + 3, 0x80);
      t.out8(COM1, 12); // 9600 baud: a character takes about 1 ms
      t.out8(COM1 + 1, 0);
      t.out8(COM1 + 3, 0x03);
      t.out8(COM1 + 2, 0xc7); // FIFO on, cleared, trigger at 14
      t.out8(COM1 + 4, 0x0b); // DTR, RTS, OUT2
      t.out8(COM1 + 1, 0x0f);
      return [t.in8(COM1 + 2), t.in8(COM1 + 5), t.in8(COM1 + 6)];
    },
    ({ t }) => {
      t.out8(COM1, 0x68);
      t.out8(COM1, 0x69);
      return [t.in8(COM1 + 5), t.in8(COM1 + 2)];
    },
    ({ t }) => {
      t.advance(5_000_000);
      return [t.in8(COM1 + 5), t.in8(COM1 + 2)];
    },
    ({ t, device }) => [(device as Uart16550A).receive([0x41, 0x42, 0x43]), t.in8(COM1 + 5), t.in8(COM1 + 2)],
    ({ t }) => {
      // Under the trigger level: only the character timeout (4 character times) tells the guest.
      t.advance(2_000_000);
      return [t.in8(COM1 + 2)];
    },
    ({ t }) => {
      t.advance(4_000_000);
      return [t.in8(COM1 + 2), t.irqLevel(4)];
    },
    ({ t }) => [t.in8(COM1), t.in8(COM1), t.in8(COM1 + 5), t.in8(COM1), t.in8(COM1 + 5), t.in8(COM1 + 2)],
    ({ t }) => {
      t.out8(COM1 + 7, 0x5a); // the scratch register: a buffered write on the emulated path
      t.out8(COM1 + 7, 0xa5);
      return [t.in8(COM1 + 7)];
    },
    ({ t }) => {
      t.out8(COM1 + 1, 0x00);
      t.out8(COM1 + 4, 0x1b); // loopback
      t.out8(COM1, 0x7e);
      t.advance(2_000_000);
      return [t.in8(COM1 + 5), t.in8(COM1), t.in8(COM1 + 6)];
    },
  ],
});

const BAR0 = 0xc100;
const PCI_IRQ = 11;
function ne2000Rig(connect: DeviceModelConnector, model: 'pci' | 'isa'): Rig {
  const t = createTestBus();
  const paths = new DevicePaths(t.bus, connect);
  const nic = model === 'pci' ? new Ne2000({ mac: MAC }) : new Ne2000({ mac: MAC, model: 'isa', isa: { port: 0x300, irq: 9 } });
  paths.register(nic, ne2000Spec(nic));
  if (model === 'pci') {
    t.plugPci(nic, 3);
    t.cfgWrite32(3, 0, 0x10, BAR0 | 1);
    t.cfgWrite(3, 0, 0x04, 2, 0x0001);
    t.pci.setPirq(2, PCI_IRQ);
  } else {
    t.attach(nic);
  }
  const out: string[] = [];
  nic.onTransmit = (f) => out.push(`${[...f].join(',')}@${t.bus.clock.now()}`);
  return { t, paths, device: nic, out };
}

/** A DP8390 driven as Linux's 8390.c does: open, one transmit, one frame received and read back. */
function ne2000Steps(io: number, irq: number): Case['steps'] {
  const CR = 0, PSTART = 1, PSTOP = 2, BNRY = 3, TPSR = 4, TBCR0 = 5, TBCR1 = 6, ISR = 7, RSAR0 = 8, RSAR1 = 9, RBCR0 = 10, RBCR1 = 11, RCR = 12, TCR = 13, DCR = 14, IMR = 15;
  const DATA = 0x10, RESET = 0x1f;
  const frame = new Uint8Array(64);
  frame.fill(0xff, 0, 6);
  frame.set(Uint8Array.of(2, 0, 0, 0, 0, 1), 6);
  for (let i = 12; i < 64; i++) frame[i] = i * 7;
  return [
    ({ t }) => {
      t.out8(io + RESET, t.in8(io + RESET));
      const isr = t.in8(io + ISR);
      t.out8(io + ISR, 0xff);
      t.out8(io + CR, 0x21);
      t.out8(io + DCR, 0x48);
      t.out8(io + RBCR0, 0);
      t.out8(io + RBCR1, 0);
      t.out8(io + RCR, 0x04);
      t.out8(io + TCR, 0x02);
      t.out8(io + TPSR, 0x40);
      t.out8(io + PSTART, 0x4c);
      t.out8(io + BNRY, 0x4c);
      t.out8(io + PSTOP, 0x80);
      t.out8(io + ISR, 0xff);
      t.out8(io + IMR, 0x3f);
      t.out8(io + CR, 0x61);
      for (let i = 0; i < 6; i++) t.out8(io + 1 + i, MAC[i]);
      t.out8(io + 7, 0x4d); // CURR
      t.out8(io + CR, 0x22);
      t.out8(io + TCR, 0x00);
      return [isr, t.in8(io + ISR), t.irqLevel(irq)];
    },
    ({ t }) => {
      t.out8(io + RSAR0, 0);
      t.out8(io + RSAR1, 0x40);
      t.out8(io + RBCR0, 60);
      t.out8(io + RBCR1, 0);
      t.out8(io + CR, 0x12);
      for (let i = 0; i < 60; i++) t.out8(io + DATA, (i * 3) & 0xff);
      t.out8(io + TBCR0, 60);
      t.out8(io + TBCR1, 0);
      t.out8(io + CR, 0x26);
      return [t.in8(io + ISR), t.irqLevel(irq)];
    },
    ({ t }) => {
      t.out8(io + ISR, 0x0a);
      return [t.in8(io + ISR), t.irqLevel(irq)];
    },
    ({ t, device }) => {
      (device as Ne2000).receive(frame);
      t.advance(1_000);
      return [t.in8(io + ISR), t.irqLevel(irq)];
    },
    ({ t }) => {
      t.out8(io + RSAR0, 0);
      t.out8(io + RSAR1, 0x4d);
      t.out8(io + RBCR0, 8);
      t.out8(io + RBCR1, 0);
      t.out8(io + CR, 0x0a);
      const got: number[] = [];
      for (let i = 0; i < 8; i++) got.push(t.in8(io + DATA));
      t.out8(io + CR, 0x62);
      got.push(t.in8(io + 7)); // CURR
      t.out8(io + CR, 0x22);
      t.out8(io + BNRY, 0x4d);
      t.out8(io + ISR, 0xff);
      t.advance(1_000);
      return [...got, t.in8(io + ISR), t.irqLevel(irq)];
    },
  ];
}

const BMIBA = 0xc000;

function ideRig(connect: DeviceModelConnector): Rig {
  const t = createTestBus({ ramBytes: 4 << 20 });
  const paths = new DevicePaths(t.bus, connect);
  const disk = new Uint8Array(512 * 256);
  for (let i = 0; i < disk.length; i++) disk[i] = (i * 13 + (i >> 9)) & 0xff;
  const cd = new Uint8Array(2048 * 16);
  for (let i = 0; i < cd.length; i++) cd[i] = (i * 5 + (i >> 11)) & 0xff;
  const media = { hda: new ShareableBlockDevice(new MemoryBlockDevice(disk)), cdrom: new ShareableBlockDevice(new MemoryBlockDevice(cd, true)) };
  const ide = new Piix3Ide(media);
  paths.register(ide, ideSpec(media));
  t.plugPci(ide, 1, 1);
  t.cfgWrite32(1, 1, 0x20, BMIBA | 1);
  t.cfgWrite(1, 1, 0x04, 2, 0x0005);
  const sum = (b: Uint8Array) => b.reduce((a, v, i) => (a * 31 + v + i) >>> 0, 0);
  const sector = new Uint8Array(512 * 8);
  return {
    t, paths, device: ide, out: [],
    finish: () => {
      media.hda.read(0, sector);
      return [`disk ${sum(sector)}`, `ram ${sum(t.ram.subarray(0x20000, 0x21000))}`];
    },
  };
}

/** SeaBIOS's and Linux's ata_piix's moves: decode through IDETIM, PIO read and write, bus-master DMA, an ATAPI read. */
const ideSteps: Case['steps'] = [
  ({ t }) => {
    const before = t.in8(0x1f7);
    t.cfgWrite(1, 1, 0x40, 2, 0x8000); // IDETIM: decode the primary channel (the device maps its ports)
    t.cfgWrite(1, 1, 0x42, 2, 0x8000);
    return [before, t.in8(0x1f7), t.cfgRead(1, 1, 0x40, 2), t.in8(0x177)];
  },
  ({ t }) => {
    t.out8(0x1f6, 0xe0);
    t.out8(0x1f2, 2);
    t.out8(0x1f3, 5);
    t.out8(0x1f4, 0);
    t.out8(0x1f5, 0);
    t.out8(0x1f7, 0x20); // READ SECTORS
    const got = [t.irqLevel(14), t.in8(0x1f7)];
    let x = 0;
    for (let i = 0; i < 256; i++) x = (x * 3 + t.in16(0x1f0)) >>> 0;
    got.push(x, t.irqLevel(14));
    return got;
  },
  ({ t }) => {
    let x = 0;
    for (let i = 0; i < 256; i++) x = (x * 3 + t.in16(0x1f0)) >>> 0;
    return [x, t.in8(0x1f7), t.irqLevel(14)];
  },
  ({ t }) => {
    t.out8(0x1f2, 1);
    t.out8(0x1f3, 1);
    t.out8(0x1f7, 0x30); // WRITE SECTORS
    for (let i = 0; i < 256; i++) t.out16(0x1f0, (i * 257) & 0xffff);
    return [t.irqLevel(14), t.in8(0x1f7)];
  },
  ({ t }) => {
    const prd = new DataView(t.ram.buffer, 0x1000, 8);
    prd.setUint32(0, 0x20000, true);
    prd.setUint32(4, 0x80000000 | 2048, true);
    t.out32(BMIBA + 4, 0x1000);
    t.out8(0x1f2, 4);
    t.out8(0x1f3, 0);
    t.out8(0x1f7, 0xc8); // READ DMA
    t.out8(BMIBA, 0x09);
    return [t.in8(BMIBA + 2), t.irqLevel(14), t.in8(0x1f7)];
  },
  ({ t }) => {
    t.out8(BMIBA + 2, 0x04);
    t.out8(BMIBA, 0x00);
    // ATAPI READ(10) of one 2 KiB sector of the CD by PIO.
    t.out8(0x176, 0xa0);
    t.out8(0x174, 0x00);
    t.out8(0x175, 0x08);
    t.out8(0x177, 0xa0);
    for (const w of [0x0028, 0x0000, 0x0300, 0x0000, 0x0001, 0x0000]) t.out16(0x170, w);
    const got = [t.irqLevel(15), t.in8(0x177)];
    let x = 0;
    for (let i = 0; i < 1024; i++) x = (x * 3 + t.in16(0x170)) >>> 0;
    got.push(x, t.in8(0x177), t.irqLevel(15));
    return got;
  },
  ({ t }) => {
    t.cfgWrite(1, 1, 0x40, 2, 0x0000); // decode off again
    return [t.in8(0x1f7), t.cfgRead(1, 1, 0x40, 2)];
  },
];

const EDU_BAR = 0xfe000000;

function eduRig(connect: DeviceModelConnector): Rig {
  const t = createTestBus({ ramBytes: 4 << 20 });
  const paths = new DevicePaths(t.bus, connect);
  const edu = new EduDevice();
  paths.register(edu, eduSpec());
  t.plugPci(edu, 4);
  t.cfgWrite32(4, 0, 0x10, EDU_BAR);
  t.cfgWrite(4, 0, 0x04, 2, 0x0006); // memory decode, bus master
  t.pci.setPirq(3, 10);
  for (let i = 0; i < 256; i++) t.ram[0x30000 + i] = (i * 7 + 3) & 0xff;
  const sum = (b: Uint8Array) => b.reduce((a, v, i) => (a * 31 + v + i) >>> 0, 0);
  return { t, paths, device: edu, out: [], finish: () => [`ram ${sum(t.ram.subarray(0x30000, 0x31000))}`] };
}

/** What QEMU's edu test driver does: identify, liveness, a factorial, an interrupt, DMA both ways (all MMIO). */
const eduSteps: Case['steps'] = [
  ({ t }) => {
    t.mmioWrite32(EDU_BAR + EDU.LIVENESS, 0x12345678);
    return [t.mmioRead32(EDU_BAR + EDU.ID), t.mmioRead32(EDU_BAR + EDU.LIVENESS), t.mmioRead8(EDU_BAR + EDU.ID)];
  },
  ({ t }) => {
    t.mmioWrite32(EDU_BAR + EDU.STATUS, 0x80); // interrupt when the factorial is done
    t.mmioWrite32(EDU_BAR + EDU.FACTORIAL, 10);
    return [t.mmioRead32(EDU_BAR + EDU.STATUS), t.irqLevel(10)];
  },
  ({ t }) => {
    t.advance(50_000);
    return [t.mmioRead32(EDU_BAR + EDU.FACTORIAL), t.mmioRead32(EDU_BAR + EDU.STATUS), t.mmioRead32(EDU_BAR + EDU.IRQ_STATUS), t.irqLevel(10)];
  },
  ({ t }) => {
    t.mmioWrite32(EDU_BAR + EDU.IRQ_ACK, 0xffffffff);
    t.mmioWrite32(EDU_BAR + EDU.DMA_SRC, 0x30000);
    t.mmioWrite32(EDU_BAR + EDU.DMA_DST, 0x40000);
    t.mmioWrite32(EDU_BAR + EDU.DMA_COUNT, 256);
    t.mmioWrite32(EDU_BAR + EDU.DMA_CMD, 0x05); // start, RAM to device, interrupt
    return [t.irqLevel(10), t.mmioRead32(EDU_BAR + EDU.DMA_CMD)];
  },
  ({ t }) => {
    t.advance(50_000);
    const got = [t.irqLevel(10), t.mmioRead32(EDU_BAR + EDU.IRQ_STATUS), t.mmioRead32(EDU_BAR + EDU.DMA_CMD)];
    t.mmioWrite32(EDU_BAR + EDU.IRQ_ACK, 0x100);
    t.mmioWrite32(EDU_BAR + EDU.DMA_SRC, 0x40000);
    t.mmioWrite32(EDU_BAR + EDU.DMA_DST, 0x30800);
    t.mmioWrite32(EDU_BAR + EDU.DMA_COUNT, 256);
    t.mmioWrite32(EDU_BAR + EDU.DMA_CMD, 0x07); // start, device to RAM, interrupt
    t.advance(50_000);
    got.push(t.irqLevel(10), t.mmioRead32(EDU_BAR + EDU.DMA_CMD), t.ram[0x30800], t.ram[0x308ff]);
    return got;
  },
];

export function pathCases(connect: DeviceModelConnector): Case[] {
  return [
    { name: 'edu (MMIO, timers, DMA)', rig: () => eduRig(connect), steps: eduSteps, ports: [], mmio: [EDU_BAR, 0x100] },
    { name: 'ide (PIIX3, ATA disk and ATAPI CD)', rig: () => ideRig(connect), steps: ideSteps, ports: [...range(0x1f0, 8), 0x3f6, ...range(0x170, 8), 0x376, ...range(BMIBA, 16)] },
    uartCase(connect),
    { name: 'ne2000 (RTL8029 on PCI)', rig: () => ne2000Rig(connect, 'pci'), steps: ne2000Steps(BAR0, PCI_IRQ), ports: range(BAR0, 0x20) },
    { name: 'ne2000 (ISA)', rig: () => ne2000Rig(connect, 'isa'), steps: ne2000Steps(0x300, 9), ports: range(0x300, 0x20) },
  ];
}

export type Plan = 'direct' | 'emulated' | 'switching';

/** Run `c`'s steps on one plan; the trace, the device's counters, and any failure. */
export function runCase(c: Case, plan: Plan) {
  const r = c.rig();
  const name = r.device.name;
  let path: DevicePath = plan === 'emulated' ? 'emulated' : 'direct';
  r.paths.switchNow(name, path);
  const reads: number[][] = [];
  for (const step of c.steps) {
    reads.push(step(r));
    if (plan === 'switching') {
      path = path === 'direct' ? 'emulated' : 'direct';
      r.paths.switchNow(name, path);
    }
  }
  const stats = r.t.stats(name);
  r.paths.switchNow(name, 'direct');
  return {
    trace: { reads, irqs: r.t.irqLog.map((e) => `${e.line}=${+e.level}@${e.atNs}`), out: [...r.out, ...(r.finish?.() ?? [])], state: r.device.saveState() },
    stats,
    failure: r.paths.failure,
  };
}

