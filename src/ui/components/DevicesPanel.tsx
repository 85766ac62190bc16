/**
 * One card per device on the bus, with its counters as totals and rates per second and a
 * small live plot of the access rate. The counters are read straight from the shared
 * statistics buffer the worker's bus writes (DESIGN.md seam 3), ten times a second.
 */
import { useEffect, useMemo, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { StatsLayout } from '../../worker/protocol.ts';

/** How many samples (at 10 Hz) each device's rate plot keeps: 30 seconds. */
const HISTORY = 300;

export interface DeviceRow {
  name: string;
  pci?: string;
  irq?: number[];
  totals: Record<string, number>;
  rates: Record<string, number>;
  /** Register accesses per second (ports and MMIO, reads and writes). */
  accessRate: number;
}

/** Turn two snapshots of the counters into per-device totals and rates. */
export function computeRows(layout: StatsLayout, now: Float64Array, prev: Float64Array | undefined, seconds: number): DeviceRow[] {
  const n = layout.fields.length;
  const accessFields = layout.fields
    .map((f, i) => [f, i] as const)
    .filter(([f]) => /^(port|mmio)(Reads|Writes)$/.test(f))
    .map(([, i]) => i);
  return layout.devices.map((d, di) => {
    const totals: Record<string, number> = {};
    const rates: Record<string, number> = {};
    let accessRate = 0;
    layout.fields.forEach((f, fi) => {
      const v = now[di * n + fi];
      totals[f] = v;
      const r = prev && seconds > 0 ? (v - prev[di * n + fi]) / seconds : 0;
      rates[f] = r;
      if (accessFields.includes(fi)) accessRate += r;
    });
    return { name: d.name, pci: d.pci, irq: d.irq, totals, rates, accessRate };
  });
}

function RatePlot({ history }: { history: number[] }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    if (!el.current) return;
    plot.current = new uPlot(
      {
        width: 220,
        height: 50,
        legend: { show: false },
        cursor: { show: false },
        axes: [{ show: false }, { show: false }],
        scales: { x: { time: false } },
        series: [{}, { stroke: '#8fe0a3', width: 1, fill: 'rgba(143,224,163,0.15)' }],
      },
      [[], []],
      el.current,
    );
    return () => plot.current?.destroy();
  }, []);
  useEffect(() => {
    plot.current?.setData([history.map((_, i) => i), history]);
  }, [history]);
  return <div ref={el} className="rate-plot" aria-hidden="true" />;
}

function fmt(v: number): string {
  if (v >= 1e9) return (v / 1e9).toFixed(2) + 'G';
  if (v >= 1e6) return (v / 1e6).toFixed(2) + 'M';
  if (v >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

type SortKey = 'name' | 'rate';

export function DevicesPanel({ rows, histories }: { rows: DeviceRow[]; histories: Map<string, number[]> }) {
  const [filter, setFilter] = useState('');
  const [sort, setSort] = useState<SortKey>('rate');
  const shown = useMemo(() => {
    const f = filter.trim().toLowerCase();
    const list = rows.filter((r) => !f || r.name.toLowerCase().includes(f) || (r.pci ?? '').includes(f));
    return list.sort((a, b) => (sort === 'name' ? a.name.localeCompare(b.name) : b.accessRate - a.accessRate));
  }, [rows, filter, sort]);
  return (
    <section className="panel devices" aria-labelledby="devices-title">
      <div className="panel-head">
        <h2 id="devices-title">Devices</h2>
        <input type="search" placeholder="filter" value={filter} onChange={(e) => setFilter(e.target.value)} aria-label="Filter devices" />
        <select value={sort} onChange={(e) => setSort(e.target.value as SortKey)} aria-label="Sort devices">
          <option value="rate">busiest first</option>
          <option value="name">by name</option>
        </select>
      </div>
      <div className="cards">
        {shown.map((r) => (
          <article key={r.name} className="card" data-testid={`device-${r.name}`} aria-label={`Device ${r.name}`}>
            <header>
              <strong>{r.name}</strong>
              {r.pci && <span className="pci">PCI {r.pci}</span>}
              {r.irq && r.irq.length > 0 && <span className="irq">IRQ {r.irq.join(', ')}</span>}
            </header>
            <RatePlot history={histories.get(r.name) ?? []} />
            <table>
              <tbody>
                {Object.entries(r.totals).map(([k, v]) => (
                  <tr key={k}>
                    <th scope="row">{k}</th>
                    <td data-testid={`stat-${r.name}-${k}`} data-value={v}>{fmt(v)}</td>
                    <td className="rate">{fmt(Math.max(0, r.rates[k]))}/s</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </article>
        ))}
      </div>
    </section>
  );
}

export { HISTORY as STATS_HISTORY };
