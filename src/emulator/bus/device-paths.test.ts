/**
 * The two paths of a device through the real bus (test-harness.ts): the same guest
 * accesses and machine calls, run with the device direct, emulated (its copy in the
 * device model, every access an ioreq) and switched to the other path between every
 * step, give the same answers, the same IRQ edges at the same virtual times, the same
 * bytes out, and the same final state. The device model runs in this thread here
 * (inThreadDeviceModel: the same protocol and the same DeviceModel class, without the
 * thread switch); device-model.test.ts runs it in a worker thread.
 */
import { describe, expect, it } from 'vitest';
import { createTestBus } from './test-harness.ts';
import { DevicePaths } from './device-paths.ts';
import { Uart16550A } from '../devices/uart.ts';
import { uartSpec } from '../machine/switchable.ts';
import { inThreadDeviceModel } from '../../worker/device-model.ts';
import { COM1, pathCases, runCase, uartRig } from './device-paths.cases.ts';
import { Ne2000 } from '../devices/ne2000.ts';
import { ne2000Spec } from '../machine/switchable.ts';
import { ns8390Open } from '../devices/ne2000.testing.ts';
import { xorshift32 } from '../testing/xorshift.ts';

const cases = pathCases(inThreadDeviceModel);

describe.each(cases)('$name on both paths', (c) => {
  it('answers, interrupts, sends and ends the same direct, emulated and switched at every step', () => {
    const direct = runCase(c, 'direct');
    const emulated = runCase(c, 'emulated');
    const switching = runCase(c, 'switching');
    expect(direct.trace.out.length).toBeGreaterThan(0);
    expect(direct.trace.irqs.length).toBeGreaterThan(0);
    expect(emulated.trace).toEqual(direct.trace);
    expect(switching.trace).toEqual(direct.trace);
    expect(emulated.failure).toBeNull();
    // Direct: no trap at all; emulated: every access a trap and a timed round trip.
    expect(direct.stats.traps).toBe(0);
    expect(direct.stats.directAccesses).toBeGreaterThan(0);
    expect(emulated.stats.directAccesses).toBe(0);
    // A buffered write is still a trap (the vCPU exits), only without the round trip.
    expect(emulated.stats.traps).toBe(direct.stats.directAccesses);
    expect(emulated.stats.rttMaxNs).toBeGreaterThan(0);
    expect(switching.stats.traps).toBeGreaterThan(0);
    expect(switching.stats.directAccesses).toBeGreaterThan(0);
    expect(switching.stats.pathSwitches).toBe(c.steps.length);
  });
});

describe('DevicePaths', () => {
  it('posts the UART scratch register through the buffered ring and drains it before the next answer', () => {
    const r = uartRig(inThreadDeviceModel);
    r.paths.switchNow('com1', 'emulated');
    r.t.out8(COM1 + 7, 0x11);
    r.t.out8(COM1 + 7, 0x22);
    expect(r.t.stats('com1').bufferedWrites).toBe(2);
    expect(r.t.in8(COM1 + 7)).toBe(0x22);
    const s = r.t.stats('com1');
    // Three traps, one round trip: the read (which found both writes drained before it).
    expect(s.traps).toBe(3);
    let roundTrips = 0;
    for (let i = 0; i < 16; i++) roundTrips += s[`rtt${i}` as keyof typeof s];
    expect(roundTrips).toBe(1);
  });

  it('lists each device with its path and counts', () => {
    const r = uartRig(inThreadDeviceModel);
    r.t.in8(COM1 + 5);
    r.paths.switchNow('com1', 'emulated');
    r.t.in8(COM1 + 5);
    r.t.in8(COM1 + 5);
    const [info] = r.paths.list();
    expect(info).toMatchObject({ name: 'com1', path: 'emulated', traps: 2, directAccesses: 1, failed: null });
    expect(info.rttMedianNs).toBeGreaterThan(0);
    expect(info.rttMaxNs).toBeGreaterThanOrEqual(info.rttMedianNs);
  });

  it('a switch requested while running waits for applyPending (the instruction boundary)', () => {
    const r = uartRig(inThreadDeviceModel);
    r.paths.request('com1', 'emulated');
    expect(r.paths.pathOf('com1')).toBe('direct');
    expect(r.paths.switchPending).toBe(true);
    expect(r.paths.applyPending()).toEqual([]);
    expect(r.paths.pathOf('com1')).toBe('emulated');
    expect(r.t.bus.stats.paths[r.t.bus.rowOf(r.device)]).toBe(2);
  });

  it('names unknown devices and a host without a device model in plain words', () => {
    const t = createTestBus();
    const paths = new DevicePaths(t.bus, undefined);
    const uart = new Uart16550A({ name: 'com2', port: 0x2f8, irq: 3 });
    paths.register(uart, uartSpec({ name: 'com2', port: 0x2f8, irq: 3 }));
    t.attach(uart);
    expect(() => paths.request('vga', 'emulated')).toThrow(/no switchable device 'vga' \(switchable: com2\)/);
    paths.request('com2', 'emulated');
    expect(paths.applyPending()).toEqual(['this host has no device-model worker: every device stays direct']);
    expect(paths.pathOf('com2')).toBe('direct');
    t.out8(0x2f8 + 7, 9);
    expect(t.in8(0x2f8 + 7)).toBe(9);
  });

  it('a device model that throws pauses the device, says which access, and switching to direct resumes it', () => {
    const r = uartRig(inThreadDeviceModel);
    const logs: string[] = [];
    const paths = new DevicePaths(r.t.bus, inThreadDeviceModel, (m) => logs.push(m));
    const uart = new Uart16550A({ name: 'com2', port: 0x2f8, irq: 3 });
    paths.register(uart, uartSpec({ name: 'com2', port: 0x2f8, irq: 3 }));
    r.t.attach(uart);
    let stops = 0;
    paths.onFailure = () => stops++;
    r.t.out8(0x2f8 + 7, 0x33);
    paths.switchNow('com2', 'emulated');
    r.t.out8(0x2f8 + 3, 0x03);
    paths.sabotage('com2', 'throw');
    expect(r.t.in8(0x2f8 + 3)).toBe(0xff);
    expect(stops).toBe(1);
    expect(paths.failure).toBe('the device model of com2 threw: com2: sabotaged for a test on a port read of 1 at offset 0x3; the machine is paused (switch com2 to direct to resume)');
    // Further accesses are not sent to a failed device model.
    expect(r.t.in8(0x2f8 + 7)).toBe(0xff);
    paths.switchNow('com2', 'direct');
    expect(paths.failure).toBeNull();
    expect(r.t.in8(0x2f8 + 3)).toBe(0x03);
    expect(r.t.in8(0x2f8 + 7)).toBe(0x33);
  });

  it("reads an emulated NIC's counters in the device model, where its frames are counted", () => {
    const t = createTestBus();
    const paths = new DevicePaths(t.bus, inThreadDeviceModel);
    const nic = new Ne2000({ mac: Uint8Array.of(2, 0, 0, 0, 0, 1), model: 'isa', isa: { port: 0x300, irq: 9 } });
    paths.register(nic, ne2000Spec(nic));
    t.attach(nic);
    paths.switchNow('ne2k', 'emulated');
    // The chip is stopped after power-on: a frame offered now is refused and counted there.
    nic.receive(new Uint8Array(60).fill(0xff));
    expect(nic.counters.dropStopped).toBe(1);
    expect(Object.getOwnPropertyDescriptor(nic, 'counters')).toBeDefined();
    paths.switchNow('ne2k', 'direct');
    expect(Object.getOwnPropertyDescriptor(nic, 'counters')).toBeUndefined();
    expect(nic.counters.dropStopped).toBe(1);
  });

  it('carries REP OUTS and REP INS as one ioreq each: the same bytes in the NIC as direct, one trap per run', () => {
    const IO = 0x300;
    const run = (path: 'direct' | 'emulated', sabotage = false) => {
      const t = createTestBus();
      const paths = new DevicePaths(t.bus, inThreadDeviceModel);
      const nic = new Ne2000({ mac: Uint8Array.of(2, 0, 0, 0, 0, 1), model: 'isa', isa: { port: IO, irq: 9 } });
      paths.register(nic, ne2000Spec(nic));
      t.attach(nic);
      ns8390Open(t, IO, Uint8Array.of(2, 0, 0, 0, 0, 1));
      paths.switchNow('ne2k', path);
      // Remote DMA (DP8390 datasheet, "Remote DMA"): 600 bytes written to the transmit
      // buffer through the data port as 300 words, then read back as 150 dwords.
      const remote = (cr: number, bytes: number) => {
        t.out8(IO + 0x0a, bytes & 0xff); // RBCR0/1
        t.out8(IO + 0x0b, bytes >> 8);
        t.out8(IO + 0x08, 0); // RSAR0/1: page 0x40
        t.out8(IO + 0x09, 0x40);
        t.out8(IO + 0x00, cr);
      };
      const out = Uint8Array.from({ length: 600 }, (_, i) => (i * 13 + 7) & 0xff);
      remote(0x12, 600);
      const trapsBefore = t.stats('ne2k').traps;
      expect(t.bus.io.outsString(IO + 0x10, 2, out, 300)).toBe(true);
      const outTraps = t.stats('ne2k').traps - trapsBefore;
      remote(0x0a, 600);
      if (sabotage) paths.sabotage('ne2k', 'throw');
      const back = new Uint8Array(600);
      expect(t.bus.io.insString(IO + 0x10, 2, back, 300)).toBe(true);
      return { back, out, outTraps, stats: t.stats('ne2k'), failure: paths.failure, isr: t.in8(IO + 0x07) };
    };
    const direct = run('direct');
    const emulated = run('emulated');
    expect(Array.from(direct.back)).toEqual(Array.from(direct.out));
    expect(Array.from(emulated.back)).toEqual(Array.from(direct.out));
    // Remote DMA complete (ISR.RDC) after both, on both paths.
    expect(emulated.isr & 0x40).toBe(0x40);
    expect(emulated.isr).toBe(direct.isr);
    expect(emulated.outTraps).toBe(1);
    expect(direct.outTraps).toBe(0);
    expect(emulated.stats.portReads).toBe(direct.stats.portReads);
    expect(emulated.stats.bytesWritten).toBe(direct.stats.bytesWritten);
    expect(direct.stats.directAccesses - emulated.stats.directAccesses).toBeGreaterThanOrEqual(600);
    const failed = run('emulated', true);
    expect(failed.failure).toContain('REP INS of 300 × 2 bytes at offset 0x10');
    expect(Array.from(failed.back).every((b) => b === 0xff)).toBe(true);
  });

  it('a machine snapshot and reboot reach the copy that runs: the same as direct', () => {
    const session = (path: 'direct' | 'emulated') => {
      const r = uartRig(inThreadDeviceModel);
      const uart = r.device as Uart16550A;
      r.paths.switchNow('com1', path);
      r.t.out8(COM1 + 2, 0xc1); // FIFO on, trigger at 14
      r.t.out8(COM1 + 1, 0x01); // receive interrupt on
      r.t.out8(COM1 + 4, 0x08); // OUT2
      uart.receive([0x61, 0x62]);
      r.t.advance(10_000_000); // the character timeout
      const seen = [r.t.irqLevel(4), r.t.in8(COM1 + 2), r.t.in8(COM1 + 5)];
      const saved = uart.saveState();
      uart.reset();
      seen.push(r.t.irqLevel(4), r.t.in8(COM1 + 5), r.t.in8(COM1 + 1));
      // As Machine.loadState does: the bus lets go of every line, then each device drives its own again.
      r.t.bus.releaseIrqLines();
      uart.loadState(saved);
      seen.push(r.t.irqLevel(4), r.t.in8(COM1 + 2), r.t.in8(COM1), r.t.in8(COM1), r.t.in8(COM1 + 5), r.t.irqLevel(4));
      return { seen, traps: r.t.stats('com1').traps };
    };
    const direct = session('direct');
    const emulated = session('emulated');
    expect(direct.seen.slice(0, 2)).toEqual([1, 0xcc]);
    expect(direct.seen.slice(6, 8)).toEqual([1, 0xcc]);
    expect(emulated.seen).toEqual(direct.seen);
    expect(emulated.traps).toBe(11); // the port accesses; save, reset and load are control requests, not traps
  });

  it.each(pathCases(inThreadDeviceModel).map((c) => [c.name, c] as const))('%s: a guest poking random registers gets the same answers on both paths', (_name, c) => {
    // Seeded accesses of every size to the device's ports after its session's setup; the
    // device model must answer (and refuse) exactly as the direct copy does, and never throw.
    const session = (path: 'direct' | 'emulated') => {
      const r = c.rig();
      r.paths.switchNow(r.device.name, path);
      c.steps[0](r);
      const list = c.ports;
      expect(list.every((p) => r.t.bus.io.claimed(p))).toBe(true);
      const [base, bytes] = c.mmio ?? [0, 0];
      expect(list.length + bytes).toBeGreaterThan(0);
      const rnd = xorshift32(0x12345678);
      const seen: number[] = [];
      for (let i = 0; i < 1500; i++) {
        if (i % 100 === 99) r.t.advance(100_000);
        const size = [1, 1, 1, 2, 4][rnd() % 5];
        const value = rnd();
        const read = (rnd() & 1) === 1;
        if (bytes > 0 && (list.length === 0 || rnd() & 1)) {
          const at = base + (rnd() % bytes);
          if (read) seen.push(size === 1 ? r.t.mmioRead8(at) : size === 2 ? r.t.mmioRead16(at) : r.t.mmioRead32(at));
          else if (size === 1) r.t.mmioWrite8(at, value & 0xff);
          else if (size === 2) r.t.mmioWrite16(at, value & 0xffff);
          else r.t.mmioWrite32(at, value);
          continue;
        }
        const port = list[rnd() % list.length];
        if (read) seen.push(size === 1 ? r.t.in8(port) : size === 2 ? r.t.in16(port) : r.t.in32(port));
        else if (size === 1) r.t.out8(port, value & 0xff);
        else if (size === 2) r.t.out16(port, value & 0xffff);
        else r.t.out32(port, value);
      }
      const failure = r.paths.failure;
      // The state of the copy that ran (saved in the device model when emulated), and after the way back.
      const state = r.device.saveState();
      r.paths.switchNow(r.device.name, 'direct');
      return { seen, irqs: r.t.irqLog.map((e) => `${e.line}=${+e.level}@${e.atNs}`), state, after: r.device.saveState(), out: r.out, failure };
    };
    const direct = session('direct');
    const emulated = session('emulated');
    expect(emulated.failure).toBeNull();
    expect(emulated).toEqual(direct);
  });
});
