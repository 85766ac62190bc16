/**
 * Builds VT-d tables in a test bus's RAM (root table, context tables, 3-level second-level
 * tables) the way a guest driver does, for the unit's tests and the fuzz test. Not used by
 * the machine.
 */
import type { TestBus } from '../bus/test-harness.ts';
import type { DeviceContext } from '../bus/device.ts';
import { IntelIommu } from './vtd.ts';
import { GCMD_SRTP, GCMD_TE, VTD, VTD_BASE } from './vtd-regs.ts';

export function write64(ram: Uint8Array, addr: number, lo: number, hi = 0): void {
  const v = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  v.setUint32(addr, lo >>> 0, true);
  v.setUint32(addr + 4, hi >>> 0, true);
}

export function read64(ram: Uint8Array, addr: number): [number, number] {
  const v = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  return [v.getUint32(addr, true), v.getUint32(addr + 4, true)];
}

/** A simple page-table allocator over a region of RAM, and the tables it builds. */
export class VtdTables {
  private next: number;
  constructor(readonly ram: Uint8Array, readonly root: number, tablesFrom: number) {
    this.next = tablesFrom;
  }

  alloc(): number {
    const a = this.next;
    this.ram.fill(0, a, a + 4096);
    this.next += 4096;
    return a;
  }

  /** Root entry for `bus` pointing at a context table (allocated when not given). */
  setRoot(bus: number, contextTable = this.alloc()): number {
    write64(this.ram, this.root + bus * 16, contextTable | 1);
    write64(this.ram, this.root + bus * 16 + 8, 0);
    return contextTable;
  }

  /** Context entry for devfn: translate type, 3 levels (AW 1), domain `did`, a new level-3 table. */
  setContext(contextTable: number, devfn: number, did: number, opts: { fpd?: boolean; tt?: number; aw?: number; slptptr?: number } = {}): number {
    const slpt = opts.slptptr ?? this.alloc();
    write64(this.ram, contextTable + devfn * 16, slpt | ((opts.tt ?? 0) << 2) | (opts.fpd ? 2 : 0) | 1);
    write64(this.ram, contextTable + devfn * 16 + 8, (did << 8) | (opts.aw ?? 1));
    return slpt;
  }

  /** Map the 4 KiB page at `iova` to `phys` with rights (1 read, 2 write) under the level-3 table `slpt`. */
  map(slpt: number, iova: number, phys: number, rights = 3): number {
    let table = slpt;
    for (let level = 3; level > 1; level--) {
      const at = table + ((iova >>> (12 + 9 * (level - 1))) & 0x1ff) * 8;
      const [lo] = read64(this.ram, at);
      if ((lo & 3) === 0) {
        const t = this.alloc();
        write64(this.ram, at, t | 3);
        table = t;
      } else table = lo & 0xfffff000;
    }
    const leaf = table + ((iova >>> 12) & 0x1ff) * 8;
    write64(this.ram, leaf, (phys & 0xfffff000) | rights);
    return leaf;
  }
}

/** An IOMMU on a test bus with a pretend bus master `dev` at source id `sid` behind it. */
export function iommuWithMaster(t: TestBus, sid: number): { iommu: IntelIommu; dev: DeviceContext; row: number } {
  const iommu = new IntelIommu({ ramBytes: t.ram.length });
  t.attach(iommu);
  const row = t.bus.stats.add({ name: 'master' });
  const dev = t.bus.context(row, 'master');
  t.bus.setDmaTranslate(row, iommu.translator(sid));
  return { iommu, dev, row };
}

/** What a driver does to turn translation on: RTADDR low then high, SRTP, TE. */
export function enableTranslation(t: TestBus, root: number): void {
  t.mmioWrite32(VTD_BASE + VTD.RTADDR, root);
  t.mmioWrite32(VTD_BASE + VTD.RTADDR + 4, 0);
  t.mmioWrite32(VTD_BASE + VTD.GCMD, GCMD_SRTP);
  t.mmioWrite32(VTD_BASE + VTD.GCMD, GCMD_TE);
}
