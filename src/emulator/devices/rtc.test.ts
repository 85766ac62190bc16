/** The MC146818 through ports 0x70/0x71 (the spirit of QEMU's rtc-test). */
import { describe, expect, it } from 'vitest';
import { Mc146818Rtc } from './rtc.ts';
import { PlatformBus } from '../bus/platform-bus.ts';

const START = Date.UTC(2026, 10, 23, 13, 45, 30); // 2026-11-23 13:45:30 UTC, a Monday

function setup() {
  const bus = new PlatformBus(1 << 20);
  const rtc = new Mc146818Rtc({ startMs: START });
  bus.attach(rtc);
  const read = (i: number) => { bus.io.out8(0x70, i); return bus.io.in8(0x71); };
  const write = (i: number, v: number) => { bus.io.out8(0x70, i); bus.io.out8(0x71, v); };
  return { bus, rtc, read, write, irq: () => bus.irqLevels[8] === 1 };
}

describe('Mc146818Rtc', () => {
  it('reads the date in BCD by default and in binary with DM set', () => {
    const { read, write, bus } = setup();
    expect([read(9), read(8), read(7), read(6), read(4), read(2), read(0)]).toEqual([0x26, 0x11, 0x23, 0x02, 0x13, 0x45, 0x30]);
    expect(read(0x32)).toBe(0); // century is set by fillCmos
    write(0x0b, 0x06); // binary, 24 h
    bus.clock.advanceTo(2.5e9);
    expect([read(4), read(2), read(0)]).toEqual([13, 45, 32]);
    write(0x0b, 0x04); // binary, 12 h: 1 PM
    expect(read(4)).toBe(0x80 | 1);
  });

  it('moves the clock when the guest sets the time', () => {
    const { read, write } = setup();
    write(0x0b, 0x82); // SET
    write(4, 0x08);
    write(2, 0x00);
    write(0x0b, 0x02);
    expect([read(4), read(2)]).toEqual([0x08, 0x00]);
  });

  it('raises IRQ8 at the periodic rate while C is read, and only when PIE is set', () => {
    const { bus, read, write, irq } = setup();
    write(0x0a, 0x26); // 1024 Hz
    expect(irq()).toBe(false);
    write(0x0b, 0x42); // PIE
    let count = 0;
    bus.irqSink = (line, level) => {
      if (line === 8 && level) {
        count++;
        read(0x0c); // acknowledge, as an interrupt handler does
      }
    };
    bus.clock.advanceTo(bus.clock.now() + 100e6); // 100 ms
    expect(count).toBeGreaterThanOrEqual(101);
    expect(count).toBeLessThanOrEqual(103);
  });

  it('sets UIP in the 244 µs before each update and UF after it', () => {
    const { bus, read } = setup();
    bus.clock.advanceTo(1e9 - 100_000);
    expect(read(0x0a) & 0x80).toBe(0x80);
    bus.clock.advanceTo(1e9 + 1000);
    expect(read(0x0a) & 0x80).toBe(0);
    expect(read(0x0c) & 0x10).toBe(0x10);
    expect(read(0x0c)).toBe(0); // reading C cleared it
    expect(read(0x0d)).toBe(0x80);
  });

  it('lays out the CMOS as SeaBIOS reads it', () => {
    const { rtc, read } = setup();
    rtc.fillCmos({ memoryBytes: 128 << 20, boot: 'dca', floppy: true, hardDisk: true });
    expect(read(0x10)).toBe(0x40);
    expect(read(0x15) | (read(0x16) << 8)).toBe(640);
    expect(read(0x34) | (read(0x35) << 8)).toBe((128 - 16) * 16);
    expect(read(0x3d)).toBe(0x23);
    expect(read(0x38)).toBe(0x11);
    expect(read(0x32)).toBe(0x20);
  });
});
