/**
 * The machine settings beside the RAM size (machine-options.ts): the edu DMA test device
 * and the guest's VT-d unit. They apply at the next power-on, so they are locked while a
 * machine is on.
 */
import { useMachineOptions } from '../machine-options.ts';

export function MachineOptions({ disabled }: { disabled: boolean }) {
  const { edu, iommu, setEdu, setIommu } = useMachineOptions();
  return (
    <span className="machine-options" style={{ display: 'inline-flex', gap: '0.75em' }}>
      <label title="QEMU's educational PCI device (1234:11e8, -device edu): a DMA engine a test program can point anywhere. Direct-assigned, so the VMM's fence confines its DMA to the guest's RAM.">
        <input type="checkbox" checked={edu} disabled={disabled} onChange={(e) => setEdu(e.target.checked)} data-testid="option-edu" /> edu device
      </label>
      <label title="The guest-visible Intel VT-d unit with its ACPI DMAR table (-machine iommu=on|off); a synthetic option on this i440FX.">
        <input type="checkbox" checked={iommu} disabled={disabled} onChange={(e) => setIommu(e.target.checked)} data-testid="option-iommu" /> VT-d
      </label>
    </span>
  );
}
