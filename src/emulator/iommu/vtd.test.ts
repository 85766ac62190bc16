import { describe, expect, it } from 'vitest';
import { createTestBus, type TestBus } from '../bus/test-harness.ts';
import {
  CAP_HI, CAP_LO, ECAP_LO, FECTL_IM, FECTL_IP, FSTS_PFO, FSTS_PPF, GCMD_SRTP, GCMD_TE, GCMD_WBF, GSTS_RTPS, GSTS_TES,
  VTD, VTD_BASE, VTD_FR, VTD_FRCD, VTD_NFR, VTD_REGISTERS,
} from './vtd-regs.ts';
import { IntelIommu } from './vtd.ts';
import { enableTranslation, iommuWithMaster, VtdTables, write64 } from './vtd-test-tables.ts';
import { deliverMsi } from './msi.ts';

const R = (t: TestBus, off: number) => t.mmioRead32(VTD_BASE + off);
const W = (t: TestBus, off: number, v: number) => t.mmioWrite32(VTD_BASE + off, v);

function unit(): { t: TestBus; iommu: IntelIommu } {
  const t = createTestBus({ ramBytes: 32 << 20 });
  const iommu = new IntelIommu({ ramBytes: t.ram.length });
  t.attach(iommu);
  return { t, iommu };
}

describe('VT-d registers', () => {
  it('reset values: VER 1.0, CAP/ECAP as advertised, FECTL.IM set, everything else 0', () => {
    const { t } = unit();
    expect(R(t, VTD.VER)).toBe(0x10);
    expect(R(t, VTD.CAP)).toBe(CAP_LO);
    expect(R(t, VTD.CAP + 4)).toBe(CAP_HI);
    expect(R(t, VTD.ECAP)).toBe(ECAP_LO);
    expect(R(t, VTD.ECAP + 4)).toBe(0);
    expect(R(t, VTD.FECTL)).toBe(FECTL_IM >>> 0);
    for (const off of [VTD.GCMD, VTD.GSTS, VTD.RTADDR, VTD.CCMD, VTD.CCMD + 4, VTD.FSTS, VTD.FEDATA, VTD.FEADDR, VTD.PMEN, VTD.IVA, VTD.IOTLB + 4]) {
      expect(R(t, off), `offset 0x${off.toString(16)}`).toBe(0);
    }
  });

  it('CAP says: 256 domains, SAGAW 39-bit 3-level, MGAW 39, 8 records at 0x220, PSI, no super pages; ECAP: coherent, IOTLB at 0xF0, no QI/IR/PT', () => {
    expect(CAP_LO & 7).toBe(2);
    expect((CAP_LO >>> 8) & 0x1f).toBe(0b00010);
    expect((CAP_LO >>> 16) & 0x3f).toBe(38);
    expect(((CAP_LO >>> 24) | ((CAP_HI & 3) << 8)) * 16).toBe(0x220);
    expect((CAP_HI >>> 8) & 0xff).toBe(7);
    expect((CAP_HI >>> 7) & 1).toBe(1);
    expect((CAP_HI >>> 2) & 0xf).toBe(0);
    expect(ECAP_LO & 1).toBe(1);
    expect((ECAP_LO >>> 1) & 1).toBe(0); // QI
    expect((ECAP_LO >>> 3) & 1).toBe(0); // IR
    expect((ECAP_LO >>> 6) & 1).toBe(0); // PT
    expect(((ECAP_LO >>> 8) & 0x3ff) * 16).toBe(0xf0);
  });

  it('every register keeps only its writable bits; read-only ones ignore writes', () => {
    const { t } = unit();
    for (const reg of VTD_REGISTERS) {
      for (let i = 0; i < reg.width / 4; i++) {
        const off = reg.offset + i * 4;
        if (reg.name === 'GCMD' || (reg.name === 'CCMD' && i === 1) || (reg.name === 'IOTLB' && i === 1)) continue; // commands, below
        const before = R(t, off);
        W(t, off, 0xffffffff);
        const want = ((before & ~reg.writable[i] & ~reg.w1c[i]) | reg.writable[i]) >>> 0;
        expect(R(t, off), `${reg.name} dword ${i}`).toBe(want);
      }
    }
    expect(R(t, VTD.RTADDR)).toBe(0xfffff000);
    expect(R(t, VTD.RTADDR + 4)).toBe(0x7f);
    expect(R(t, VTD.FEDATA)).toBe(0xffff);
    expect(R(t, VTD.PMEN)).toBe(0);
  });

  it('GCMD reads 0; SRTP sets RTPS, TE sets and clears TES, WBF completes at once', () => {
    const { t } = unit();
    W(t, VTD.RTADDR, 0x5000);
    W(t, VTD.GCMD, GCMD_SRTP);
    expect(R(t, VTD.GCMD)).toBe(0);
    expect(R(t, VTD.GSTS) & GSTS_RTPS).toBe(GSTS_RTPS);
    W(t, VTD.GCMD, GCMD_TE);
    expect((R(t, VTD.GSTS) & GSTS_TES) >>> 0).toBe(GSTS_TES >>> 0);
    W(t, VTD.GCMD, GCMD_TE | GCMD_WBF);
    expect(R(t, VTD.GSTS) >>> 0).toBe((GSTS_TES | GSTS_RTPS) >>> 0);
    W(t, VTD.GCMD, 0);
    expect(R(t, VTD.GSTS) & GSTS_TES).toBe(0);
  });

  it('CCMD acts on the high dword, with the low dword written first: ICC clears and CAIG reports the granularity', () => {
    const { t } = unit();
    W(t, VTD.CCMD, 0x00080005); // SID 00:01.0, DID 5: latched, nothing happens yet
    expect(R(t, VTD.CCMD)).toBe(0x00080005);
    for (const cirg of [1, 2, 3]) {
      W(t, VTD.CCMD + 4, ((1 << 31) | (cirg << 29)) >>> 0);
      const hi = R(t, VTD.CCMD + 4);
      expect(hi >>> 31).toBe(0);
      expect((hi >>> 27) & 3).toBe(cirg);
    }
    // CIRG 0 is not a granularity: answered with CAIG 0.
    W(t, VTD.CCMD + 4, 1 << 31);
    expect((R(t, VTD.CCMD + 4) >>> 27) & 3).toBe(0);
    expect(R(t, VTD.CCMD + 4) >>> 31).toBe(0);
  });

  it('IOTLB acts on the high dword: IVT clears, IAIG = IIRG; page-selective beyond MAMV reports IAIG 0', () => {
    const { t } = unit();
    for (const iirg of [1, 2, 3]) {
      W(t, VTD.IVA, 0x1000);
      W(t, VTD.IVA + 4, 0);
      W(t, VTD.IOTLB, 0);
      W(t, VTD.IOTLB + 4, ((1 << 31) | (iirg << 28) | 7) >>> 0);
      const hi = R(t, VTD.IOTLB + 4);
      expect(hi >>> 31).toBe(0);
      expect((hi >>> 25) & 3).toBe(iirg);
      expect(hi & 0xffff).toBe(7);
    }
    W(t, VTD.IVA, 0x1000 | 19);
    W(t, VTD.IOTLB + 4, ((1 << 31) | (3 << 28)) >>> 0);
    expect((R(t, VTD.IOTLB + 4) >>> 25) & 3).toBe(0);
  });

  it('byte, word and unaligned writes are ignored and counted; reads of any size see the bytes', () => {
    const { t, iommu } = unit();
    t.mmioWrite8(VTD_BASE + VTD.FEDATA, 0x12);
    t.mmioWrite16(VTD_BASE + VTD.FEADDR, 0x1234);
    expect(R(t, VTD.FEDATA)).toBe(0);
    expect(R(t, VTD.FEADDR)).toBe(0);
    expect(iommu.state.counters.badAccesses).toBe(2);
    expect(t.mmioRead8(VTD_BASE + VTD.VER)).toBe(0x10);
    expect(t.mmioRead16(VTD_BASE + VTD.CAP + 2)).toBe(CAP_LO >>> 16);
  });

  it('state saves and loads (versioned), and a bad state is refused by name', () => {
    const { t, iommu } = unit();
    W(t, VTD.FEDATA, 0x41);
    const saved = iommu.saveState();
    const other = new IntelIommu({ ramBytes: t.ram.length });
    other.loadState(saved);
    expect(other.readRegister(VTD.FEDATA, 4)).toBe(0x41);
    expect(() => other.loadState({ ...saved, $version: 7 })).toThrow(/version/);
    expect(() => other.loadState({ ...saved, regs: new Uint32Array(3) })).toThrow(/regs/);
    expect(() => other.loadState({ ...saved, nextFrcd: 8 })).toThrow(/nextFrcd/);
    expect(other.readRegister(VTD.FEDATA, 4)).toBe(0x41);
  });
});

/** A unit with translation on, one master at 00:05.0 (sid 0x28) in domain 1, RAM of 32 MiB. */
function translating(opts: { fpd?: boolean } = {}) {
  const t = createTestBus({ ramBytes: 32 << 20 });
  const { iommu, dev } = iommuWithMaster(t, 0x28);
  const tables = new VtdTables(t.ram, 0x100000, 0x101000);
  const ctxTable = tables.setRoot(0);
  const slpt = tables.setContext(ctxTable, 0x28, 1, { fpd: opts.fpd });
  enableTranslation(t, 0x100000);
  const msis: { addr: number; data: number }[] = [];
  iommu.msi = (addr, data) => msis.push({ addr, data });
  return { t, iommu, dev, tables, ctxTable, slpt, msis };
}

const frcd = (t: TestBus, i: number) => [0, 4, 8, 12].map((k) => R(t, VTD_FRCD + i * 16 + k));

describe('VT-d translation', () => {
  it('is the identity while TE is off', () => {
    const t = createTestBus({ ramBytes: 4 << 20 });
    const { dev } = iommuWithMaster(t, 0x28);
    expect(dev.dma.write(0x2000, Uint8Array.of(1, 2, 3))).toBe(true);
    expect([...t.ram.subarray(0x2000, 0x2003)]).toEqual([1, 2, 3]);
  });

  it('walks root, context and three levels: a mapped page reaches its physical page', () => {
    const { t, dev, tables, slpt } = translating();
    tables.map(slpt, 0x40001000, 0x00300000);
    const data = Uint8Array.from({ length: 6000 }, (_, i) => i & 0xff);
    tables.map(slpt, 0x40002000, 0x00500000);
    expect(dev.dma.write(0x40001800, data)).toBe(true);
    expect([...t.ram.subarray(0x300800, 0x301000)]).toEqual([...data.subarray(0, 0x800)]);
    expect([...t.ram.subarray(0x500000, 0x500000 + 6000 - 0x800)]).toEqual([...data.subarray(0x800)]);
    const back = new Uint8Array(6000);
    expect(dev.dma.read(0x40001800, back)).toBe(true);
    expect(back).toEqual(data);
    // Nothing landed at the untranslated address.
    expect(t.ram[0x1800]).toBe(0);
  });

  it('permissions: a read-only page refuses writes (reason 5), a write-only page reads (reason 6)', () => {
    const { t, dev, tables, slpt } = translating();
    tables.map(slpt, 0x1000, 0x200000, 1);
    tables.map(slpt, 0x2000, 0x201000, 2);
    expect(dev.dma.write(0x1000, Uint8Array.of(9))).toBe(false);
    expect(t.ram[0x200000]).toBe(0);
    expect(frcd(t, 0)[3] & 0xff).toBe(VTD_FR.WRITE);
    expect(dev.dma.read(0x1000, new Uint8Array(4))).toBe(true);
    expect(dev.dma.write(0x2000, Uint8Array.of(7))).toBe(true);
    expect(t.ram[0x201000]).toBe(7);
  });

  it('an upper level without the right refuses too (rights are the AND of all levels)', () => {
    const { t, dev, tables, slpt } = translating();
    tables.map(slpt, 0x1000, 0x200000, 3);
    const [lo] = [t.ram[slpt] | (t.ram[slpt + 1] << 8) | (t.ram[slpt + 2] << 16) | (t.ram[slpt + 3] << 24)];
    write64(t.ram, slpt, (lo & ~2) >>> 0); // level 3 read-only
    expect(dev.dma.write(0x1000, Uint8Array.of(1))).toBe(false);
  });

  it('writes to the interrupt window 0xFEE00000-0xFEEFFFFF are not translated', () => {
    const { iommu } = translating();
    expect(iommu.translate(0x28, 0xfee00000, true)).toBe(0xfee00000);
    expect(iommu.translate(0x28, 0xfeeffffc, true)).toBe(0xfeeffffc);
    expect(iommu.state.counters.faults).toBe(0);
    // A read there is an ordinary request: not mapped, so it faults.
    expect(iommu.translate(0x28, 0xfee00000, false)).toBe(-1);
  });

  const cases: [string, (x: ReturnType<typeof translating>) => void, number][] = [
    ['root entry not present', (x) => write64(x.t.ram, 0x100000, 0), VTD_FR.ROOT_ENTRY_P],
    ['context entry not present', (x) => write64(x.t.ram, x.ctxTable + 0x28 * 16, 0), VTD_FR.CONTEXT_ENTRY_P],
    ['pass-through context (TT 2)', (x) => x.tables.setContext(x.ctxTable, 0x28, 1, { tt: 2, slptptr: x.slpt }), VTD_FR.CONTEXT_ENTRY_TT],
    ['reserved translation type (TT 3)', (x) => x.tables.setContext(x.ctxTable, 0x28, 1, { tt: 3, slptptr: x.slpt }), VTD_FR.CONTEXT_ENTRY_TT],
    ['4-level address width', (x) => x.tables.setContext(x.ctxTable, 0x28, 1, { aw: 2, slptptr: x.slpt }), VTD_FR.CONTEXT_ENTRY_INV],
    ['reserved bit in the root entry', (x) => write64(x.t.ram, 0x100000, x.ctxTable | 1 | 0x10), VTD_FR.ROOT_ENTRY_RSVD],
    ['reserved bit in the context entry', (x) => write64(x.t.ram, x.ctxTable + 0x28 * 16 + 8, 1 | (1 << 8), 1), VTD_FR.CONTEXT_ENTRY_RSVD],
    ['context table outside RAM', (x) => write64(x.t.ram, 0x100000, 0xfec00000 | 1), VTD_FR.CONTEXT_TABLE_INV],
    ['page table outside RAM', (x) => x.tables.setContext(x.ctxTable, 0x28, 1, { slptptr: 0x7f000000 }), VTD_FR.PAGING_ENTRY_INV],
    ['page table above 4 GiB', (x) => write64(x.t.ram, x.ctxTable + 0x28 * 16, 0x1000 | 1, 1), VTD_FR.PAGING_ENTRY_INV],
    ['a super page (PS at level 2) when CAP.SLLPS offers none', (x) => {
      x.tables.map(x.slpt, 0x1000, 0x200000);
      const l2 = x.t.ram[x.slpt] | (x.t.ram[x.slpt + 1] << 8) | (x.t.ram[x.slpt + 2] << 16);
      write64(x.t.ram, (l2 & 0xfffff000), 0x200000 | 0x80 | 3);
    }, VTD_FR.PAGING_ENTRY_RSVD],
    ['reserved bit (SNP) in a page-table entry', (x) => write64(x.t.ram, x.tables.map(x.slpt, 0x1000, 0x200000), 0x200000 | 0x800 | 3), VTD_FR.PAGING_ENTRY_RSVD],
    ['not present (R = W = 0) page', (x) => x.tables.map(x.slpt, 0x1000, 0x200000, 0), VTD_FR.READ],
  ];
  for (const [what, setup, reason] of cases) {
    it(`faults with reason ${reason}: ${what}`, () => {
      const x = translating();
      setup(x);
      expect(x.dev.dma.read(0x1000, new Uint8Array(4))).toBe(false);
      const rec = frcd(x.t, 0);
      expect(rec[3] & 0xff).toBe(reason);
      expect(rec[2] & 0xffff).toBe(0x28);
      expect(rec[0]).toBe(0x1000);
    });
  }

  it('the root table outside RAM faults with reason 8', () => {
    const { t, dev } = translating();
    enableTranslation(t, 0xfffff000);
    expect(dev.dma.read(0x1000, new Uint8Array(4))).toBe(false);
    expect(frcd(t, 0)[3] & 0xff).toBe(VTD_FR.ROOT_TABLE_INV);
  });
});

describe('VT-d caches', () => {
  it('a stale IOTLB entry is used until the guest invalidates it, and never after', () => {
    const { t, dev, tables, slpt, iommu } = translating();
    const leaf = tables.map(slpt, 0x7000, 0x200000);
    expect(dev.dma.write(0x7000, Uint8Array.of(1))).toBe(true);
    expect(t.ram[0x200000]).toBe(1);
    // The guest moves the page without invalidating: the cached translation still applies.
    write64(t.ram, leaf, 0x210000 | 3);
    expect(dev.dma.write(0x7000, Uint8Array.of(2))).toBe(true);
    expect(t.ram[0x200000]).toBe(2);
    expect(t.ram[0x210000]).toBe(0);
    // Invalidations that do not cover it change nothing: another domain, another page.
    W(t, VTD.IOTLB + 4, ((1 << 31) | (2 << 28) | 9) >>> 0);
    W(t, VTD.IVA, 0x8000);
    W(t, VTD.IOTLB + 4, ((1 << 31) | (3 << 28) | 1) >>> 0);
    expect(dev.dma.write(0x7000, Uint8Array.of(3))).toBe(true);
    expect(t.ram[0x200000]).toBe(3);
    // The page-selective invalidation of that page in its domain: the new mapping from then on.
    W(t, VTD.IVA, 0x7000);
    W(t, VTD.IOTLB + 4, ((1 << 31) | (3 << 28) | 1) >>> 0);
    expect(dev.dma.write(0x7000, Uint8Array.of(4))).toBe(true);
    expect(t.ram[0x210000]).toBe(4);
    expect(t.ram[0x200000]).toBe(3);
    // Unmapped without invalidation: still the cached page; after a domain invalidation, a fault.
    write64(t.ram, leaf, 0);
    expect(dev.dma.write(0x7000, Uint8Array.of(5))).toBe(true);
    W(t, VTD.IOTLB + 4, ((1 << 31) | (2 << 28) | 1) >>> 0);
    expect(dev.dma.write(0x7000, Uint8Array.of(6))).toBe(false);
    expect(t.ram[0x210000]).toBe(5);
    expect(iommu.state.counters.iotlbHits).toBeGreaterThan(0);
  });

  it('a not-present entry is never cached: mapping it later needs no invalidation', () => {
    const { t, dev, tables, slpt } = translating();
    expect(dev.dma.write(0x9000, Uint8Array.of(1))).toBe(false);
    tables.map(slpt, 0x9000, 0x220000);
    expect(dev.dma.write(0x9000, Uint8Array.of(1))).toBe(true);
    expect(t.ram[0x220000]).toBe(1);
  });

  it('a cached context entry is used until a context-cache invalidation covers it', () => {
    const { t, dev, tables, slpt, ctxTable } = translating();
    tables.map(slpt, 0x1000, 0x230000);
    expect(dev.dma.write(0x1000, Uint8Array.of(1))).toBe(true);
    write64(t.ram, ctxTable + 0x28 * 16, 0);
    // The IOTLB entry and the context both stale: still translated.
    W(t, VTD.IOTLB + 4, ((1 << 31) | (1 << 28)) >>> 0);
    expect(dev.dma.write(0x1000, Uint8Array.of(2))).toBe(true);
    // Device-selective invalidation of another device: no change.
    W(t, VTD.CCMD, 0x00300000);
    W(t, VTD.CCMD + 4, ((1 << 31) | (3 << 29)) >>> 0);
    W(t, VTD.IOTLB + 4, ((1 << 31) | (1 << 28)) >>> 0);
    expect(dev.dma.write(0x1000, Uint8Array.of(3))).toBe(true);
    // This device's: the context entry is read again, and is not present.
    W(t, VTD.CCMD, 0x00280000);
    W(t, VTD.CCMD + 4, ((1 << 31) | (3 << 29)) >>> 0);
    expect(dev.dma.write(0x1000, Uint8Array.of(4))).toBe(false);
    expect(frcd(t, 0)[3] & 0xff).toBe(VTD_FR.CONTEXT_ENTRY_P);
    expect(t.ram[0x230000]).toBe(3);
  });
});

describe('VT-d fault recording', () => {
  it('records source id, reason, page and type, sets PPF and FRI, and sends the fault event as an MSI', () => {
    const { t, dev, msis } = translating();
    W(t, VTD.FEDATA, 0x41);
    W(t, VTD.FEADDR, 0xfee00000);
    W(t, VTD.FECTL, 0);
    expect(dev.dma.write(0x01234567, Uint8Array.of(1))).toBe(false);
    const [lo, hi, sid, top] = frcd(t, 0);
    expect(lo).toBe(0x01234000);
    expect(hi).toBe(0);
    expect(sid).toBe(0x28);
    expect(top >>> 31).toBe(1); // F
    expect((top >>> 30) & 1).toBe(0); // T = 0: a write
    expect(top & 0xff).toBe(VTD_FR.WRITE);
    expect(R(t, VTD.FSTS)).toBe(FSTS_PPF | (0 << 8));
    expect(msis).toEqual([{ addr: 0xfee00000, data: 0x41 }]);
    expect(R(t, VTD.FECTL) & FECTL_IP).toBe(0);
  });

  it('collapses repeats from one source, records another source without a new event, overflows into PFO and drops', () => {
    const t = createTestBus({ ramBytes: 32 << 20 });
    const iommu = new IntelIommu({ ramBytes: t.ram.length });
    t.attach(iommu);
    const msis: number[] = [];
    iommu.msi = (_a, d) => msis.push(d);
    enableTranslation(t, 0x100000); // root table of zeros: every source faults with reason 1
    W(t, VTD.FECTL, 0);
    expect(iommu.translate(0x10, 0x5000, false)).toBe(-1);
    expect(iommu.translate(0x10, 0x6000, false)).toBe(-1); // collapsed
    expect(iommu.state.counters.faultsCollapsed).toBe(1);
    expect(frcd(t, 1)[3] >>> 31).toBe(0);
    for (let s = 1; s < VTD_NFR; s++) expect(iommu.translate(0x10 + s, 0x5000, false)).toBe(-1);
    for (let i = 0; i < VTD_NFR; i++) {
      const r = frcd(t, i);
      expect(r[3] >>> 31).toBe(1);
      expect(r[2]).toBe(0x10 + i);
      expect((r[3] >>> 30) & 1).toBe(1); // T = 1: a read
      expect(r[3] & 0xff).toBe(VTD_FR.ROOT_ENTRY_P);
    }
    expect(msis).toHaveLength(1);
    // Record 0 is busy: the ninth source overflows; after that everything is dropped.
    expect(iommu.translate(0x40, 0x5000, true)).toBe(-1);
    expect(R(t, VTD.FSTS) & FSTS_PFO).toBe(FSTS_PFO);
    expect(iommu.translate(0x41, 0x5000, true)).toBe(-1);
    expect(iommu.state.counters.faultsDropped).toBe(2);
    expect(msis).toHaveLength(1);
    // Clearing: every F (write 1 to bit 127), then PFO; PPF and IP follow.
    for (let i = 0; i < VTD_NFR; i++) W(t, VTD_FRCD + i * 16 + 12, 0x80000000);
    expect(R(t, VTD.FSTS) & FSTS_PPF).toBe(0);
    expect(R(t, VTD.FSTS) & FSTS_PFO).toBe(FSTS_PFO);
    W(t, VTD.FSTS, FSTS_PFO);
    expect(R(t, VTD.FSTS) & (FSTS_PFO | FSTS_PPF)).toBe(0);
    // The next fault goes to the next record in turn, FRI names it, and a new event is sent.
    expect(iommu.translate(0x50, 0x5000, false)).toBe(-1);
    expect(frcd(t, 0)[2]).toBe(0x50);
    expect((R(t, VTD.FSTS) >>> 8) & 0xff).toBe(0);
    expect(msis).toHaveLength(2);
  });

  it('FECTL.IM holds the event pending (IP) and unmasking sends it', () => {
    const { t, dev, msis } = translating();
    expect(R(t, VTD.FECTL)).toBe(FECTL_IM >>> 0);
    dev.dma.read(0x1000, new Uint8Array(1));
    expect(msis).toHaveLength(0);
    expect(R(t, VTD.FECTL) >>> 0).toBe((FECTL_IM | FECTL_IP) >>> 0);
    W(t, VTD.FECTL, 0);
    expect(msis).toHaveLength(1);
    expect(R(t, VTD.FECTL)).toBe(0);
  });

  it('a context with FPD set blocks the transfer but records nothing', () => {
    const { t, dev, iommu } = translating({ fpd: true });
    expect(dev.dma.read(0x1000, new Uint8Array(1))).toBe(false);
    expect(R(t, VTD.FSTS)).toBe(0);
    expect(iommu.state.counters.faultsSuppressed).toBe(1);
  });

  it('the bus counts the fault against the device and the transfer stops there', () => {
    const { t, dev, tables, slpt } = translating();
    tables.map(slpt, 0x1000, 0x240000);
    const buf = new Uint8Array(8192).fill(0xaa);
    expect(dev.dma.write(0x1000, buf)).toBe(false);
    expect(t.ram[0x240fff]).toBe(0xaa);
    expect(t.stats('master').dmaFaults).toBe(1);
    expect(t.stats('master').dmaBytesWritten).toBe(4096);
    expect(t.bus.dmaFaults.at(-1)).toMatchObject({ device: 'master', addr: 0x2000, write: true, reason: 'translation' });
  });
});

describe('VT-d context view', () => {
  it("summarises a source's mappings as runs, from its tables, and says why a source has none", () => {
    const { iommu, tables, slpt } = translating();
    for (let i = 0; i < 4; i++) tables.map(slpt, 0x10000 + i * 4096, 0x300000 + i * 4096);
    tables.map(slpt, 0x14000, 0x400000, 1);
    tables.map(slpt, 0x40000000 - 4096, 0x500000);
    const v = iommu.describeContext(0x28);
    expect(v).toMatchObject({ sourceId: '00:05.0', present: true, domain: 1, levels: 3, truncated: false });
    expect(v.runs).toEqual([
      { iova: 0x10000, phys: 0x300000, pages: 4, read: true, write: true },
      { iova: 0x14000, phys: 0x400000, pages: 1, read: true, write: false },
      { iova: 0x3ffff000, phys: 0x500000, pages: 1, read: true, write: true },
    ]);
    expect(iommu.describeContext(0x30)).toMatchObject({ present: false, fault: 'context entry not present', runs: [] });
    expect(iommu.describeContext(0x28, 10).truncated).toBe(true);
  });
});

describe('MSI decoding', () => {
  it('gives the local APIC vector, delivery mode, trigger, destination and mode', () => {
    const got: unknown[] = [];
    expect(deliverMsi(0xfee0300c, 0xc041, (...a) => got.push(a))).toBe(true);
    expect(got).toEqual([[0x41, 0, true, 3, true]]);
    expect(deliverMsi(0x12345678, 0x41, () => got.push('no'))).toBe(false);
    expect(got).toHaveLength(1);
  });
});
