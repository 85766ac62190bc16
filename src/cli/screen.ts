/**
 * The screen as the VGA shows it, for `--screen-hash`: one frame drawn by the page's own
 * renderer (devices/vga/renderer.ts) into RGBA pixels and hashed, so two runs can be
 * compared on what a user would see, text mode or a framebuffer console alike. The frame is
 * drawn at virtual time 0 of the blink cycle (the cursor and blinking text visible), so a
 * run that ends at another instant shows the same picture.
 */
import { createHash } from 'node:crypto';
import type { StdVga } from '../emulator/devices/vga/std-vga.ts';
import { MAX_HEIGHT, MAX_WIDTH, VgaRenderer, type FrameInfo } from '../emulator/devices/vga/renderer.ts';

export interface ScreenPicture {
  mode: FrameInfo['mode'];
  width: number;
  height: number;
  /** SHA-256 of the width x height RGBA pixels, row after row. */
  sha256: string;
}

export function screenPicture(vga: StdVga): ScreenPicture {
  const pixels = new Uint8ClampedArray(MAX_WIDTH * MAX_HEIGHT * 4);
  const info = new VgaRenderer(vga).render(pixels, 0);
  const shown = new Uint8Array(pixels.buffer, 0, info.width * info.height * 4);
  return { mode: info.mode, width: info.width, height: info.height, sha256: createHash('sha256').update(shown).digest('hex') };
}

/** The line `--screen-hash` prints: `screen MODE WxH sha256=HEX`. */
export function formatScreenPicture(p: ScreenPicture): string {
  return `screen ${p.mode} ${p.width}x${p.height} sha256=${p.sha256}`;
}
