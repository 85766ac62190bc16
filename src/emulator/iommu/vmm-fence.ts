/**
 * The VMM's own fence for a direct-assigned device (issue 7, issue 23 item 5): what
 * KVM/VFIO do with the host IOMMU for a passed-through device. The device's DMA
 * addresses are guest-physical; the VMM's domain maps exactly the guest's RAM, identity,
 * and refuses everything else — the legacy VGA/ROM hole (0xA0000-0xFFFFF), the BIOS,
 * device registers, anything beyond RAM. A refused page is recorded in the VMM's fault
 * log, which is the host's and kept apart from the guest's VT-d fault records (a guest
 * never sees it: on real hardware the host IOMMU's faults go to the host kernel).
 *
 *   const fence = new VmmFence({ ramBytes, clock });
 *   bus.setDmaTranslate(bus.rowOf(device), fence.translator(device.name));
 *   // behind a guest IOMMU too: fence.behind(iommu.translator(sid), device.name)
 */
import type { Clock } from '../bus/device.ts';
import type { DmaTranslate } from '../bus/platform-bus.ts';

/** A DMA the fence refused. */
export interface VmmFault {
  atNs: number;
  device: string;
  /** The guest-physical address the device used (after the guest's own IOMMU, if any). */
  addr: number;
  write: boolean;
  /** What lies there, in words. */
  reason: 'legacy VGA/ROM hole' | 'beyond guest RAM';
}

const FAULT_LOG_MAX = 64;
const HOLE_START = 0xa0000;
const HOLE_END = 0x100000;

export class VmmFence {
  /** The refused pages, newest last (at most 64). */
  readonly log: VmmFault[] = [];
  /** Pages allowed and refused, for every device behind the fence. */
  readonly counters = { allowed: 0, refused: 0 };
  readonly ramBytes: number;
  private readonly clock: Pick<Clock, 'now'> | null;

  constructor(options: { ramBytes: number; clock?: Pick<Clock, 'now'> }) {
    this.ramBytes = options.ramBytes;
    this.clock = options.clock ?? null;
  }

  /** Is the 4 KiB page holding guest-physical `addr` the guest's RAM? */
  mapped(addr: number): boolean {
    const a = addr >>> 0;
    if (a >= HOLE_START && a < HOLE_END) return false;
    return (a & ~0xfff) >>> 0 < this.ramBytes;
  }

  /** Check one page of a transfer by `device`: the address itself (identity), or -1 recorded. */
  check(device: string, addr: number, write: boolean): number {
    const a = addr >>> 0;
    if (this.mapped(a)) {
      this.counters.allowed++;
      return a;
    }
    this.counters.refused++;
    if (this.log.length >= FAULT_LOG_MAX) this.log.shift();
    this.log.push({ atNs: this.clock?.now() ?? 0, device, addr: a, write, reason: a >= HOLE_START && a < HOLE_END ? 'legacy VGA/ROM hole' : 'beyond guest RAM' });
    return -1;
  }

  /** The DmaTranslate for `device`: give it to bus.setDmaTranslate(row, ...). */
  translator(device: string): DmaTranslate {
    return (addr, write) => this.check(device, addr, write);
  }

  /** The fence behind a guest translation (the guest's VT-d first, then the VMM's domain). */
  behind(guest: DmaTranslate, device: string): DmaTranslate {
    return (addr, write) => {
      const gpa = guest(addr, write);
      return gpa < 0 ? -1 : this.check(device, gpa, write);
    };
  }

  describe(): { ramBytes: number; counters: { allowed: number; refused: number }; faults: VmmFault[] } {
    return { ramBytes: this.ramBytes, counters: { ...this.counters }, faults: this.log.map((f) => ({ ...f })) };
  }
}
