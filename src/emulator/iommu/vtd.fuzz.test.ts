/**
 * Bad input for the VT-d unit: a million accesses of random widths, offsets and values to
 * its register window, interleaved with tables full of garbage (entries pointing back at
 * their own table, at the root table, at each other in loops, outside RAM), invalidation
 * storms and translations from random sources. Nothing may throw, every walk must end, and
 * what the guest reads must stay consistent (PPF follows the records, every record has a
 * reason the spec defines, GSTS has only the bits this unit implements).
 */
import { describe, expect, it } from 'vitest';
import { createTestBus } from '../bus/test-harness.ts';
import { FRCD_HI_F, FSTS_PPF, GSTS_RTPS, GSTS_TES, VTD, VTD_BASE, VTD_FRCD, VTD_NFR } from './vtd-regs.ts';
import { IntelIommu } from './vtd.ts';
import { write64 } from './vtd-test-tables.ts';
import { xorshift32 } from '../testing/xorshift.ts';


const TABLES = 0x100000; // 64 pages of tables the garbage points into
const TABLE_PAGES = 64;
const KNOWN = [VTD.GCMD, VTD.RTADDR, VTD.RTADDR + 4, VTD.CCMD, VTD.CCMD + 4, VTD.FSTS, VTD.FECTL, VTD.FEDATA, VTD.FEADDR, VTD.IVA, VTD.IVA + 4, VTD.IOTLB, VTD.IOTLB + 4];

/**
 * Write a chain of tables for (sid, addr) under the root table at TABLES in which each
 * entry is most often right and otherwise wrong in one way: what reaches the deep walks
 * and every fault reason, where pure garbage stops at the root entry.
 */
function nearlyRightChain(ram: Uint8Array, rand: () => number, sid: number, addr: number): void {
  const page = () => TABLES + (1 + (rand() % (TABLE_PAGES - 1))) * 4096;
  const one = <T>(good: T, ...bad: T[]): T => (rand() % 4 !== 0 || bad.length === 0 ? good : bad[rand() % bad.length]);
  const [ctx, l3, l2, l1] = [page(), page(), page(), page()];
  write64(ram, TABLES + (sid >>> 8) * 16, ...one<[number, number]>([ctx | 1, 0], [0, 0], [ctx | 0x11, 0], [0x900000 | 1, 0], [ctx | 1, 1]));
  const c = ctx + (sid & 0xff) * 16;
  write64(ram, c, ...one<[number, number]>([l3 | 1, 0], [0, 0], [l3 | 5, 0], [l3 | 9, 0], [l3 | 0x11, 0], [l3 | 3, 0]));
  write64(ram, c + 8, ...one<[number, number]>([((rand() & 0xff) << 8) | 1, 0], [0x102, 0], [0x1000101, 0], [0x101, 1]));
  const pte = (next: number): [number, number] => one<[number, number]>([next | 3, 0], [0, 0], [next | 1, 0], [next | 2, 0], [next | 0x83, 0], [next | 0x803, 0], [0x900000 | 3, 0], [next | 3, 1]);
  write64(ram, l3 + ((addr >>> 30) & 3) * 8, ...pte(l2));
  write64(ram, l2 + ((addr >>> 21) & 0x1ff) * 8, ...pte(l1));
  write64(ram, l1 + ((addr >>> 12) & 0x1ff) * 8, ...pte((rand() & 0x7ff) << 12));
}

describe('VT-d fuzz', () => {
  it('a million accesses, garbage and looping tables, invalidation storms: no exception, every walk bounded, registers consistent', { timeout: 120_000 }, () => {
    const t = createTestBus({ ramBytes: 8 << 20 });
    const iommu = new IntelIommu({ ramBytes: t.ram.length });
    t.attach(iommu);
    let msis = 0;
    iommu.msi = () => msis++;
    const rand = xorshift32(0x5eed1234);
    const pick = <T>(xs: readonly T[]): T => xs[rand() % xs.length];
    const tablePage = () => TABLES + (rand() % TABLE_PAGES) * 4096;
    /** A plausible entry: present bits, a pointer into the table pages (often its own, or the root), sometimes junk. */
    const entry = (self: number): [number, number] => {
      switch (rand() % 8) {
        case 0: return [rand(), rand()]; // pure garbage
        case 1: return [(self & ~0xfff) | (rand() & 0xfff), 0]; // itself: a self-referencing table
        case 2: return [TABLES | 1 | (rand() & 2), 0]; // back to the root table: a loop
        case 3: return [(rand() & 0xfffff000) | 3, 0]; // anywhere, maybe outside RAM
        case 4: return [((rand() & 0xff) << 8) | 1, 0]; // what a context entry's upper half holds: domain, AW 1
        case 5: return [tablePage() | (rand() & 0xff), rand() & 0x7ff];
        default: return [tablePage() | (rand() & 3) | (rand() % 16 === 0 ? 0x80 : 0), rand() % 4 === 0 ? (rand() & 0xffff) << 8 | (rand() & 7) : 0];
      }
    };
    let chainSid = 0;
    let chainAddr = 0;
    let accesses = 0;
    let translations = 0;
    const N = 1_000_000;
    while (accesses < N) {
      const op = rand() % 100;
      if (op < 45) {
        // A register access: random or known offset, random width, read or write.
        const off = rand() % 3 === 0 ? pick(KNOWN) : rand() % 0x1000;
        const size = pick([1, 2, 4, 4, 4] as const);
        const addr = VTD_BASE + Math.min(off, 0x1000 - size);
        if (rand() & 1) {
          const v = rand();
          if (size === 1) t.mmioWrite8(addr, v & 0xff);
          else if (size === 2) t.mmioWrite16(addr, v & 0xffff);
          else t.mmioWrite32(addr, v);
        } else if (size === 1) t.mmioRead8(addr);
        else if (size === 2) t.mmioRead16(addr);
        else t.mmioRead32(addr);
        accesses++;
      } else if (op < 60) {
        // Garbage into a table entry.
        const at = tablePage() + (rand() % 512) * 8;
        const [lo, hi] = entry(at);
        write64(t.ram, at, lo, hi);
        accesses++;
      } else if (op < 65) {
        // A driver's moves, to reach deep walks: a nearly right chain, root table at the table area, TE on.
        chainSid = rand() & 0x0f;
        chainAddr = rand() & 0x3fffff;
        nearlyRightChain(t.ram, rand, chainSid, chainAddr);
        t.mmioWrite32(VTD_BASE + VTD.RTADDR, rand() % 4 === 0 ? rand() : TABLES);
        t.mmioWrite32(VTD_BASE + VTD.RTADDR + 4, rand() % 8 === 0 ? rand() : 0);
        t.mmioWrite32(VTD_BASE + VTD.GCMD, 1 << 30);
        t.mmioWrite32(VTD_BASE + VTD.GCMD, (rand() % 8 === 0 ? 0 : 1 << 31) | (rand() % 16 === 0 ? rand() & 0x3f800000 : 0));
        accesses += 4;
      } else if (op < 70) {
        // An invalidation storm.
        const n = 1 + (rand() % 32);
        for (let i = 0; i < n; i++) {
          t.mmioWrite32(VTD_BASE + VTD.CCMD, rand());
          t.mmioWrite32(VTD_BASE + VTD.CCMD + 4, (rand() | 0x80000000) >>> 0);
          t.mmioWrite32(VTD_BASE + VTD.IVA, rand());
          t.mmioWrite32(VTD_BASE + VTD.IOTLB + 4, (rand() | 0x80000000) >>> 0);
          expect(t.mmioRead32(VTD_BASE + VTD.CCMD + 4) >>> 31).toBe(0);
          expect(t.mmioRead32(VTD_BASE + VTD.IOTLB + 4) >>> 31).toBe(0);
        }
        accesses += n * 6;
      } else if (op === 70 && rand() % 16 === 0) {
        // The panel's view of a source over the same garbage: bounded by its budget.
        const v = iommu.describeContext(rand() & 0x1f, 4096);
        expect(v.runs.length).toBeLessThanOrEqual(4096);
      } else {
        // Translations from a few sources (the ones with garbage context entries) and random ones.
        const near = rand() % 2 === 0;
        const sid = near ? chainSid : rand() % 4 === 0 ? rand() & 0xffff : rand() & 0x0f;
        const a = near ? chainAddr + (rand() & 0xfff) : rand() % 2 === 0 ? rand() : rand() & 0x3fffff;
        const r = iommu.translate(sid, a, (rand() & 1) === 1);
        expect(r === -1 || (Number.isInteger(r) && r >= 0 && r <= 0xffffffff)).toBe(true);
        translations++;
      }
      if ((accesses & 0x3fff) === 0) {
        // Consistency of what the guest reads.
        const fsts = t.mmioRead32(VTD_BASE + VTD.FSTS);
        let pending = false;
        for (let i = 0; i < VTD_NFR; i++) {
          const hi = t.mmioRead32(VTD_BASE + VTD_FRCD + i * 16 + 12);
          if (hi & FRCD_HI_F) {
            pending = true;
            expect(hi & 0xff).toBeGreaterThanOrEqual(1);
            expect(hi & 0xff).toBeLessThanOrEqual(0xd);
          }
        }
        expect((fsts & FSTS_PPF) !== 0).toBe(pending);
        expect(t.mmioRead32(VTD_BASE + VTD.GSTS) & ~(GSTS_TES | GSTS_RTPS)).toBe(0);
        expect(iommu.describe().iotlbEntries).toBeLessThanOrEqual(4096);
      }
    }
    const c = iommu.state.counters;
    // The run reached the parts it is meant to: real walks, faults of many kinds, cache hits, events.
    expect(accesses).toBeGreaterThanOrEqual(N);
    expect(translations).toBeGreaterThan(40_000);
    expect(c.faults).toBeGreaterThan(1000);
    expect(c.iotlbHits + c.iotlbMisses).toBeGreaterThan(1000);
    expect(c.badAccesses).toBeGreaterThan(1000);
    expect(msis).toBeGreaterThan(0);
    // Every walk bounded: a context walk reads at most 4 qwords (root and context entries),
    // a page walk at most 3, whatever loops the tables make; the unit's DMA row counts them.
    expect(t.stats('dmar').dmaBytesRead).toBeLessThanOrEqual(c.contextMisses * 32 + c.iotlbMisses * 24);
  });

  it('every fault reason the walk can give is reached by nearly right tables', () => {
    const t = createTestBus({ ramBytes: 8 << 20 });
    const iommu = new IntelIommu({ ramBytes: t.ram.length });
    t.attach(iommu);
    const rand = xorshift32(77);
    const seen = new Set<number>();
    let ok = 0;
    t.mmioWrite32(VTD_BASE + VTD.GCMD, 1 << 31);
    for (let round = 0; round < 20_000; round++) {
      const sid = rand() & 0x3f;
      const addr = rand() & 0x3fffffff;
      nearlyRightChain(t.ram, rand, sid, addr);
      // Root table at the tables, or (rarely) outside RAM; SRTP flushes the caches each round.
      t.mmioWrite32(VTD_BASE + VTD.RTADDR, rand() % 50 === 0 ? 0xfff00000 : TABLES);
      t.mmioWrite32(VTD_BASE + VTD.GCMD, (1 << 30) | (1 << 31));
      if (iommu.translate(sid, addr, (rand() & 1) === 1) >= 0) ok++;
      for (const f of iommu.faultLog) seen.add(f.reason);
      iommu.faultLog.length = 0;
    }
    expect(ok).toBeGreaterThan(1000);
    // Reason 4 (beyond MGAW) cannot happen with 32-bit addresses and a 39-bit width.
    expect([...seen].sort((a, b) => a - b)).toEqual([1, 2, 3, 5, 6, 7, 8, 9, 0xa, 0xb, 0xc, 0xd]);
  });
});
