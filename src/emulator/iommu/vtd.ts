/**
 * A guest-visible Intel VT-d DMA-remapping unit (Intel "Virtualization Technology for
 * Directed I/O" architecture specification, legacy mode), at QEMU's address 0xFED90000:
 * the register window of vtd-regs.ts, root/context/second-level translation of every
 * bus-master request by its source id (vtd-walk.ts), register-based invalidation of a
 * context cache and an IOTLB, and fault recording with the fault event as an MSI.
 *
 * An i440FX with VT-d never existed as hardware (QEMU offers intel-iommu only on q35, by
 * policy); this is a synthetic PC that lets a guest's own intel-iommu driver fence the
 * PIIX3's IDE and any other bus master.
 *
 * Caches (§6.1, §6.5): the context cache (by source id) and the IOTLB (by domain and
 * page) keep only present, valid entries (CAP.CM = 0: a not-present entry is never cached,
 * so a guest filling one needs no invalidation), and an entry stays in use until the guest
 * invalidates it (CCMD, IOTLB) or sets a root table (SRTP flushes both, as QEMU does). A
 * saved state carries the registers, not the caches: a loaded unit starts with them empty.
 *
 * For the machine: `translator(sourceId)` is the DmaTranslate to give the bus for a
 * device; `msi` sends the fault event (decode with msi.ts); `describe()` for views.
 */
import type { AccessSize, Device, DeviceContext, DeviceState, DmaHandle } from '../bus/device.ts';
import type { DmaTranslate } from '../bus/platform-bus.ts';
import {
  CCMD_HI_CAIG_SHIFT, CCMD_HI_CIRG_SHIFT, CCMD_HI_ICC, DWORD_RESET, DWORD_W1C, DWORD_WRITABLE, FECTL_IM, FECTL_IP,
  FRCD_HI_F, FRCD_HI_T, FSTS_FRI_SHIFT, FSTS_PFO, FSTS_PPF, GCMD_CFI, GCMD_EAFL, GCMD_IRE, GCMD_QIE, GCMD_SFL, GCMD_SIRTP,
  GCMD_SRTP, GCMD_TE, GSTS_RTPS, GSTS_TES, IOTLB_HI_IAIG_SHIFT, IOTLB_HI_IIRG_SHIFT, IOTLB_HI_IVT, VTD, VTD_BASE, VTD_FR,
  VTD_FR_TEXT, VTD_FRCD, VTD_MAMV, VTD_NFR, VTD_WINDOW,
} from './vtd-regs.ts';
import { walkContext, walkPages, type QwordReader, type VtdContext } from './vtd-walk.ts';
import { dwords, int, real, record, u32, vmstate, type VmStateOf } from '../bus/vmstate.ts';
/** The interrupt address range (§3.13): writes there are interrupt requests, never translated. */
const INTERRUPT_LO = 0xfee00000;
const INTERRUPT_HI = 0xfeefffff;
/** IOTLB entries kept at most (a cache may drop anything at any time; the guest never notices). */
const IOTLB_MAX = 4096;
/** Faults kept in the decoded log (the page's panel, --stats). */
const FAULT_LOG_MAX = 64;

const dw = (offset: number) => offset >>> 2;
const D_GSTS = dw(VTD.GSTS);
const D_RTADDR = dw(VTD.RTADDR);
const D_CCMD_HI = dw(VTD.CCMD) + 1;
const D_FSTS = dw(VTD.FSTS);
const D_FECTL = dw(VTD.FECTL);
const D_FEDATA = dw(VTD.FEDATA);
const D_FEADDR = dw(VTD.FEADDR);
const D_IVA = dw(VTD.IVA);
const D_IOTLB_HI = dw(VTD.IOTLB) + 1;
const D_FRCD = dw(VTD_FRCD);

const count = real(0);

/**
 * The unit's state (DESIGN.md seam 2): the register window as the guest reads it, the root
 * table latched by the last SRTP, where the next fault record goes, and the counters. The
 * caches are not state: a loaded unit starts with them empty (as after an SRTP).
 */
export const VTD_STATE = vmstate('intel-iommu', 1, {
  /** The 4 KiB register window as dwords. */
  regs: dwords(VTD_WINDOW / 4),
  /** The root table address latched by the last GCMD.SRTP (RTADDR bits 31:0 and 63:32). */
  rtaLo: u32,
  rtaHi: u32,
  /** The record the next fault goes to (QEMU's next_frcd_reg); FSTS.FRI names the first pending one. */
  nextFrcd: int(0, VTD_NFR - 1),
  counters: record({
    /** Requests translated while TE was on (interrupt-range writes excluded). */
    translations: count,
    iotlbHits: count,
    iotlbMisses: count,
    contextHits: count,
    contextMisses: count,
    /** Requests that faulted, and what became of each: a record, collapsed into one, dropped (PFO), not recorded (FPD). */
    faults: count,
    faultsRecorded: count,
    faultsCollapsed: count,
    faultsDropped: count,
    faultsSuppressed: count,
    /** Fault events sent as an MSI. */
    faultEvents: count,
    contextInvalidations: count,
    iotlbInvalidations: count,
    /** Register accesses the spec leaves undefined (not an aligned dword write), ignored. */
    badAccesses: count,
    /** GCMD commands this unit does not offer (QIE, IRE, SIRTP, SFL, EAFL, CFI), ignored. */
    unsupportedCommands: count,
  }),
});
export type VtdState = VmStateOf<typeof VTD_STATE>;
export type VtdCounters = VtdState['counters'];

/** One fault as the unit saw it (a decoded view; the guest's own records are the FRCD registers). */
export interface VtdFault {
  atNs: number;
  sourceId: number;
  addr: number;
  write: boolean;
  reason: number;
  reasonText: string;
  outcome: 'recorded' | 'collapsed' | 'dropped' | 'not recorded (FPD)';
}

const newCounters = (): VtdCounters => ({
  translations: 0, iotlbHits: 0, iotlbMisses: 0, contextHits: 0, contextMisses: 0, faults: 0, faultsRecorded: 0,
  faultsCollapsed: 0, faultsDropped: 0, faultsSuppressed: 0, faultEvents: 0, contextInvalidations: 0,
  iotlbInvalidations: 0, badAccesses: 0, unsupportedCommands: 0,
});

function initialState(): VtdState {
  return { regs: DWORD_RESET.slice(), rtaLo: 0, rtaHi: 0, nextFrcd: 0, counters: newCounters() };
}

export interface IntelIommuOptions {
  /** Guest RAM in bytes: the walk reads tables only there (not ROM, not device registers). */
  ramBytes: number;
  /** Register window base (default 0xFED90000). */
  base?: number;
}

/** "00:01.1" for a source id. */
export function formatSourceId(sid: number): string {
  return `${(sid >>> 8).toString(16).padStart(2, '0')}:${((sid >>> 3) & 0x1f).toString(16).padStart(2, '0')}.${sid & 7}`;
}

export class IntelIommu implements Device {
  readonly name = 'dmar';
  state: VtdState = initialState();
  /** The fault event: an MSI write of FEDATA to FEADDR (msi.ts decodes it for the local APIC). */
  msi: (address: number, data: number) => void = () => {};
  /** Decoded faults, newest last (at most 64). */
  readonly faultLog: VtdFault[] = [];
  readonly base: number;
  private readonly ramBytes: number;
  private readonly contextCache = new Map<number, VtdContext>();
  private readonly iotlb = new Map<number, number>();
  private ctx: DeviceContext | null = null;
  private dma: DmaHandle | null = null;
  private readonly entry = new Uint32Array(2);
  private readonly bytes = new Uint8Array(8);
  private readonly read: QwordReader;

  constructor(options: IntelIommuOptions) {
    this.ramBytes = options.ramBytes;
    this.base = options.base ?? VTD_BASE;
    const b = this.bytes;
    this.read = (addr, out) => {
      // Tables live in RAM: not beyond it, not in the legacy VGA/ROM hole (0xA0000-0xFFFFF).
      if (!this.dma || addr + 8 > this.ramBytes || (addr >= 0xa0000 && addr < 0x100000)) return false;
      this.dma.read(addr, b);
      out[0] = (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
      out[1] = (b[4] | (b[5] << 8) | (b[6] << 16) | (b[7] << 24)) >>> 0;
      return true;
    };
  }

  attach(ctx: DeviceContext): void {
    this.ctx = ctx;
    this.dma = ctx.dma;
    ctx.mapMmio(this.base, VTD_WINDOW, { read: (o, s) => this.readRegister(o, s), write: (o, s, v) => this.writeRegister(o, s, v) });
  }

  reset(): void {
    const counters = this.state.counters;
    this.state = initialState();
    this.state.counters = counters;
    this.flushCaches();
  }

  // -------------------------------------------------------------------------------------
  // The register window
  // -------------------------------------------------------------------------------------

  readRegister(offset: number, size: AccessSize): number {
    const regs = this.state.regs;
    const d = offset >>> 2;
    const shift = (offset & 3) * 8;
    let v = regs[d] >>> shift;
    // An access crossing into the next dword (the spec leaves it undefined; read the bytes).
    if (shift + size * 8 > 32 && d + 1 < regs.length) v |= regs[d + 1] << (32 - shift);
    if (size === 4) return v | 0;
    return v & ((1 << (size * 8)) - 1);
  }

  writeRegister(offset: number, size: AccessSize, value: number): void {
    // §10.2: software accesses registers as aligned dwords or qwords; anything else is ignored.
    if (size !== 4 || (offset & 3) !== 0 || offset >= VTD_WINDOW) {
      this.state.counters.badAccesses++;
      this.ctx?.log(`${size}-byte write at offset 0x${offset.toString(16)} ignored (VT-d registers take aligned dwords)`);
      return;
    }
    const v = value >>> 0;
    const d = offset >>> 2;
    if (d === dw(VTD.GCMD)) {
      this.command(v);
      return;
    }
    const regs = this.state.regs;
    const wm = DWORD_WRITABLE[d];
    const w1c = DWORD_W1C[d];
    if (wm === 0 && w1c === 0) return; // read-only or reserved
    const old = regs[d];
    regs[d] = (((old & ~wm) | (v & wm)) & ~(v & w1c)) >>> 0;
    if (d === D_CCMD_HI && (regs[d] & CCMD_HI_ICC) !== 0) this.invalidateContext();
    else if (d === D_IOTLB_HI && (regs[d] & IOTLB_HI_IVT) !== 0) this.invalidateIotlb();
    else if (w1c !== 0 && (v & w1c) !== 0) this.faultStatusCleared();
    else if (d === D_FECTL) this.fectlWritten();
  }

  /** GCMD (§10.4.4): one command at a time, the other bits repeating GSTS; each completes at once. */
  private command(v: number): void {
    const regs = this.state.regs;
    if ((v & (GCMD_QIE | GCMD_IRE | GCMD_SIRTP | GCMD_SFL | GCMD_EAFL | GCMD_CFI)) !== 0) {
      this.state.counters.unsupportedCommands++;
      this.ctx?.log(`GCMD 0x${v.toString(16)}: queued invalidation, interrupt remapping and fault logs are not offered (ECAP/CAP say so); ignored`);
    }
    if (v & GCMD_SRTP) {
      this.state.rtaLo = regs[D_RTADDR];
      this.state.rtaHi = regs[D_RTADDR + 1];
      regs[D_GSTS] |= GSTS_RTPS;
      // A new root table: nothing cached from the old one may be used (QEMU resets its caches too).
      this.flushCaches();
    }
    // WBF: there is no write buffer to flush (CAP.RWBF = 0); GSTS.WBFS reads 0 at once.
    regs[D_GSTS] = ((regs[D_GSTS] & ~GSTS_TES) | (v & GCMD_TE ? GSTS_TES : 0)) >>> 0;
  }

  /** CCMD with ICC set (§10.4.7, §6.5.1.1): global, domain or device granularity, done at once. */
  private invalidateContext(): void {
    const regs = this.state.regs;
    const lo = regs[D_CCMD_HI - 1];
    const hi = regs[D_CCMD_HI];
    const cirg = (hi >>> CCMD_HI_CIRG_SHIFT) & 3;
    const did = lo & 0xffff;
    const sid = lo >>> 16;
    const fm = hi & 3;
    // FM masks the low 0-3 bits of the function number (§10.4.7: 00 none, 01 bit 2, 10 bits 2:1, 11 bits 2:0).
    const sidMask = ~([0, 4, 6, 7][fm]) & 0xffff;
    if (cirg === 1) this.contextCache.clear();
    else if (cirg === 2) {
      for (const [k, c] of this.contextCache) if (c.did === did) this.contextCache.delete(k);
    } else if (cirg === 3) {
      for (const k of this.contextCache.keys()) if ((k & sidMask) === (sid & sidMask)) this.contextCache.delete(k);
    }
    // CAIG reports the granularity done (0: the request was invalid); ICC clears: complete.
    regs[D_CCMD_HI] = ((hi & ~CCMD_HI_ICC & ~(3 << CCMD_HI_CAIG_SHIFT)) | (cirg << CCMD_HI_CAIG_SHIFT)) >>> 0;
    this.state.counters.contextInvalidations++;
  }

  /** IOTLB with IVT set (§10.4.8.1, §6.5.1.2): global, domain or page-selective, done at once. */
  private invalidateIotlb(): void {
    const regs = this.state.regs;
    const hi = regs[D_IOTLB_HI];
    let iirg = (hi >>> IOTLB_HI_IIRG_SHIFT) & 3;
    const did = hi & 0xffff;
    if (iirg === 1) this.iotlb.clear();
    else if (iirg === 2) this.dropDomain(did);
    else if (iirg === 3) {
      const am = regs[D_IVA] & 0x3f;
      if (am > VTD_MAMV) iirg = 0; // beyond CAP.MAMV: an invalid request, nothing done
      else {
        const pages = 2 ** am;
        const first = Math.floor((((regs[D_IVA] & 0xfffff000) >>> 0) / 4096) / pages) * pages;
        // IVA bits 38:32 put the range above 4 GiB, where this machine maps nothing.
        if (regs[D_IVA + 1] === 0) {
          const keyBase = did * 0x100000;
          if (pages <= 64) for (let p = first; p < first + pages && p < 0x100000; p++) this.iotlb.delete(keyBase + p);
          else for (const k of this.iotlb.keys()) if (k >= keyBase + first && k < keyBase + first + pages) this.iotlb.delete(k);
        }
      }
    }
    regs[D_IOTLB_HI] = ((hi & ~IOTLB_HI_IVT & ~(3 << IOTLB_HI_IAIG_SHIFT)) | (iirg << IOTLB_HI_IAIG_SHIFT)) >>> 0;
    this.state.counters.iotlbInvalidations++;
  }

  private dropDomain(did: number): void {
    for (const k of this.iotlb.keys()) if (Math.floor(k / 0x100000) === did) this.iotlb.delete(k);
  }

  private flushCaches(): void {
    this.contextCache.clear();
    this.iotlb.clear();
  }

  // -------------------------------------------------------------------------------------
  // Translation (§3.4, §3.7)
  // -------------------------------------------------------------------------------------

  /** Translate one request of source id `sid` for the page holding `addr`: the physical address, or -1 (recorded fault). */
  translate(sid: number, addr: number, write: boolean): number {
    const s = this.state;
    const a = addr >>> 0;
    if ((s.regs[D_GSTS] & GSTS_TES) === 0) return a;
    // Writes to the interrupt range are interrupt requests, outside DMA remapping (§3.13).
    if (write && a >= INTERRUPT_LO && a <= INTERRUPT_HI) return a;
    const c = s.counters;
    c.translations++;
    let ctx = this.contextCache.get(sid);
    if (ctx) c.contextHits++;
    else {
      c.contextMisses++;
      const found = walkContext(s.rtaLo, s.rtaHi, sid, this.read, this.entry);
      if (typeof found === 'number') return this.fault(sid, a, write, found, false);
      ctx = found;
      this.contextCache.set(sid, ctx);
    }
    const key = ctx.did * 0x100000 + (a >>> 12);
    let pte = this.iotlb.get(key);
    if (pte !== undefined) c.iotlbHits++;
    else {
      c.iotlbMisses++;
      pte = walkPages(ctx, a, write, this.read, this.entry);
      if (pte < 0) return this.fault(sid, a, write, -pte, ctx.fpd);
      if (this.iotlb.size >= IOTLB_MAX) this.iotlb.clear();
      this.iotlb.set(key, pte);
    }
    // A cached entry's rights are the ones used until the guest invalidates it.
    if ((pte & (write ? 2 : 1)) === 0) return this.fault(sid, a, write, write ? VTD_FR.WRITE : VTD_FR.READ, ctx.fpd);
    return (((pte & 0xfffff000) >>> 0) + (a & 0xfff)) >>> 0;
  }

  /** The bus's hook for the device with source id `sid` (bus << 8 | device << 3 | function). */
  translator(sid: number): DmaTranslate {
    return (addr, write) => this.translate(sid, addr, write);
  }

  // -------------------------------------------------------------------------------------
  // Fault recording (§7.3) as QEMU does it (vtd_report_dmar_fault)
  // -------------------------------------------------------------------------------------

  private fault(sid: number, addr: number, write: boolean, reason: number, fpd: boolean): number {
    const s = this.state;
    const regs = s.regs;
    const c = s.counters;
    c.faults++;
    let outcome: VtdFault['outcome'];
    const fsts = regs[D_FSTS];
    if (fpd) {
      outcome = 'not recorded (FPD)';
      c.faultsSuppressed++;
    } else if (fsts & FSTS_PFO) {
      // An overflow not yet cleared: later faults are lost.
      outcome = 'dropped';
      c.faultsDropped++;
    } else if (this.pendingFrom(sid)) {
      // A record from this source is still pending: the repeat is collapsed into it.
      outcome = 'collapsed';
      c.faultsCollapsed++;
    } else {
      const i = s.nextFrcd;
      const d = D_FRCD + i * 4;
      if (regs[d + 3] & FRCD_HI_F) {
        regs[D_FSTS] |= FSTS_PFO;
        outcome = 'dropped';
        c.faultsDropped++;
        this.faultEvent(fsts);
      } else {
        regs[d] = (addr & 0xfffff000) >>> 0;
        regs[d + 1] = 0;
        regs[d + 2] = sid & 0xffff;
        regs[d + 3] = (FRCD_HI_F | (write ? 0 : FRCD_HI_T) | (reason & 0xff)) >>> 0;
        // FRI names the first pending record: set only when none was pending before.
        if ((fsts & FSTS_PPF) === 0) regs[D_FSTS] = ((regs[D_FSTS] & ~(0xff << FSTS_FRI_SHIFT)) | (i << FSTS_FRI_SHIFT)) >>> 0;
        regs[D_FSTS] |= FSTS_PPF;
        s.nextFrcd = (i + 1) % VTD_NFR;
        outcome = 'recorded';
        c.faultsRecorded++;
        this.faultEvent(fsts);
      }
    }
    if (this.faultLog.length >= FAULT_LOG_MAX) this.faultLog.shift();
    this.faultLog.push({ atNs: this.ctx?.clock.now() ?? 0, sourceId: sid, addr, write, reason, reasonText: VTD_FR_TEXT[reason] ?? `reason ${reason}`, outcome });
    return -1;
  }

  private pendingFrom(sid: number): boolean {
    const regs = this.state.regs;
    for (let i = 0; i < VTD_NFR; i++) {
      const d = D_FRCD + i * 4;
      if ((regs[d + 3] & FRCD_HI_F) !== 0 && (regs[d + 2] & 0xffff) === sid) return true;
    }
    return false;
  }

  /** The fault event (§7.3.1): only when no earlier condition is waiting for software; an MSI unless FECTL.IM. */
  private faultEvent(previousFsts: number): void {
    if (previousFsts & (FSTS_PPF | FSTS_PFO)) return;
    const regs = this.state.regs;
    regs[D_FECTL] |= FECTL_IP;
    if ((regs[D_FECTL] & FECTL_IM) === 0) this.sendFaultEvent();
  }

  private sendFaultEvent(): void {
    const regs = this.state.regs;
    regs[D_FECTL] = (regs[D_FECTL] & ~FECTL_IP) >>> 0;
    this.state.counters.faultEvents++;
    this.msi(regs[D_FEADDR], regs[D_FEDATA]);
  }

  /** A record's F or FSTS.PFO was cleared: PPF follows the records; IP clears once nothing is pending. */
  private faultStatusCleared(): void {
    const regs = this.state.regs;
    let pending = false;
    for (let i = 0; i < VTD_NFR; i++) if (regs[D_FRCD + i * 4 + 3] & FRCD_HI_F) pending = true;
    regs[D_FSTS] = pending ? regs[D_FSTS] | FSTS_PPF : (regs[D_FSTS] & ~FSTS_PPF) >>> 0;
    if ((regs[D_FSTS] & (FSTS_PPF | FSTS_PFO)) === 0) regs[D_FECTL] = (regs[D_FECTL] & ~FECTL_IP) >>> 0;
  }

  /** Unmasking with an event pending sends it (§10.4.10). */
  private fectlWritten(): void {
    const f = this.state.regs[D_FECTL];
    if ((f & FECTL_IP) !== 0 && (f & FECTL_IM) === 0) this.sendFaultEvent();
  }

  // -------------------------------------------------------------------------------------
  // Views and state
  // -------------------------------------------------------------------------------------

  /** What the page's panel and --stats show. */
  describe(): {
    translation: boolean; rootTable: number; iotlbEntries: number; contextEntries: number; counters: VtdCounters;
    records: { index: number; sourceId: string; addr: number; write: boolean; reason: number; reasonText: string }[];
    faultStatus: number; faults: (VtdFault & { source: string })[];
  } {
    const s = this.state;
    const regs = s.regs;
    const records = [];
    for (let i = 0; i < VTD_NFR; i++) {
      const d = D_FRCD + i * 4;
      if ((regs[d + 3] & FRCD_HI_F) === 0) continue;
      const reason = regs[d + 3] & 0xff;
      records.push({ index: i, sourceId: formatSourceId(regs[d + 2] & 0xffff), addr: regs[d], write: (regs[d + 3] & FRCD_HI_T) === 0, reason, reasonText: VTD_FR_TEXT[reason] ?? `reason ${reason}` });
    }
    return {
      translation: (regs[D_GSTS] & GSTS_TES) !== 0,
      rootTable: s.rtaHi * 2 ** 32 + s.rtaLo,
      iotlbEntries: this.iotlb.size,
      contextEntries: this.contextCache.size,
      counters: { ...s.counters },
      records,
      faultStatus: regs[D_FSTS],
      faults: this.faultLog.map((f) => ({ ...f, source: formatSourceId(f.sourceId) })),
    };
  }

  /**
   * What the guest has set up for source id `sid`, read from its tables now (not from the
   * caches, which it changes nothing in): the context's domain and levels, and the mapped
   * pages summarised as runs (consecutive IOVA pages onto consecutive physical pages with
   * the same rights). Reads at most `budget` page-table entries (`truncated` says so), so a
   * garbage table costs a bounded time. For the page's IOMMU panel.
   */
  describeContext(sid: number, budget = 1 << 16): {
    sourceId: string; present: boolean; fault?: string; domain?: number; levels?: number;
    runs: { iova: number; phys: number; pages: number; read: boolean; write: boolean }[]; truncated: boolean;
  } {
    const s = this.state;
    const e = new Uint32Array(2);
    const source = formatSourceId(sid);
    const found = walkContext(s.rtaLo, s.rtaHi, sid, this.read, e);
    if (typeof found === 'number') return { sourceId: source, present: false, fault: VTD_FR_TEXT[found], runs: [], truncated: false };
    const runs: { iova: number; phys: number; pages: number; read: boolean; write: boolean }[] = [];
    let reads = 0;
    let truncated = false;
    const leaf = (iova: number, phys: number, rights: number) => {
      const last = runs.at(-1);
      const read = (rights & 1) !== 0;
      const write = (rights & 2) !== 0;
      if (last && last.iova + last.pages * 4096 === iova && last.phys + last.pages * 4096 === phys && last.read === read && last.write === write) last.pages++;
      else runs.push({ iova, phys, pages: 1, read, write });
    };
    const walk = (table: number, level: number, base: number, rights: number): void => {
      // Level 3 covers 1 GiB an entry; only the first 4 entries reach 32-bit addresses.
      const entries = level === 3 ? 4 : 512;
      for (let i = 0; i < entries && !truncated; i++) {
        if (++reads > budget) {
          truncated = true;
          return;
        }
        if (!this.read((table + i * 8) >>> 0, e)) return;
        const r = rights & e[0] & 3;
        if (r === 0 || e[1] !== 0 || (level > 1 && (e[0] & 0x80) !== 0)) continue;
        const iova = base + i * 2 ** (12 + 9 * (level - 1));
        const next = (e[0] & 0xfffff000) >>> 0;
        if (level === 1) leaf(iova, next, r);
        else walk(next, level - 1, iova, r);
      }
    };
    walk(found.slptptr, found.levels, 0, 3);
    return { sourceId: source, present: true, domain: found.did, levels: found.levels, runs, truncated };
  }

  saveState(): DeviceState {
    return VTD_STATE.save(this.state);
  }

  loadState(saved: DeviceState): void {
    this.state = VTD_STATE.load(saved, this.name);
    this.flushCaches();
  }
}
