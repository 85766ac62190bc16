/**
 * Browser key events to what a PS/2 keyboard sends in scan code set 2 (the keyboard's
 * native set; the 8042 translates to set 1 when the guest asks, see devices/ps2.ts). Keys
 * are named by KeyboardEvent.code, which is the physical key whatever the host layout, so
 * the guest applies its own layout as on real hardware.
 */

/** One-byte set 2 make codes. */
const BASIC: Record<string, number> = {
  Escape: 0x76, F1: 0x05, F2: 0x06, F3: 0x04, F4: 0x0c, F5: 0x03, F6: 0x0b, F7: 0x83, F8: 0x0a, F9: 0x01, F10: 0x09, F11: 0x78, F12: 0x07,
  Backquote: 0x0e, Digit1: 0x16, Digit2: 0x1e, Digit3: 0x26, Digit4: 0x25, Digit5: 0x2e, Digit6: 0x36, Digit7: 0x3d, Digit8: 0x3e,
  Digit9: 0x46, Digit0: 0x45, Minus: 0x4e, Equal: 0x55, Backspace: 0x66,
  Tab: 0x0d, KeyQ: 0x15, KeyW: 0x1d, KeyE: 0x24, KeyR: 0x2d, KeyT: 0x2c, KeyY: 0x35, KeyU: 0x3c, KeyI: 0x43, KeyO: 0x44, KeyP: 0x4d,
  BracketLeft: 0x54, BracketRight: 0x5b, Backslash: 0x5d,
  CapsLock: 0x58, KeyA: 0x1c, KeyS: 0x1b, KeyD: 0x23, KeyF: 0x2b, KeyG: 0x34, KeyH: 0x33, KeyJ: 0x3b, KeyK: 0x42, KeyL: 0x4b,
  Semicolon: 0x4c, Quote: 0x52, Enter: 0x5a,
  ShiftLeft: 0x12, IntlBackslash: 0x61, KeyZ: 0x1a, KeyX: 0x22, KeyC: 0x21, KeyV: 0x2a, KeyB: 0x32, KeyN: 0x31, KeyM: 0x3a,
  Comma: 0x41, Period: 0x49, Slash: 0x4a, ShiftRight: 0x59, IntlRo: 0x51, IntlYen: 0x6a,
  ControlLeft: 0x14, AltLeft: 0x11, Space: 0x29,
  NumLock: 0x77, NumpadMultiply: 0x7c, NumpadSubtract: 0x7b, NumpadAdd: 0x79, NumpadDecimal: 0x71,
  Numpad0: 0x70, Numpad1: 0x69, Numpad2: 0x72, Numpad3: 0x7a, Numpad4: 0x6b, Numpad5: 0x73, Numpad6: 0x74, Numpad7: 0x6c,
  Numpad8: 0x75, Numpad9: 0x7d, ScrollLock: 0x7e,
};

/** Keys of the 101-key extension: E0-prefixed. */
const EXTENDED: Record<string, number> = {
  ControlRight: 0x14, AltRight: 0x11, MetaLeft: 0x1f, MetaRight: 0x27, ContextMenu: 0x2f,
  NumpadEnter: 0x5a, NumpadDivide: 0x4a,
  Insert: 0x70, Delete: 0x71, Home: 0x6c, End: 0x69, PageUp: 0x7d, PageDown: 0x7a,
  ArrowUp: 0x75, ArrowDown: 0x72, ArrowLeft: 0x6b, ArrowRight: 0x74,
};

/** Set 2 bytes for pressing (down = true) or releasing the key `code`; empty for keys a PC keyboard lacks. */
export function set2Scancodes(code: string, down: boolean): number[] {
  const basic = BASIC[code];
  if (basic !== undefined) return down ? [basic] : [0xf0, basic];
  const ext = EXTENDED[code];
  if (ext !== undefined) return down ? [0xe0, ext] : [0xe0, 0xf0, ext];
  // Print Screen is sent as a fake left Shift plus E0 7C; Pause has a make code only.
  if (code === 'PrintScreen') return down ? [0xe0, 0x12, 0xe0, 0x7c] : [0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12];
  if (code === 'Pause') return down ? [0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77] : [];
  return [];
}
