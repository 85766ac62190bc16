/**
 * The network panel (issue 24): where the machine's LAN leads (the uplink setting, kept in
 * the browser and taken at power-on), the uplink's state and what it said in words, each
 * switch port's counters with a rate plot of the guest's NIC, the router's leases, a live
 * packet list decoded like tcpdump's one-line output with a filter, and the capture as a
 * pcap download. It asks the worker for news twice a second on the page's tick and
 * re-renders only then (network-data.ts keeps the packets out of React state).
 */
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { client } from '../machine-client.ts';
import { usePage } from '../store.ts';
import { onTick } from '../tick.ts';
import { networkData, type PacketLine } from '../network-data.ts';
import { uplinkProblem, useNetworkSettings } from '../network-settings.ts';
import { compileFilter } from '../../emulator/net/summary.ts';
import type { NetworkView, UplinkKind } from '../../worker/network-protocol.ts';

/** Lines the list shows (the newest that match the filter). */
const SHOWN = 200;
/** The worker is asked every this many ticks (tick.ts: 250 ms). */
const ASK_EVERY = 2;

const KINDS: { kind: UplinkKind; label: string; note: string }[] = [
  { kind: 'router', label: 'the router only', note: 'DHCP, DNS from its own table, pings to 10.0.2.2; nothing leaves the page.' },
  { kind: 'fetch', label: 'HTTP through fetch', note: "A guest's HTTP on port 80 is replayed with the browser's fetch; 10.0.2.2 is this page's own origin. Other hosts only where CORS allows." },
  { kind: 'wisp', label: 'Wisp server', note: 'Any TCP and UDP through a Wisp server (v1 or v2); HTTP to 10.0.2.2 still goes through fetch.' },
  { kind: 'relay', label: 'WebSocket relay', note: 'The LAN joins a relay carrying one Ethernet frame per message (websockproxy, v86, JSLinux).' },
  { kind: 'tab-lan', label: 'tab LAN', note: "The LAN joins this browser's other tabs (and machines) on a BroadcastChannel; the first tab's router serves them all." },
  { kind: 'none', label: 'no network card', note: "No NIC at all (QEMU's -nic none)." },
];

function fmt(v: number): string {
  if (v >= 1e9) return (v / 1e9).toFixed(2) + 'G';
  if (v >= 1e6) return (v / 1e6).toFixed(2) + 'M';
  if (v >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

function UplinkSettings({ locked }: { locked: boolean }) {
  const s = useNetworkSettings();
  const problem = uplinkProblem(s);
  const note = KINDS.find((k) => k.kind === s.kind)?.note;
  return (
    <div className="uplink-settings" style={{ display: 'grid', gap: '0.3rem', marginBottom: '0.6rem' }}>
      <div style={{ display: 'flex', flexWrap: 'wrap', gap: '0.6rem', alignItems: 'center' }}>
        <label>
          Uplink{' '}
          <select value={s.kind} disabled={locked} onChange={(e) => s.setKind(e.target.value as UplinkKind)} data-testid="uplink-kind">
            {KINDS.map((k) => <option key={k.kind} value={k.kind}>{k.label}</option>)}
          </select>
        </label>
        {s.kind === 'wisp' && (
          <label>
            server <input type="url" value={s.wispUrl} disabled={locked} onChange={(e) => s.setWispUrl(e.target.value)} placeholder="wss://example.org/wisp/" size={32} data-testid="uplink-url" />
          </label>
        )}
        {s.kind === 'relay' && (
          <label>
            relay <input type="url" value={s.relayUrl} disabled={locked} onChange={(e) => s.setRelayUrl(e.target.value)} placeholder="wss://relay.example.org/" size={32} data-testid="uplink-url" />
          </label>
        )}
        {s.kind === 'tab-lan' && (
          <label>
            channel <input type="text" value={s.channel} disabled={locked} onChange={(e) => s.setChannel(e.target.value)} size={16} data-testid="uplink-channel" />
          </label>
        )}
      </div>
      <span className="muted" style={{ fontSize: '0.8rem' }}>
        {note} {locked ? 'Applies at the next power-on.' : ''}
      </span>
      {problem && <span className="error" data-testid="uplink-problem">{problem}</span>}
    </div>
  );
}

function PortRatePlot({ port, due }: { port: string; due: number }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    if (!el.current) return;
    plot.current = new uPlot(
      {
        width: 320,
        height: 70,
        legend: { show: false },
        cursor: { show: false },
        axes: [{ show: false }, { show: true, size: 44, stroke: '#7d8893', values: (_u, vals) => vals.map((v) => `${fmt(v)}B/s`) }],
        scales: { x: { time: false } },
        series: [{}, { stroke: '#8fe0a3', width: 1, fill: 'rgba(143,224,163,0.15)' }, { stroke: '#7ab8ff', width: 1 }],
      },
      [[], [], []],
      el.current,
    );
    return () => plot.current?.destroy();
  }, []);
  useLayoutEffect(() => {
    const r = networkData.rates.get(port);
    if (r) plot.current?.setData([r.t.map((_, i) => i), r.rx, r.tx]);
  }, [port, due]);
  return <div ref={el} role="img" aria-label={`bytes per second through ${port}: received (green) and sent (blue)`} />;
}

function PortsTable({ view }: { view: NetworkView }) {
  return (
    <table className="pci-table" data-testid="net-ports">
      <thead>
        <tr><th>port</th><th>frames in / out</th><th>bytes in / out</th><th>dropped</th></tr>
      </thead>
      <tbody>
        {view.ports.map((p) => {
          const drops = [['link down', p.dropLinkDown], ['loss', p.dropLoss], ['queue full', p.dropQueueFull], ['malformed', p.dropMalformed]] as const;
          const dropText = drops.filter(([, v]) => v > 0).map(([k, v]) => `${fmt(v)} ${k}`).join(', ') || '0';
          return (
            <tr key={`${p.lan}/${p.name}`} data-testid={`net-port-${p.name}`}>
              <td><code>{p.name}</code>{p.linkUp ? '' : ' (link down)'}</td>
              <td data-frames-in={p.framesIn} data-frames-out={p.framesOut}>{fmt(p.framesIn)} / {fmt(p.framesOut)}</td>
              <td data-bytes-in={p.bytesIn} data-bytes-out={p.bytesOut}>{fmt(p.bytesIn)} / {fmt(p.bytesOut)}</td>
              <td>{dropText}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function Status({ view }: { view: NetworkView }) {
  const r = view.router;
  const counters = Object.entries(view.uplinkCounters).filter(([, v]) => v > 0);
  return (
    <div style={{ display: 'grid', gap: '0.3rem' }}>
      <p data-testid="net-state" data-state={view.state} style={{ margin: 0 }}>
        <strong className={view.state === 'error' || view.state === 'closed' ? 'error' : view.state === 'open' || view.state === 'ready' ? 'phase-running' : 'phase-paused'}>{view.state}</strong>: {view.stateText}
      </p>
      {view.mac && <p className="muted" style={{ margin: 0 }}>NIC <code data-testid="net-mac">{view.mac}</code></p>}
      {r && (
        <p style={{ margin: 0 }} data-testid="net-router">
          Router 10.0.2.2: {r.serving ? 'serving' : "stepped down (another machine's router serves this LAN)"}
          {r.leases.length > 0 && <>; leases {r.leases.map((l) => `${l.ip} → ${l.mac} (${l.state})`).join(', ')}</>}
          {r.tcpFlows > 0 && <>; {r.tcpFlows} TCP flow{r.tcpFlows === 1 ? '' : 's'}</>}
          {Object.keys(r.drops).length > 0 && <span className="muted">; dropped {Object.entries(r.drops).map(([k, v]) => `${k} ${v}`).join(', ')}</span>}
        </p>
      )}
      {counters.length > 0 && (
        <p className="muted" style={{ margin: 0, fontSize: '0.8rem' }} data-testid="net-uplink-counters">
          {counters.map(([k, v]) => `${k} ${fmt(v)}`).join(' · ')}
        </p>
      )}
    </div>
  );
}

function Events({ view }: { view: NetworkView }) {
  if (view.events.length === 0) return null;
  return (
    <ul data-testid="net-events" style={{ margin: '0.3rem 0', paddingLeft: '1.2rem', fontSize: '0.8rem', maxHeight: '8rem', overflowY: 'auto' }}>
      {view.events.slice(-12).map((e, i) => (
        <li key={i}>{new Date(e.atMs).toLocaleTimeString()} {e.flow ? <code>{e.flow}</code> : null} {e.message}</li>
      ))}
    </ul>
  );
}

function time(ns: number): string {
  return (ns / 1e9).toFixed(6);
}

function PacketList({ lines, total, lost }: { lines: PacketLine[]; total: number; lost: number }) {
  const [filter, setFilter] = useState('');
  const match = useMemo(() => compileFilter(filter), [filter]);
  // The list follows the newest packets while it is scrolled to its end, as a terminal does.
  const list = useRef<HTMLPreElement>(null);
  const atEnd = useRef(true);
  useLayoutEffect(() => {
    const el = list.current;
    if (el && atEnd.current) el.scrollTop = el.scrollHeight;
  });
  const shown: PacketLine[] = [];
  let matching = 0;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (!match(lines[i].summary)) continue;
    matching++;
    if (shown.length < SHOWN) shown.push(lines[i]);
  }
  shown.reverse();
  return (
    <div>
      <div style={{ display: 'flex', gap: '0.6rem', alignItems: 'center', flexWrap: 'wrap', margin: '0.4rem 0' }}>
        <input
          type="search" value={filter} onChange={(e) => setFilter(e.target.value)} placeholder="filter: tcp, udp, arp, icmp, dhcp, dns, http, port 80, host 10.0.2.2, not …, text"
          aria-label="Filter packets" data-testid="packet-filter" style={{ flex: 1, minWidth: '12rem' }}
        />
        <span className="muted" style={{ fontSize: '0.8rem' }} data-testid="packet-count">
          {matching} of {lines.length} kept match{total > lines.length ? ` (${total} seen` : ''}{lost > 0 ? `, ${lost} not listed: too many at once` : ''}{total > lines.length ? ')' : ''}
        </span>
      </div>
      <pre
        data-testid="packet-list" className="packet-list" ref={list} title="virtual time in seconds; out: sent by the guest, in: received by it"
        onScroll={(e) => {
          const el = e.currentTarget;
          atEnd.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 24;
        }}
        style={{ margin: 0, maxHeight: '18rem', overflow: 'auto', fontSize: '0.75rem', lineHeight: 1.35, background: '#0f1216', padding: '0.4rem', borderRadius: 4 }}
      >
        {shown.length === 0 ? <span className="muted">No packets{filter ? ' match' : ' yet'}.</span> : shown.map((l) => (
          <div key={l.n} className={l.summary.proto === 'malformed' ? 'error' : undefined}>
            {time(l.timeNs)} {l.dir === 0 ? 'out' : 'in\u00a0'} {l.summary.text}
          </div>
        ))}
      </pre>
    </div>
  );
}

async function downloadPcap(setNote: (s: string) => void): Promise<void> {
  const answer = networkData.nextPcap();
  client.send({ type: 'pcap' });
  const r = await answer;
  if (!r.file) {
    setNote(`No capture: ${r.reason ?? 'no machine is on'}.`);
    return;
  }
  const blob = new Blob([r.file as Uint8Array<ArrayBuffer>], { type: 'application/vnd.tcpdump.pcap' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = `trapdoor-${new Date().toISOString().replace(/[:.]/g, '-')}.pcap`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  setNote(`${r.packets} packets, ${fmt(r.file.length)} bytes.`);
}

export function NetworkPanel() {
  const share = usePage((s) => s.share);
  const phase = usePage((s) => s.phase);
  const on = phase !== 'off';
  const [version, setVersion] = useState(0);
  const [note, setNote] = useState('');

  useEffect(() => {
    // A new machine starts with an empty list (shown on the next tick).
    networkData.reset();
    if (!share) return;
    let n = 0;
    let shown = networkData.version;
    client.send({ type: 'network' });
    return onTick(() => {
      if (++n % ASK_EVERY === 0) client.send({ type: 'network' });
      if (networkData.version !== shown) {
        shown = networkData.version;
        setVersion(shown);
      }
    });
  }, [share]);

  const view = networkData.view;
  const nicPort = view?.ports.find((p) => p.name === 'ne2k');
  return (
    <section className="panel network-panel" aria-labelledby="network-title" data-testid="network-panel">
      <h2 id="network-title">Network</h2>
      <UplinkSettings locked={on} />
      {share && !view && <p className="muted">Reading the network…</p>}
      {view && (
        <>
          <Status view={view} />
          <Events view={view} />
          {view.ports.length > 0 && <PortsTable view={view} />}
          {nicPort && <PortRatePlot port={`${nicPort.lan}/${nicPort.name}`} due={version} />}
          <div style={{ display: 'flex', gap: '0.6rem', alignItems: 'center', marginTop: '0.4rem' }}>
            <h3 style={{ margin: 0 }}>Packets</h3>
            <span className="spacer" />
            <button type="button" onClick={() => void downloadPcap(setNote)} data-testid="download-pcap" disabled={view.mac === null}>Download pcap</button>
            <span className="muted" style={{ fontSize: '0.8rem' }} data-testid="pcap-note">
              {note || `${view.capture.frames} frames kept${view.capture.dropped > 0 ? ` (${view.capture.dropped} older ones let go)` : ''}`}
            </span>
          </div>
          <PacketList lines={networkData.lines} total={networkData.total} lost={networkData.lost} />
        </>
      )}
    </section>
  );
}
