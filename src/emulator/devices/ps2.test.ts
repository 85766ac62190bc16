/** The 8042 as SeaBIOS and Linux probe it (platform-facts.md "POST touches"). */
import { describe, expect, it } from 'vitest';
import { I8042, translateSet2 } from './ps2.ts';
import { PlatformBus } from '../bus/platform-bus.ts';
import { createTestBus } from '../bus/test-harness.ts';

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

  it('translates set 2 key codes to set 1 when the command byte asks for it', () => {
    const { io, kbc, drain, bus } = setup();
    io.out8(0x64, 0x60);
    io.out8(0x60, 0x61); // XLAT, system flag, keyboard IRQ: what SeaBIOS leaves for Linux
    kbc.keyboard([0x1c]); // A down
    expect(bus.irqLevels[1]).toBe(1);
    expect(drain()).toEqual([0x1e]);
    kbc.keyboard([0xf0, 0x1c]); // A up
    expect(drain()).toEqual([0x9e]);
    kbc.keyboard([0xe0, 0x75, 0xe0, 0xf0, 0x75]); // cursor up, down and up
    expect(drain()).toEqual([0xe0, 0x48, 0xe0, 0xc8]);
    // Pause: E1 14 77 E1 F0 14 F0 77 becomes E1 1D 45 E1 9D C5.
    kbc.keyboard([0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77]);
    expect(drain()).toEqual([0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5]);
    // The keyboard's answers are translated too: its ID AB 83 reads AB 41.
    io.out8(0x60, 0xf2);
    expect(drain()).toEqual([0xfa, 0xab, 0x41]);
  });

  it('maps the keys of a 102-key keyboard from set 2 to their set 1 codes', () => {
    // [set 2, set 1] of keys across the table: letters, digits, modifiers, function keys, keypad.
    const pairs = [
      [0x1c, 0x1e], [0x32, 0x30], [0x21, 0x2e], [0x23, 0x20], [0x24, 0x12], [0x2b, 0x21], [0x34, 0x22], [0x33, 0x23],
      [0x43, 0x17], [0x3b, 0x24], [0x42, 0x25], [0x4b, 0x26], [0x3a, 0x32], [0x31, 0x31], [0x44, 0x18], [0x4d, 0x19],
      [0x15, 0x10], [0x2d, 0x13], [0x1b, 0x1f], [0x2c, 0x14], [0x3c, 0x16], [0x2a, 0x2f], [0x1d, 0x11], [0x22, 0x2d],
      [0x35, 0x15], [0x1a, 0x2c], [0x16, 0x02], [0x1e, 0x03], [0x26, 0x04], [0x25, 0x05], [0x2e, 0x06], [0x36, 0x07],
      [0x3d, 0x08], [0x3e, 0x09], [0x46, 0x0a], [0x45, 0x0b], [0x4e, 0x0c], [0x55, 0x0d], [0x66, 0x0e], [0x0d, 0x0f],
      [0x54, 0x1a], [0x5b, 0x1b], [0x5a, 0x1c], [0x14, 0x1d], [0x4c, 0x27], [0x52, 0x28], [0x0e, 0x29], [0x12, 0x2a],
      [0x5d, 0x2b], [0x41, 0x33], [0x49, 0x34], [0x4a, 0x35], [0x59, 0x36], [0x7c, 0x37], [0x11, 0x38], [0x29, 0x39],
      [0x58, 0x3a], [0x05, 0x3b], [0x06, 0x3c], [0x04, 0x3d], [0x0c, 0x3e], [0x03, 0x3f], [0x0b, 0x40], [0x83, 0x41],
      [0x0a, 0x42], [0x01, 0x43], [0x09, 0x44], [0x77, 0x45], [0x7e, 0x46], [0x6c, 0x47], [0x75, 0x48], [0x7d, 0x49],
      [0x7b, 0x4a], [0x6b, 0x4b], [0x73, 0x4c], [0x74, 0x4d], [0x79, 0x4e], [0x69, 0x4f], [0x72, 0x50], [0x7a, 0x51],
      [0x70, 0x52], [0x71, 0x53], [0x61, 0x56], [0x78, 0x57], [0x07, 0x58], [0x76, 0x01], [0xe0, 0xe0], [0xe1, 0xe1],
    ];
    for (const [set2, set1] of pairs) expect(translateSet2(set2), `set 2 ${set2.toString(16)}`).toBe(set1);
  });

  it('passes set 2 through untranslated, drops keys while scanning is off, holds them while the keyboard is inhibited', () => {
    const { io, kbc, drain } = setup();
    io.out8(0x64, 0x60);
    io.out8(0x60, 0x01); // no XLAT
    kbc.keyboard([0xf0, 0x1c]);
    expect(drain()).toEqual([0xf0, 0x1c]);
    io.out8(0x60, 0xf5); // disable scanning
    drain();
    kbc.keyboard([0x1c]);
    expect(drain()).toEqual([]);
    io.out8(0x60, 0xf4);
    drain();
    io.out8(0x64, 0xad); // inhibit the keyboard
    kbc.keyboard([0x1c]);
    expect(drain()).toEqual([]);
    io.out8(0x64, 0xae);
    expect(drain()).toEqual([0x1c]);
  });

  it('sends set 1 codes itself when the guest selected set 1', () => {
    const { io, kbc, drain } = setup();
    io.out8(0x64, 0x60);
    io.out8(0x60, 0x01);
    io.out8(0x60, 0xf0);
    io.out8(0x60, 0x01);
    expect(drain()).toEqual([0xfa, 0xfa]);
    kbc.keyboard([0x5a, 0xf0, 0x5a]); // Enter down, up
    expect(drain()).toEqual([0x1c, 0x9c]);
  });

  it('reports mouse movements as stream packets once reporting is on, with the wheel for ID 3', () => {
    const { io, kbc, drain, bus } = setup();
    io.out8(0x64, 0x60);
    io.out8(0x60, 0x03);
    kbc.mouse(5, 5, 0);
    expect(drain()).toEqual([]); // reporting off after reset
    io.out8(0x64, 0xd4);
    io.out8(0x60, 0xf4);
    expect(drain()).toEqual([0xfa]);
    kbc.mouse(3, -2, 1);
    expect(bus.irqLevels[12]).toBe(1);
    expect(io.in8(0x64) & 0x20).toBe(0x20);
    expect(drain()).toEqual([0x09 | 0x20, 3, 0xfe]);
    kbc.mouse(-300, 0, 0);
    expect(drain()).toEqual([0x08 | 0x10 | 0x40, 0x01, 0]); // -255, X overflow
    for (const r of [200, 100, 80]) {
      io.out8(0x64, 0xd4); io.out8(0x60, 0xf3);
      io.out8(0x64, 0xd4); io.out8(0x60, r);
    }
    drain();
    kbc.mouse(0, 0, 4, -1);
    expect(drain()).toEqual([0x0c, 0, 0, 0xff]);
    io.out8(0x64, 0xa7); // auxiliary interface disabled
    kbc.mouse(1, 1, 0);
    expect(drain()).toEqual([]);
  });

  it('raises a new IRQ1 edge for each byte of a multi-byte answer (Get ID: FA AB 83)', () => {
    const t = createTestBus();
    const kbc = new I8042();
    t.attach(kbc);
    t.out8(0x64, 0x60);
    t.out8(0x60, 0x01); // keyboard interrupt on, no translation
    t.out8(0x60, 0xf2);
    const bytes: number[] = [];
    for (let i = 0; i < 3; i++) {
      expect(t.irqEdges(1)).toBe(i + 1);
      bytes.push(t.in8(0x60));
    }
    expect(bytes).toEqual([0xfa, 0xab, 0x83]);
    expect(t.irqLevel(1)).toBe(0);
  });
});
