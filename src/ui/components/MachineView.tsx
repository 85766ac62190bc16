/**
 * The machine as the guest has set it up: PCI functions with their IDs, class and BARs as
 * programmed, each INTx pin's PIRQ link and the ISA IRQ it is routed to, and the IRQ
 * lines of every device on the bus. Refreshed every two seconds while the machine runs
 * (the BIOS and the kernel move BARs and routes during boot).
 */
import { useEffect } from 'react';
import { client } from '../machine-client.ts';
import { usePage } from '../store.ts';
import { MemoryPeek } from './MemoryPeek.tsx';
import { IommuView } from './IommuView.tsx';

const hex = (v: number, digits: number) => v.toString(16).padStart(digits, '0');

/** Names of the PCI base classes (PCI Code and ID Assignment Specification). */
const CLASSES: Record<number, string> = {
  0x0101: 'IDE controller', 0x0300: 'VGA controller', 0x0600: 'host bridge', 0x0601: 'ISA bridge', 0x0680: 'bridge', 0x0200: 'Ethernet controller',
};

export function MachineView() {
  const view = usePage((s) => s.machineView);
  const share = usePage((s) => s.share);
  const phase = usePage((s) => s.phase);
  useEffect(() => {
    if (!share || phase === 'off' || phase === 'loading') return;
    // Paused or stopped (a test program's final halt): described once more, so the view
    // shows how the machine ended rather than the last refresh before it.
    client.send({ type: 'describe' });
    if (phase !== 'running') return;
    const id = window.setInterval(() => client.send({ type: 'describe' }), 2000);
    return () => window.clearInterval(id);
  }, [share, phase]);

  if (!share) return null;
  // The PCI bus's row holds every line a PIRQ link may use: its routing is shown above instead.
  const isa = share.stats.devices.filter((d) => !d.pci && d.name !== 'pci' && d.irq && d.irq.length > 0);
  return (
    <section className="panel machine-view" aria-labelledby="machine-title">
      <h2 id="machine-title">Machine</h2>
      <p className="muted">
        {share.label}: {share.memoryMiB} MiB RAM, {share.deterministic ? 'deterministic time' : 'wall-clock time'}
      </p>
      <h3>PCI bus 0</h3>
      {!view && <p className="muted">Reading the PCI bus…</p>}
      {view && (
        <table className="pci-table" data-testid="pci-table">
          <thead>
            <tr><th>address</th><th>device</th><th>ID</th><th>class</th><th>BARs</th><th>interrupt</th></tr>
          </thead>
          <tbody>
            {view.functions.map((f) => (
              <tr key={f.bdf} data-testid={`pci-${f.bdf}`}>
                <td><code>{f.bdf}</code></td>
                <td>{f.name}</td>
                <td><code>{hex(f.vendorId, 4)}:{hex(f.deviceId, 4)}</code></td>
                <td>{CLASSES[f.classCode >> 8] ?? `class ${hex(f.classCode, 6)}`}</td>
                <td>
                  {f.bars.length === 0 ? '—' : f.bars.map((b) => (
                    <div key={b.index}>
                      BAR{b.index} {b.kind === 'io' ? 'I/O' : 'mem'} {b.base ? `0x${hex(b.base, b.kind === 'io' ? 4 : 8)}` : 'unassigned'}, {sizeText(b.size)}
                      {!b.decoded && b.base !== 0 ? ' (off)' : ''}
                    </div>
                  ))}
                </td>
                <td>{f.interruptPin ? `INT${'ABCD'[f.interruptPin - 1]}# → PIRQ${f.link} → ${f.irq === null ? 'not routed' : `IRQ ${f.irq}`}` : '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {view && (
        <p>
          PIRQ routing (PIIX3 0x60-0x63):{' '}
          {view.pirq.map((p) => `${p.link} → ${p.irq === null ? 'off' : `IRQ ${p.irq}`}`).join(', ')}
        </p>
      )}
      {view?.iommu && <IommuView view={view.iommu} names={new Map(view.functions.map((f) => [f.bdf, f.name]))} />}
      <h3>ISA interrupt lines</h3>
      <ul className="irq-list">
        {isa.map((d) => (
          <li key={d.name}>IRQ {d.irq!.join(', ')}: {d.name}</li>
        ))}
      </ul>
      <MemoryPeek />
    </section>
  );
}

function sizeText(n: number): string {
  if (n >= 1 << 20) return `${n >> 20} MiB`;
  if (n >= 1 << 10) return `${n >> 10} KiB`;
  return `${n} bytes`;
}
