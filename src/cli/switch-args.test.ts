/**
 * The command line of the switching run: --switch-every's period and names, refused in
 * plain words when malformed, and --screen-hash's picture of the screen.
 */
import { describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from './args.ts';
import { formatScreenPicture, screenPicture } from './screen.ts';
import { StdVga } from '../emulator/devices/vga/std-vga.ts';

describe('--switch-every and --screen-hash', () => {
  it('reads a period in ns, us, ms or s and the devices to switch', () => {
    expect(parseArgs(['--switch-every', '20ms=ne2k,ide,vga']).switchEvery).toEqual({ periodNs: 20e6, names: ['ne2k', 'ide', 'vga'] });
    expect(parseArgs(['--switch-every=1.5s=com1']).switchEvery).toEqual({ periodNs: 1.5e9, names: ['com1'] });
    expect(parseArgs(['--switch-every', '250us=vga']).switchEvery).toEqual({ periodNs: 250e3, names: ['vga'] });
    expect(parseArgs([]).switchEvery).toBeUndefined();
    expect(parseArgs(['--screen-hash']).screenHash).toBe(true);
  });

  it.each(['20=ne2k', '20ms', '20ms=', 'ms=ne2k', '0ms=ne2k', '20ms=ne2k,', '20min=ne2k', '-5ms=ne2k'])('refuses %s with the form it expects', (raw) => {
    expect(() => parseArgs(['--switch-every', raw])).toThrow(UsageError);
    expect(() => parseArgs(['--switch-every', raw])).toThrow(/expected PERIOD=NAME\[,NAME\.\.\.\] with a period in ns, us, ms or s/);
  });

  it('hashes the screen as drawn: a VGA just reset shows black, a text screen its characters', () => {
    const vga = new StdVga();
    const blank = screenPicture(vga);
    expect(formatScreenPicture(blank)).toMatch(/^screen blank 640x400 sha256=[0-9a-f]{64}$/);
    // Mode 3's registers, then one character: the picture changes with it.
    const s = vga.state;
    s.seq.set([0x03, 0x00, 0x03, 0x00, 0x02]);
    s.crtc.set([0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff]);
    s.gc.set([0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x00, 0xff]);
    s.ac.set([0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x0c, 0x00, 0x0f, 0x08, 0x00]);
    s.acIndex = 0x20;
    s.dac.set([0x3f, 0x3f, 0x3f], 7 * 3);
    vga.vram.fill(0xff, 2, 3); // a solid glyph row for character 0 in plane 2
    const text = screenPicture(vga);
    expect(text.mode).toBe('text');
    expect(`${text.width}x${text.height}`).toBe('720x400');
    vga.vram[0] = 0x00;
    vga.vram[1] = 0x07;
    const withAttr = screenPicture(vga);
    expect(withAttr.sha256).not.toBe(text.sha256);
    expect(screenPicture(vga).sha256).toBe(withAttr.sha256);
  });
});
