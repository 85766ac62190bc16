/**
 * The two IOMMUs between bus masters and guest memory (issue 23, docs/iommu.md): the
 * guest's VT-d unit as its driver set it up (translation, root table, each device's
 * context as runs of mapped pages, the unit's counters, the fault records the guest reads
 * and every fault the unit saw, in words), and the VMM's fence that confines a
 * direct-assigned device to the guest's RAM, with its own fault log. Part of the machine
 * view's refresh (MachineView asks every two seconds).
 */
import type { IommuView as View } from '../../worker/protocol.ts';

const hex = (v: number, digits = 8) => `0x${(v >>> 0).toString(16).padStart(digits, '0')}`;
const ms = (ns: number) => `${(ns / 1e6).toFixed(1)} ms`;

type Run = NonNullable<View['vtd']>['contexts'][number]['runs'][number];

function runsText(runs: Run[], truncated: boolean): string {
  if (runs.length === 0) return 'nothing mapped';
  const shown = runs.slice(0, 4).map((r) => {
    const rights = `${r.read ? 'R' : ''}${r.write ? 'W' : ''}`;
    const where = r.iova === r.phys ? `${hex(r.iova)} identity` : `${hex(r.iova)} → ${hex(r.phys)}`;
    return `${where}, ${r.pages} page${r.pages === 1 ? '' : 's'} ${rights}`;
  });
  return shown.join('; ') + (runs.length > 4 || truncated ? '; …' : '');
}

export function IommuView({ view, names }: { view: View; names: Map<string, string> }) {
  const vtd = view.vtd;
  const device = (bdf: string) => names.get(bdf) ?? bdf;
  return (
    <div className="iommu" data-testid="iommu">
      <h3>IOMMU</h3>
      {vtd === null ? (
        <p className="muted" data-testid="iommu-status">No guest-visible VT-d unit (-machine iommu=off).</p>
      ) : (
        <>
          <p data-testid="iommu-status">
            VT-d at 0xfed90000 (a synthetic option of this i440FX): translation <strong>{vtd.translation ? 'on' : 'off'}</strong>
            {vtd.rootTable ? <>, root table at <code>{hex(vtd.rootTable)}</code></> : null}; {vtd.counters.translations ?? 0} pages translated,
            IOTLB {vtd.counters.iotlbHits ?? 0} hits / {vtd.counters.iotlbMisses ?? 0} misses, {vtd.counters.faults ?? 0} faults.
          </p>
          {vtd.contexts.length > 0 && (
            <table className="pci-table" data-testid="iommu-contexts">
              <thead><tr><th>device</th><th>domain</th><th>levels</th><th>maps</th></tr></thead>
              <tbody>
                {vtd.contexts.map((c) => (
                  <tr key={c.bdf} data-testid={`iommu-context-${c.bdf}`}>
                    <td><code>{c.bdf}</code> {c.device}</td>
                    <td>{c.present ? c.domain : '—'}</td>
                    <td>{c.present ? c.levels : '—'}</td>
                    <td>{c.present ? runsText(c.runs, c.truncated) : `no context (${c.fault ?? 'not present'})`}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h4>Guest's fault log</h4>
          {vtd.faults.length === 0 ? <p className="muted">No DMA fault.</p> : (
            <ul className="fault-list" data-testid="iommu-faults">
              {vtd.faults.map((f, i) => (
                <li key={i}>{ms(f.atNs)}: {device(f.source)} {f.write ? 'wrote' : 'read'} {hex(f.addr)}: {f.reasonText} ({f.outcome})</li>
              ))}
            </ul>
          )}
          {vtd.records.length > 0 && (
            <p className="muted">Fault recording registers: {vtd.records.map((r) => `#${r.index} ${device(r.sourceId)} ${hex(r.addr)} ${r.reasonText}`).join('; ')}</p>
          )}
        </>
      )}
      <h4>VMM fence (direct-assigned devices)</h4>
      <p data-testid="fence-status">{view.fence.counters.allowed} pages allowed, {view.fence.counters.refused} refused.</p>
      {view.fence.faults.length > 0 && (
        <ul className="fault-list" data-testid="fence-faults">
          {view.fence.faults.map((f, i) => (
            <li key={i}>{ms(f.atNs)}: {f.device} {f.write ? 'wrote' : 'read'} {hex(f.addr)}: {f.reason}</li>
          ))}
        </ul>
      )}
    </div>
  );
}
