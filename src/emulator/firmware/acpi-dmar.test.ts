import { describe, expect, it } from 'vitest';
import { buildDmar } from './acpi-dmar.ts';

describe('the ACPI DMAR table', () => {
  const t = buildDmar();
  const v = new DataView(t.buffer);

  it('has the DMAR signature, its own length and a checksum that sums to 0', () => {
    expect(String.fromCharCode(...t.subarray(0, 4))).toBe('DMAR');
    expect(v.getUint32(4, true)).toBe(t.length);
    expect(t.reduce((s, b) => (s + b) & 0xff, 0)).toBe(0);
  });

  it('says host address width 39 (stored as 38) and no interrupt remapping', () => {
    expect(t[36]).toBe(38);
    expect(t[37] & 1).toBe(0);
  });

  it('has one DRHD at 0xFED90000 covering every PCI device (INCLUDE_PCI_ALL)', () => {
    expect(t.length).toBe(48 + 16);
    expect(v.getUint16(48, true)).toBe(0);
    expect(v.getUint16(50, true)).toBe(16);
    expect(t[52] & 1).toBe(1);
    expect(v.getUint16(54, true)).toBe(0);
    expect(v.getUint32(56, true)).toBe(0xfed90000);
    expect(v.getUint32(60, true)).toBe(0);
  });

  it('follows its options', () => {
    const u = buildDmar({ base: 0xfed80000, hostAddressWidth: 48 });
    expect(u[36]).toBe(47);
    expect(new DataView(u.buffer).getUint32(56, true)).toBe(0xfed80000);
    expect(u.reduce((s, b) => (s + b) & 0xff, 0)).toBe(0);
  });
});
