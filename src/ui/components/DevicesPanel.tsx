/**
 * One card per device on the bus, with its counters as totals and rates per second and a
 * small live plot of the access rate. The counters are read straight from the shared
 * statistics buffer the worker's bus writes (DESIGN.md seam 3) on the page's tick, four
 * times a second (tick.ts says why every panel shares it); a page without cross-origin
 * isolation gets copies from the worker at the same rate.
 *
 * On a two-core machine the page's own thread competes with the guest's worker, and this
 * panel is the page's largest cost there (Chrome traces of a tiny-linux boot, with every
 * panel on the tick: the frames that needed a layout took 1.35-1.5 s with it, 0.6-0.9 s
 * without it).
 */
import { memo, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { DevicePathName, DevicePathState, StatsShare } from '../../worker/protocol.ts';
import { usePage, type PathMark } from '../store.ts';
import { onTick, TICK_MS } from '../tick.ts';
import { SAMPLE_WEIGHT, TIMED_IN_FULL } from '../../emulator/bus/stats.ts';

/** How many samples (one per tick) each device's rate plot keeps: 30 seconds. */
const HISTORY = Math.round(30_000 / TICK_MS);
/**
 * "Busiest first" ranks by the mean rate over the last few seconds, not the last sample,
 * and the ranking is redone every few seconds, not on every tick: cards that swap places
 * four times a second cannot be read. Every move also costs the page's main thread: React
 * moves a card's whole subtree (its plot's canvas included) with insertBefore, which took
 * 0.46 s of a tiny-linux boot in a Chrome profile when the ranking was redone each tick.
 */
const RANK_SAMPLES = Math.round(5_000 / TICK_MS);
const RANK_EVERY = Math.round(3_000 / TICK_MS);

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
export function computeRows(layout: Pick<StatsShare, 'fields' | 'stride' | 'devices'>, now: Float64Array, prev: Float64Array | undefined, seconds: number): DeviceRow[] {
  const n = layout.stride;
  const accessFields = layout.fields.flatMap((f, i) => (/^(port|mmio)(Reads|Writes)$/.test(f) ? [i] : []));
  return layout.devices.map((d, di) => {
    const totals: Record<string, number> = {};
    const rates: Record<string, number> = {};
    let accessRate = 0;
    layout.fields.forEach((f, fi) => {
      const v = now[di * n + fi];
      totals[f] = v;
      const r = prev && seconds > 0 ? Math.max(0, (v - prev[di * n + fi]) / seconds) : 0;
      rates[f] = r;
      if (accessFields.includes(fi)) accessRate += r;
    });
    return { name: d.name, pci: d.pci, irq: d.irq, totals, rates, accessRate };
  });
}

/** Sample the counters on every tick while a machine is on: rows plus a rate history per device. */
interface Sampled {
  share: unknown;
  rows: DeviceRow[];
  histories: Map<string, number[]>;
  /** When each sample of the histories was taken (performance.now(), ms): the plots' x axis. */
  times: number[];
  /** Samples taken so far. */
  tick: number;
}

const NO_ROWS: Sampled = { share: null, rows: [], histories: new Map(), times: [], tick: 0 };

function useDeviceRows(): Sampled {
  const share = usePage((s) => s.share);
  const [state, setState] = useState<Sampled>(NO_ROWS);
  useEffect(() => {
    if (!share) return;
    const layout = share.stats;
    const size = layout.devices.length * layout.stride;
    const live = layout.buffer ? new Float64Array(layout.buffer, 0, size) : null;
    const histories = new Map<string, number[]>();
    let times: number[] = [];
    let prev: Float64Array | undefined;
    let prevAt = 0;
    let tick = 0;
    const sample = () => {
      const src = live ?? usePage.getState().statsCopy;
      if (!src) return;
      const now = src.slice(0, size);
      const at = performance.now();
      const rows = computeRows(layout, now, prev, (at - prevAt) / 1000);
      prev = now;
      prevAt = at;
      for (const r of rows) {
        const h = (histories.get(r.name) ?? []).concat(r.accessRate);
        histories.set(r.name, h.length > HISTORY ? h.slice(h.length - HISTORY) : h);
      }
      times = times.concat(at);
      if (times.length > HISTORY) times = times.slice(times.length - HISTORY);
      setState({ share, rows, histories: new Map(histories), times, tick: ++tick });
    };
    return onTick(sample);
  }, [share]);
  // Rows of an earlier machine are not shown for this one.
  return state.share === share && share ? state : NO_ROWS;
}

/** Plots are redrawn every PLOT_EVERY samples (2 Hz): cheaper than the numbers, and as readable. */
const PLOT_EVERY = 2;

/** A stretch of the plot's x axis (ms of the page's clock) a device spent on one path. */
export interface PathSpan {
  from: number;
  to: number;
  path: DevicePathName;
}

/**
 * The stretches of [x0, x1] a device spent on each path, from its switches (oldest first);
 * before its first switch it was on the path that switch left, or on `now` if it never switched.
 */
export function pathSpans(marks: readonly PathMark[], x0: number, x1: number, now: DevicePathName): PathSpan[] {
  const other = (p: DevicePathName): DevicePathName => (p === 'direct' ? 'emulated' : 'direct');
  let path: DevicePathName = marks.length ? other(marks[0].path) : now;
  let from = x0;
  const spans: PathSpan[] = [];
  for (const m of marks) {
    if (m.at > x1) break;
    if (m.at > from) spans.push({ from, to: m.at, path });
    from = Math.max(from, m.at);
    path = m.path;
  }
  if (x1 > from) spans.push({ from, to: x1, path });
  return spans;
}

const EMULATED_BAND = 'rgba(240,170,80,0.16)';
const MARK_COLOR = { emulated: '#f0aa50', direct: '#6fb6ff' } as const;

/**
 * The access rate over the last 30 s; stretches on the emulated path are shaded and each
 * switch is a vertical line (orange to emulated, blue to direct), drawn from `marks`.
 */
function RatePlot({ history, times, marks, path, label, due }: { history: number[]; times: number[]; marks: readonly PathMark[]; path: DevicePathName | null; label: string; due: number }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  /** What the draw hook marks: set before each redraw. */
  const marking = useRef<{ marks: readonly PathMark[]; path: DevicePathName | null }>({ marks: [], path: null });
  useEffect(() => {
    if (!el.current) return;
    const drawPaths = (u: uPlot) => {
      const { marks: ms, path: now } = marking.current;
      const xs = u.data[0];
      if (!now || xs.length < 2) return;
      const ctx = u.ctx;
      const { top, height } = u.bbox;
      const px = (ms: number) => u.valToPos(ms, 'x', true);
      ctx.save();
      for (const s of pathSpans(ms, xs[0], xs[xs.length - 1], now)) {
        if (s.path !== 'emulated') continue;
        ctx.fillStyle = EMULATED_BAND;
        ctx.fillRect(px(s.from), top, px(s.to) - px(s.from), height);
      }
      for (const m of ms) {
        if (m.at < xs[0] || m.at > xs[xs.length - 1]) continue;
        ctx.strokeStyle = MARK_COLOR[m.path];
        ctx.lineWidth = 1;
        ctx.beginPath();
        ctx.moveTo(Math.round(px(m.at)) + 0.5, top);
        ctx.lineTo(Math.round(px(m.at)) + 0.5, top + height);
        ctx.stroke();
      }
      ctx.restore();
    };
    plot.current = new uPlot(
      {
        width: 220,
        height: 50,
        legend: { show: false },
        cursor: { show: false },
        axes: [{ show: false }, { show: false }],
        scales: { x: { time: false } },
        series: [{}, { stroke: '#8fe0a3', width: 1, fill: 'rgba(143,224,163,0.15)' }],
        hooks: { drawClear: [drawPaths] },
      },
      [[], []],
      el.current,
    );
    return () => plot.current?.destroy();
  }, []);
  // A layout effect: the plot changes in the tick's own frame, not in a later one (tick.ts).
  useLayoutEffect(() => {
    marking.current = { marks, path };
    // The samples' times: a switch is drawn where it happened between two samples.
    plot.current?.setData([times.slice(times.length - history.length), history]);
    // Redrawn when `due` moves on (or a switch is to be marked); `history` is read as it is then.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [due, marks, path]);
  const shown = marks.filter((m) => times.length > 0 && m.at >= times[Math.max(0, times.length - history.length)]).length;
  return <div ref={el} className="rate-plot" role="img" aria-label={label} data-path-marks={shown} />;
}

function fmt(v: number): string {
  if (v >= 1e9) return (v / 1e9).toFixed(2) + 'G';
  if (v >= 1e6) return (v / 1e6).toFixed(2) + 'M';
  if (v >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

/** Counter names in words, for the table and screen readers. */
const FIELD_LABELS: Record<string, string> = {
  portReads: 'port reads', portWrites: 'port writes', mmioReads: 'MMIO reads', mmioWrites: 'MMIO writes',
  bytesRead: 'bytes read', bytesWritten: 'bytes written', traps: 'traps', dmaBytesRead: 'DMA bytes read',
  dmaBytesWritten: 'DMA bytes written', dmaFaults: 'DMA faults', irqs: 'IRQs raised', timeNs: 'time in device',
  configReads: 'config reads', configWrites: 'config writes',
  framesReceived: 'frames received', framesSent: 'frames sent', netBytesReceived: 'bytes received (network)', netBytesSent: 'bytes sent (network)',
  dropRingFull: 'dropped: ring full', dropStopped: 'dropped: receiver stopped', dropFiltered: 'dropped: address filter',
  dropMalformed: 'dropped: malformed', dropLink: 'dropped: link',
  directAccesses: 'direct accesses (no trap)', bufferedWrites: 'buffered writes', modelTimeNs: 'time in device model',
  pathSwitches: 'path switches', rttMaxNs: 'slowest round trip',
};

/** The round-trip histogram's columns (rtt0..rtt15): shown as one line of percentiles, not sixteen rows. */
const RTT_BUCKET = /^rtt\d+$/;

/**
 * The round trip under which a fraction `p` of a device's ioreqs were answered, from its
 * log2 histogram (stats.ts: rtt0 under 1 µs, rttN under 2^N µs), capped by the slowest seen;
 * in ns, 0 when there were none. The same reading as DeviceStats.rttPercentile.
 */
export function rttPercentile(totals: Record<string, number>, p: number): number {
  let total = 0;
  for (let i = 0; i < 16; i++) total += totals[`rtt${i}`] ?? 0;
  if (total === 0) return 0;
  let seen = 0;
  for (let i = 0; i < 16; i++) {
    seen += totals[`rtt${i}`] ?? 0;
    if (seen >= p * total) return Math.min(totals.rttMaxNs ?? Infinity, 1000 * 2 ** i);
  }
  return totals.rttMaxNs ?? 0;
}

/** What a counter's name alone does not say. */
const FIELD_NOTES: Record<string, string> = {
  dropRingFull: 'Frames refused because the guest did not drain its receive ring and the queue in front of it overflowed (ISR.OVW).',
  dropStopped: 'Frames that arrived while the receiver was off (CR.STP, or the ring registers unusable).',
  dropFiltered: 'Frames not for this NIC: another unicast address, or broadcast/multicast the guest did not accept (RCR).',
  dropMalformed: 'Frames too short or too long, received or asked to be sent.',
  dropLink: 'Frames lost on the link to the LAN: link down, a shaped link\'s loss, or a full port queue.',
  timeNs: `Host time spent in the device's handlers. A device's first ${TIMED_IN_FULL} traps, and every trap of a device whose handlers are slow, are timed; after that about one trap in ${SAMPLE_WEIGHT}, and the total is estimated from them (DeviceStats.trap).`,
};

function total(field: string, v: number): string {
  if (field === 'timeNs' || field === 'modelTimeNs') return `${(v / 1e6).toFixed(v < 1e7 ? 2 : 0)} ms`;
  if (field === 'rttMaxNs') return `${(v / 1000).toFixed(1)} µs`;
  return fmt(v);
}

function rate(field: string, r: number): string {
  // Time in the device per second of host time is a share of the CPU.
  if (field === 'timeNs' || field === 'modelTimeNs') return `${((r / 1e9) * 100).toFixed(1)}%`;
  if (field === 'rttMaxNs') return '';
  return `${fmt(r)}/s`;
}

/** The PCI bus's own row drives every ISA line its INTx links may be routed to: say so rather than list 16 IRQs. */
function irqText(r: DeviceRow): string {
  if (r.name === 'pci') return 'IRQs of the PCI INTx links';
  return `IRQ ${r.irq!.join(', ')}`;
}

type SortKey = 'rate' | 'name' | 'pci' | 'irq';

const NO_HISTORY: number[] = [];
const NO_MARKS: PathMark[] = [];

/** The cards in the order `sort` asks for ("rate": the mean access rate over the last RANK_SAMPLES samples). */
export function sortRows(list: DeviceRow[], sort: SortKey, histories: Map<string, number[]>): DeviceRow[] {
  const irqOf = (r: DeviceRow) => r.irq?.[0] ?? 99;
  const recent = new Map(list.map((r) => {
    const h = (histories.get(r.name) ?? NO_HISTORY).slice(-RANK_SAMPLES);
    return [r.name, h.reduce((s, v) => s + v, 0) / Math.max(1, h.length)];
  }));
  const recentRate = (r: DeviceRow) => recent.get(r.name) ?? 0;
  return [...list].sort((a, b) => {
    switch (sort) {
      case 'name': return a.name.localeCompare(b.name);
      case 'pci': return (a.pci ?? 'zz').localeCompare(b.pci ?? 'zz') || a.name.localeCompare(b.name);
      case 'irq': return irqOf(a) - irqOf(b) || a.name.localeCompare(b.name);
      case 'rate': return recentRate(b) - recentRate(a) || a.name.localeCompare(b.name);
    }
  });
}

interface CardProps {
  row: DeviceRow;
  history: number[];
  times: number[];
  /** Its path, when the device is switchable (issue 22). */
  path: DevicePathState | undefined;
  /** Its switches, oldest first. */
  marks: readonly PathMark[];
  /** Why this page cannot emulate, or null. */
  emulation: string | null;
  /** Advances when the plots are due for a redraw. */
  plotDue: number;
  showZero: boolean;
}

/**
 * Same card as last time: no counter moved, and its plot has nothing to scroll (every
 * sample in its window is zero) or is not due. Most devices are idle most of the time;
 * their cards are left as they are instead of being rendered again with equal values.
 */
function sameCard(a: CardProps, b: CardProps): boolean {
  if (a.showZero !== b.showZero || a.row.name !== b.row.name || a.path !== b.path || a.marks !== b.marks || a.emulation !== b.emulation) return false;
  if (a.plotDue !== b.plotDue && b.history.some((v) => v !== 0)) return false;
  for (const k in b.row.totals) {
    if (a.row.totals[k] !== b.row.totals[k] || a.row.rates[k] !== b.row.rates[k]) return false;
  }
  return true;
}

/** What each path means, for the card's title text. */
const PATH_NOTES: Record<DevicePathName, string> = {
  direct: 'Direct-assigned: the guest reaches the registers without a trap, its DMA fenced by the IOMMU (the default).',
  emulated: 'Emulated: every register access traps and is answered by the device model, in a worker of its own.',
};

/** The card's path line: which path, the switch, and a failure in words with the way out. */
function PathControl({ name, p, emulation }: { name: string; p: DevicePathState; emulation: string | null }) {
  const setDevicePath = usePage((s) => s.setDevicePath);
  const emulated = p.path === 'emulated';
  const to: DevicePathName = emulated ? 'direct' : 'emulated';
  const cannot = !emulated && emulation !== null;
  return (
    // Styled here: styles.css is shared with panels under way elsewhere.
    <div className="path" data-testid={`path-${name}`} data-path={p.path} style={{ display: 'flex', flexWrap: 'wrap', gap: '0.4rem', alignItems: 'baseline', marginBottom: '0.3rem' }}>
      <span title={PATH_NOTES[p.path]}>
        path: <strong data-testid={`path-now-${name}`}>{p.path}</strong>{emulated ? ' (traps to the device model)' : ' (the default, no trap)'}
      </span>
      <button
        type="button"
        role="switch"
        aria-checked={emulated}
        aria-label={`${name}: emulated path`}
        data-testid={`path-switch-${name}`}
        disabled={cannot || p.failed !== null}
        title={cannot ? emulation! : `Switch ${name} to the ${to} path at the next instruction boundary`}
        onClick={() => setDevicePath(name, to)}
      >
        {emulated ? 'emulated ●' : '○ direct'}
      </button>
      {p.note && <span className="path-note" data-testid={`path-note-${name}`} style={{ color: '#e0c080' }}>{p.note}</span>}
      {p.failed && (
        <div className="path-failed" role="alert" data-testid={`path-failed-${name}`} style={{ color: '#ff9d9d' }}>
          <p>{p.failed}. The machine is paused.</p>
          <button type="button" data-testid={`path-recover-${name}`} onClick={() => setDevicePath(name, 'direct', true)}>
            Switch {name} to direct and resume
          </button>
        </div>
      )}
    </div>
  );
}

const DeviceCard = memo(function DeviceCard({ row: r, history, times, path, marks, emulation, plotDue, showZero }: CardProps) {
  return (
    <article className="card" data-testid={`device-${r.name}`} aria-label={`Device ${r.name}`}>
      <header>
        <strong>{r.name}</strong>
        {r.pci && <span className="pci">PCI {r.pci}</span>}
        {r.irq && r.irq.length > 0 && <span className="irq">{irqText(r)}</span>}
        <span className="access-rate" data-testid={`rate-${r.name}`} data-value={r.accessRate}>{fmt(r.accessRate)} accesses/s</span>
      </header>
      {path && <PathControl name={r.name} p={path} emulation={emulation} />}
      <RatePlot
        history={history}
        times={times}
        marks={marks}
        path={path?.path ?? null}
        due={plotDue}
        label={`${r.name}: register accesses per second over the last 30 seconds, now ${fmt(r.accessRate)}${path ? `; on the ${path.path} path, emulated stretches shaded, switches marked` : ''}`}
      />
      <table>
        <tbody>
          {Object.entries(r.totals).filter(([k]) => !RTT_BUCKET.test(k)).map(([k, v]) => (
            <tr key={k} className={v === 0 && !showZero ? 'zero' : undefined}>
              <th scope="row" title={FIELD_NOTES[k]}>{FIELD_LABELS[k] ?? k}</th>
              <td data-testid={`stat-${r.name}-${k}`} data-value={v}>{total(k, v)}</td>
              <td className="rate" data-testid={`statrate-${r.name}-${k}`} data-value={r.rates[k]}>{rate(k, r.rates[k])}</td>
            </tr>
          ))}
          {rttPercentile(r.totals, 0.5) > 0 && (
            <tr>
              <th scope="row" title="Answered ioreqs to the device model: the round trip under which half and 99% of them fell (log2 histogram buckets).">round trip median / p99</th>
              <td data-testid={`stat-${r.name}-rtt`}>{(rttPercentile(r.totals, 0.5) / 1000).toFixed(0)} / {(rttPercentile(r.totals, 0.99) / 1000).toFixed(0)} µs</td>
              <td className="rate" />
            </tr>
          )}
        </tbody>
      </table>
    </article>
  );
}, sameCard);

export function DevicesPanel() {
  const { rows, histories, times, tick } = useDeviceRows();
  const paths = usePage((s) => s.paths);
  const emulation = usePage((s) => s.emulation);
  const pathMarks = usePage((s) => s.pathMarks);
  // Each device's switches, as arrays that change only when that device switched.
  const marksOf = useMemo(() => {
    const by = new Map<string, PathMark[]>();
    for (const m of pathMarks) by.set(m.name, [...(by.get(m.name) ?? []), m]);
    return by;
  }, [pathMarks]);
  const [filter, setFilter] = useState('');
  const [sort, setSort] = useState<SortKey>('rate');
  const [showZero, setShowZero] = useState(false);
  const filtered = useMemo(() => {
    const f = filter.trim().toLowerCase();
    return rows.filter((r) => !f || r.name.toLowerCase().includes(f) || (r.pci ?? '').includes(f) || (r.irq ?? []).some((i) => `irq ${i}` === f || String(i) === f));
  }, [rows, filter]);
  // The order (by name) changes with the sort, the filter or the set of devices, and for
  // "busiest first" once every RANK_EVERY ticks; the rows shown in it are the latest.
  const names = filtered.map((r) => r.name).join(',');
  const rankEpoch = sort === 'rate' ? Math.floor(tick / RANK_EVERY) : 0;
  const order = useMemo(
    () => sortRows(filtered, sort, histories).map((r) => r.name),
    // The rows and rates are read as they are when one of these changes.
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [names, sort, rankEpoch],
  );
  const shown = useMemo(() => {
    const byName = new Map(filtered.map((r) => [r.name, r]));
    return order.flatMap((n) => byName.get(n) ?? []);
  }, [filtered, order]);
  return (
    <section className="panel devices" aria-labelledby="devices-title">
      <div className="panel-head">
        <h2 id="devices-title">Devices</h2>
        <input type="search" placeholder="filter: name, 00:02.0, 4" value={filter} onChange={(e) => setFilter(e.target.value)} aria-label="Filter devices" />
        <select value={sort} onChange={(e) => setSort(e.target.value as SortKey)} aria-label="Sort devices">
          <option value="rate">busiest first</option>
          <option value="name">by name</option>
          <option value="pci">by PCI address</option>
          <option value="irq">by IRQ</option>
        </select>
        <label className="check">
          <input type="checkbox" checked={showZero} onChange={(e) => setShowZero(e.target.checked)} /> zero counters
        </label>
      </div>
      {rows.length === 0 && <p className="muted">Power the machine on to see its devices.</p>}
      <div className="cards">
        {shown.map((r) => (
          <DeviceCard
            key={r.name}
            row={r}
            history={histories.get(r.name) ?? NO_HISTORY}
            times={times}
            path={paths[r.name]}
            marks={marksOf.get(r.name) ?? NO_MARKS}
            emulation={emulation}
            plotDue={Math.floor(tick / PLOT_EVERY)}
            showZero={showZero}
          />
        ))}
      </div>
    </section>
  );
}

export { HISTORY as STATS_HISTORY };
