/** The 8042 as SeaBIOS and Linux probe it (platform-facts.md "POST touches"). */
import { describe, expect, it } from 'vitest';
import { I8042 } from './ps2.ts';
import { PlatformBus } from '../bus/platform-bus.ts';

function setup() {
  const bus = new PlatformBus(1 << 20);
  const kbc = new I8042();
  bus.attach(kbc);
  const io = bus.io;
  const drain = () => {
    const out: number[] = [];
    while (io.in8(0x64) & 1) out.push(io.in8(0x60));
    return out;
  };
  return { bus, kbc, io, drain };
}

describe('I8042', () => {
  it('passes the controller and interface tests and resets the keyboard', () => {
    const { io, drain } = setup();
    io.out8(0x64, 0xaa);
    expect(drain()).toEqual([0x55]);
    io.out8(0x64, 0xab);
    expect(drain()).toEqual([0x00]);
    io.out8(0x60, 0xff);
    expect(drain()).toEqual([0xfa, 0xaa]);
    io.out8(0x60, 0xf5);
    io.out8(0x60, 0xf0);
    io.out8(0x60, 0x02);
    io.out8(0x60, 0xf4);
    expect(drain()).toEqual([0xfa, 0xfa, 0xfa, 0xfa]);
    io.out8(0x64, 0x60);
    io.out8(0x60, 0x61); // what SeaBIOS leaves: translate, system flag, keyboard IRQ
    io.out8(0x64, 0x20);
    expect(drain()).toEqual([0x61]);
    expect(io.in8(0x64) & 0x04).toBe(0); // the system flag follows command byte bit 2
  });

  it('raises IRQ1 for keyboard bytes and IRQ12 for mouse bytes, as enabled', () => {
    const { io, bus } = setup();
    io.out8(0x64, 0x60);
    io.out8(0x60, 0x03); // both interrupts on
    io.out8(0x64, 0xd4);
    io.out8(0x60, 0xf2); // mouse: identify
    expect(bus.irqLevels[12]).toBe(1);
    expect(io.in8(0x64) & 0x21).toBe(0x21);
    expect(io.in8(0x60)).toBe(0xfa);
    expect(io.in8(0x60)).toBe(0x00);
    expect(bus.irqLevels[12]).toBe(0);
    io.out8(0x60, 0xee); // keyboard echo
    expect(bus.irqLevels[1]).toBe(1);
    expect(io.in8(0x60)).toBe(0xee);
  });

  it('switches the mouse to IntelliMouse ID 3 after rates 200, 100, 80', () => {
    const { io, drain } = setup();
    for (const r of [200, 100, 80]) {
      io.out8(0x64, 0xd4); io.out8(0x60, 0xf3);
      io.out8(0x64, 0xd4); io.out8(0x60, r);
    }
    drain();
    io.out8(0x64, 0xd4);
    io.out8(0x60, 0xf2);
    expect(drain()).toEqual([0xfa, 0x03]);
  });

  it('drives A20 and reset from the output port', () => {
    const { io, kbc } = setup();
    const events: string[] = [];
    kbc.onA20 = (on) => events.push(`a20 ${on}`);
    kbc.onReset = () => events.push('reset');
    io.out8(0x64, 0xd1);
    io.out8(0x60, 0xdd); // A20 off
    io.out8(0x64, 0xd1);
    io.out8(0x60, 0xdf); // A20 on
    io.out8(0x64, 0xfe); // pulse reset
    expect(events).toEqual(['a20 false', 'a20 true', 'reset']);
  });
});
