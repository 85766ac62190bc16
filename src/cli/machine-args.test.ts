import { describe, expect, it } from 'vitest';
import { parseArgs, UsageError, withMachineOptions } from './args.ts';
import type { MachineConfig } from '../emulator/machine/config.ts';

const base = { memoryMiB: 64, bios: new Uint8Array(0), boot: 'c', deterministic: true } satisfies MachineConfig;

describe('-machine, -device intel-iommu and -device edu', () => {
  it('turn the VT-d unit on and off, the last word winning; on by default', () => {
    expect(withMachineOptions(base, parseArgs([])).iommu).toBe(true);
    expect(withMachineOptions(base, parseArgs(['-machine', 'iommu=off'])).iommu).toBe(false);
    expect(withMachineOptions(base, parseArgs(['-machine', 'iommu=on'])).iommu).toBe(true);
    expect(withMachineOptions(base, parseArgs(['-machine', 'pc,iommu=on'])).iommu).toBe(true);
    expect(withMachineOptions(base, parseArgs(['-device', 'intel-iommu'])).iommu).toBe(true);
    expect(withMachineOptions(base, parseArgs(['-device', 'intel-iommu', '-machine', 'iommu=off'])).iommu).toBe(false);
  });

  it('add edu without touching the network devices', () => {
    const o = parseArgs(['-device', 'edu', '-nic', 'none']);
    expect(withMachineOptions(base, o).edu).toBe(true);
    expect(o.net).toEqual([{ flag: 'nic', value: 'none' }]);
  });

  it('refuse what they do not know in plain words', () => {
    const usage = (argv: string[]) => {
      try {
        parseArgs(argv);
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return (e as Error).message;
      }
      throw new Error('no usage error');
    };
    expect(usage(['-machine', 'iommu=maybe'])).toMatch(/iommu=: expected on or off/);
    expect(usage(['-machine', 'q35'])).toMatch(/unknown option 'q35'/);
    expect(usage(['-device', 'intel-iommu,aw-bits=48'])).toMatch(/takes no options/);
    expect(usage(['-device', 'edu,dma_mask=0xffffffff'])).toMatch(/takes no options/);
  });
});
