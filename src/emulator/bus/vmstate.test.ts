import { describe, expect, it } from 'vitest';
import {
  array, bool, bytes, deadline, dwords, int, nullable, oneOf, record, since, str, u16, u8, vmstate, words, STAMP_NAME, STAMP_VERSION,
} from './vmstate.ts';

const FIFO = vmstate('fifo-dev', 2, {
  lsr: u8,
  mode: oneOf('idle', 'busy'),
  rx: array(u8, 0, 4),
  ram: bytes(8),
  taps: words(2),
  at: deadline,
  chan: array(record({ addr: u16, on: bool }), 2),
  label: str,
  added: since(2, int(-1, 7), -1),
  maybe: nullable(dwords(1)),
  inner: nullable(record({ n: u8 })),
}, { minVersion: 1 });

function sample() {
  return {
    lsr: 0x60, mode: 'busy' as const, rx: [1, 2], ram: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), taps: new Uint16Array([0xffff, 1]),
    at: 12345, chan: [{ addr: 1, on: true }, { addr: 0xffff, on: false }], label: 'x', added: 3, maybe: null, inner: { n: 1 },
  };
}

describe('vmstate', () => {
  it('stamps a saved state with the schema name and version and copies every array', () => {
    const s = sample();
    const saved = FIFO.save(s);
    expect(saved[STAMP_NAME]).toBe('fifo-dev');
    expect(saved[STAMP_VERSION]).toBe(2);
    expect(saved.ram).not.toBe(s.ram);
    expect(saved.rx).not.toBe(s.rx);
    expect((saved.chan as unknown[])[0]).not.toBe(s.chan[0]);
    s.ram[0] = 99;
    s.chan[0].addr = 7;
    expect((saved.ram as Uint8Array)[0]).toBe(1);
    expect((saved.chan as { addr: number }[])[0].addr).toBe(1);
    // A saved state crosses a worker boundary as it is.
    expect(structuredClone(saved)).toEqual(saved);
  });

  it('load returns a deep copy that saves back identically', () => {
    const saved = FIFO.save(sample());
    const loaded = FIFO.load(saved, 'dev0');
    expect(loaded.ram).not.toBe(saved.ram);
    expect(FIFO.save(loaded)).toEqual(saved);
  });

  it.each([
    ['lsr', 'x', `fifo-dev dev0: state field 'lsr' must be a number 0..255, got "x"`],
    ['lsr', 256, `state field 'lsr' must be a number 0..255, got 256`],
    ['lsr', 1.5, `state field 'lsr' must be a number 0..255, got 1.5`],
    ['mode', 'off', `state field 'mode' must be one of "idle", "busy", got "off"`],
    ['rx', [1, 2, 3, 4, 5], `state field 'rx' must be an array of 0..4 items, got an array of 5`],
    ['rx', [1, -1], `state field 'rx[1]' must be a number 0..255, got -1`],
    ['ram', new Uint8Array(7), `state field 'ram' must be a Uint8Array(8), got a Uint8Array(7)`],
    ['taps', new Uint8Array(2), `state field 'taps' must be a Uint16Array(2), got a Uint8Array(2)`],
    ['at', -5, `state field 'at' must be a finite number >= 0 or null, got -5`],
    ['at', Infinity, `state field 'at' must be a finite number >= 0 or null, got Infinity`],
    ['chan', [{ addr: 1, on: true }, { addr: 2, on: 'yes' }], `state field 'chan[1].on' must be a boolean, got "yes"`],
    ['chan', [{ addr: 1, on: true }, { addr: 2 }], `state field 'chan[1].on' is missing`],
    ['chan', [{ addr: 1, on: true }, { addr: 2, on: true, extra: 1 }], `state field 'chan[1].extra' is not part of the state`],
    ['label', 3, `state field 'label' must be a string, got 3`],
    ['added', 8, `state field 'added' must be a number -1..7, got 8`],
    ['maybe', [1], `state field 'maybe' must be a Uint32Array(1) or null, got an array of 1`],
    ['inner', { n: 'x' }, `state field 'inner.n' must be a number 0..255, got "x"`],
    ['inner', 5, `state field 'inner' must be a record or null, got 5`],
  ])('refuses %s = %o with a message naming the device and the field', (field, value, message) => {
    const saved = { ...FIFO.save(sample()), [field]: value };
    expect(() => FIFO.load(saved, 'dev0')).toThrow(message);
    expect(FIFO.validate(saved, 'dev0')).toContain(`fifo-dev dev0: `);
  });

  it('refuses a missing field, an unknown field, another schema and versions out of range', () => {
    const good = FIFO.save(sample());
    const { lsr: _lsr, ...noLsr } = good;
    expect(() => FIFO.load(noLsr, 'd')).toThrow(`fifo-dev d: state field 'lsr' is missing`);
    expect(() => FIFO.load({ ...good, bogus: 1 }, 'd')).toThrow(`state field 'bogus' is not part of the state`);
    expect(() => FIFO.load({ ...good, [STAMP_NAME]: 'pit' }, 'd')).toThrow(`fifo-dev d: not a fifo-dev state (stamped "pit")`);
    expect(() => FIFO.load({ ...good, [STAMP_VERSION]: 3 }, 'd')).toThrow(`state version 3 is newer than this build's 2`);
    expect(() => FIFO.load({ ...good, [STAMP_VERSION]: 0 }, 'd')).toThrow(`state version 0 is older than the oldest loadable, 1`);
    expect(() => FIFO.load({ ...good, [STAMP_VERSION]: '2' }, 'd')).toThrow(`state version must be an integer, got "2"`);
    expect(() => FIFO.load(null, 'd')).toThrow(`fifo-dev d: state must be a record, got null`);
    expect(() => FIFO.load([], 'd')).toThrow(`state must be a record, got an array of 0`);
  });

  it('loads an older version without the fields added since, with their fallback', () => {
    const v1: Record<string, unknown> = { ...FIFO.save(sample()), [STAMP_VERSION]: 1 };
    delete v1.added;
    expect(FIFO.load(v1, 'd').added).toBe(-1);
    // The same field missing from a version-2 state is an error.
    expect(() => FIFO.load({ ...v1, [STAMP_VERSION]: 2 }, 'd')).toThrow(`state field 'added' is missing`);
  });

  it('does not modify the saved state it refuses or loads', () => {
    const saved = FIFO.save(sample());
    const before = structuredClone(saved);
    FIFO.load(saved, 'd');
    expect(() => FIFO.load({ ...saved, chan: [{ addr: 1, on: true }] }, 'd')).toThrow();
    expect(saved).toEqual(before);
  });

  it('reserves the stamp keys', () => {
    expect(() => vmstate('bad', 1, { [STAMP_VERSION]: u8 })).toThrow(/reserved/);
  });
});
