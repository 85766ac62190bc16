import { describe, expect, it } from 'vitest';
import { pathSpans, rttPercentile, sortRows, type DeviceRow } from './DevicesPanel.tsx';

const row = (name: string, accessRate: number, extra: Partial<DeviceRow> = {}): DeviceRow => ({ name, totals: {}, rates: {}, accessRate, ...extra });

describe('the devices panel order', () => {
  it('ranks busiest first by the mean rate of the last seconds, not the last sample', () => {
    const rows = [row('pit', 5), row('uart', 900), row('vga', 0)];
    // uart had one burst just now; pit has been steady, vga busy until the last sample.
    const histories = new Map([
      ['pit', Array<number>(40).fill(500)],
      ['uart', [...Array<number>(39).fill(0), 900]],
      ['vga', [...Array<number>(39).fill(800), 0]],
    ]);
    expect(sortRows(rows, 'rate', histories).map((r) => r.name)).toEqual(['vga', 'pit', 'uart']);
  });

  it('sorts by name, PCI address or first IRQ, names breaking ties, without touching its input', () => {
    const rows = [row('uart', 0, { irq: [4] }), row('ide', 0, { pci: '00:01.1', irq: [14, 15] }), row('vga', 0, { pci: '00:02.0' }), row('pit', 0, { irq: [0] })];
    const names = (s: 'name' | 'pci' | 'irq') => sortRows(rows, s, new Map()).map((r) => r.name);
    expect(names('name')).toEqual(['ide', 'pit', 'uart', 'vga']);
    expect(names('pci')).toEqual(['ide', 'vga', 'pit', 'uart']);
    expect(names('irq')).toEqual(['pit', 'uart', 'ide', 'vga']);
    expect(rows.map((r) => r.name)).toEqual(['uart', 'ide', 'vga', 'pit']);
  });
});

describe('the round-trip line of a card', () => {
  it('reads the median and 99th percentile from the log2 histogram, capped by the slowest', () => {
    const totals: Record<string, number> = { rttMaxNs: 700_000 };
    for (let i = 0; i < 16; i++) totals[`rtt${i}`] = 0;
    expect(rttPercentile(totals, 0.5)).toBe(0);
    totals.rtt2 = 98; // 2-4 µs
    totals.rtt10 = 2; // 512 µs - 1 ms
    expect(rttPercentile(totals, 0.5)).toBe(4000);
    expect(rttPercentile(totals, 0.99)).toBe(700_000);
  });
});

describe('the path marks on a card\'s plot', () => {
  const mark = (at: number, path: 'direct' | 'emulated') => ({ name: 'ne2k', path, virtualNs: at * 1e6, at });

  it('splits the plotted stretch at each switch, the first stretch on the path the first switch left', () => {
    const marks = [mark(100, 'emulated'), mark(250, 'direct'), mark(300, 'emulated')];
    expect(pathSpans(marks, 0, 400, 'emulated')).toEqual([
      { from: 0, to: 100, path: 'direct' },
      { from: 100, to: 250, path: 'emulated' },
      { from: 250, to: 300, path: 'direct' },
      { from: 300, to: 400, path: 'emulated' },
    ]);
    // Switches before the plotted stretch set its path; those after it are not drawn.
    expect(pathSpans(marks, 260, 280, 'emulated')).toEqual([{ from: 260, to: 280, path: 'direct' }]);
    expect(pathSpans(marks, 0, 50, 'emulated')).toEqual([{ from: 0, to: 50, path: 'direct' }]);
  });

  it('without a switch, the whole stretch is on the device\'s path now', () => {
    expect(pathSpans([], 0, 10, 'direct')).toEqual([{ from: 0, to: 10, path: 'direct' }]);
    expect(pathSpans([], 0, 10, 'emulated')).toEqual([{ from: 0, to: 10, path: 'emulated' }]);
  });
});
