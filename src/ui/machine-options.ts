/**
 * Machine settings that are not a guest's files, taken at power-on (the CLI's spellings in
 * brackets): QEMU's edu DMA test device (`-device edu`), direct-assigned, so its DMA meets
 * the VMM's fence (docs/iommu.md); and the guest-visible VT-d unit (`-machine iommu=`).
 * `?edu=1` and `?iommu=off` in the page's address set them before the page starts.
 */
import { create } from 'zustand';
import type { BootRequest } from '../worker/protocol.ts';

export interface MachineOptions {
  edu: boolean;
  iommu: boolean;
  setEdu(on: boolean): void;
  setIommu(on: boolean): void;
}

function fromAddress(): { edu: boolean; iommu: boolean } {
  const q = typeof location === 'undefined' ? new URLSearchParams() : new URLSearchParams(location.search);
  return { edu: q.get('edu') === '1', iommu: q.get('iommu') !== 'off' };
}

export const useMachineOptions = create<MachineOptions>((set) => ({
  ...fromAddress(),
  setEdu: (edu) => set({ edu }),
  setIommu: (iommu) => set({ iommu }),
}));

/** The settings as a boot request carries them. */
export function machineOptions(): Pick<BootRequest, 'edu' | 'iommu'> {
  const { edu, iommu } = useMachineOptions.getState();
  return { edu, iommu };
}
