/**
 * The block cache: translated blocks (codegen.ts) by the physical address of their first
 * instruction, compiled once a start address has been reached HOT_THRESHOLD times (as a
 * straight line, tier 1), translated again as a region over the page's hot code once
 * entered PROMOTE_THRESHOLD times (tier 2), and thrown away when the page they were read
 * from is written.
 *
 * Keeping translations coherent with memory (SDM vol.3 §11.6, self-modifying code: a
 * write to code takes effect for the next instruction fetched):
 *  - a page with translations is "watched": `codePages[page]` is set, the CPU's TLB
 *    gives it no direct write path (Cpu.protectCodePage), so every store to it (by the
 *    CPU, a page walk or a bus master's DMA) reaches PhysicalMemory, which calls
 *    invalidatePage before the store lands;
 *  - invalidation drops every block of the page and sets `cpu.blockExit`, so a block that
 *    wrote into its own page leaves after that instruction and the new bytes are decoded;
 *  - a page rewritten again and again (code and data sharing a page) is given up on after
 *    GIVE_UP invalidations and stays interpreted.
 * Chaining: each block keeps links to the blocks that ran after it (chain()), which
 * Cpu.runBlock follows without a lookup while a link's block is `valid` (every way a
 * block stops being the cache's translation for its address clears it).
 * With the `wasm` option (off by default), a region that is a loop wasm-region.ts can
 * take is compiled to WebAssembly instead of JavaScript (the first step of that tier).
 * Translations depend only on the bytes (and 32-bit code), so equal sources share one
 * compiled function: a block recompiled after an invalidation, or the same code at
 * another address, costs a decode and a Map lookup, not a new function for V8 to optimise.
 */
import type { Cpu } from '../cpu.ts';
import { alu, incDec, mul32, MUL_HIGH, neg, setMulFlags, shift } from '../alu.ts';
import { MAX_REGION, translateBlock } from './codegen.ts';
import { translateWasmLoop } from './wasm-region.ts';

/** Runs the block with n instructions retired so far in the slice, at most `end`; returns the new n. */
export type BlockFunction = (c: Cpu, n: number, end: number) => number;

export interface Block {
  readonly run: BlockFunction;
  /** Instructions of its first basic block (the budget the run loop checks on entry). */
  readonly count: number;
  /** Bytes of the region from the entry on, and before it (the CS limit checks). */
  readonly bytes: number;
  readonly before: number;
  /** 1: a straight-line translation calling the memory helpers; 2: a region with inline memory accesses. */
  readonly tier: number;
  /** Times a tier-1 block was looked up (it is promoted at PROMOTE_THRESHOLD). */
  entries: number;
  /** Physical address of its first instruction. */
  readonly phys: number;
  /**
   * Whether it is still the cache's block for `phys`: cleared when its page is written
   * (invalidatePage), when a promotion or another address's block takes its slot, and by
   * invalidateAll. A chain link (below) is followed only to a valid block.
   */
  valid: boolean;
  /**
   * The blocks run after it most recently, most recent first (block chaining, Cpu.runBlock):
   * the run loop goes on to one of these when it starts at the physical address the block
   * left for, without the cache's lookup.
   */
  link0: Block | null;
  link1: Block | null;
  /** A loop compiled to WebAssembly (wasm-region.ts): JavaScript regions end at its head. */
  readonly wasm: boolean;
}

/** What the generated code calls (`H.` in codegen.ts). */
const HELPERS = { alu, incDec, mul32, MUL_HIGH, neg, setMulFlags, shift };

/**
 * Times a start address is reached (in the interpreter) before its block is translated.
 * Each translation is a JavaScript function V8 must parse and optimise (milliseconds of
 * compiler time), which pays only on code that runs thousands of times: on the tiny-linux
 * boot a threshold of 16 translated 33,000 blocks and ran at half the interpreter's speed;
 * measured in pairs (both runs at once) 2,000-6,000 beat 20,000 by 15-20% there and tied
 * on Debian's XZ decompressor, 40,000 was no better than 20,000.
 */
export const HOT_THRESHOLD = 5_000;
/**
 * Entries after which a block is translated again as a region (tier 2: codegen.ts's
 * translateBlock with MAX_REGION and inline memory accesses). A region's function is
 * several times larger than a straight-line block's, and V8 runs a function in its
 * bytecode interpreter until it has used a budget proportional to its size, so regions
 * pay only on code that stays hot: on the tiny-linux boot, translating every hot block
 * as a region cost 20% of the guest thread's time; on Debian's XZ decompressor regions
 * ran 1.5 times as fast as straight-line blocks.
 */
export const PROMOTE_THRESHOLD = 100_000;
/** Invalidations after which a page is left to the interpreter. */
const GIVE_UP = 64;
const SLOT_BITS = 15;
const SLOT_MASK = (1 << SLOT_BITS) - 1;
const HEAT_MASK = (1 << 14) - 1;
/** Compiled functions kept by source text; the memo is dropped whole when it grows past this. */
const MEMO_LIMIT = 40_000;

export interface BlockCacheStats {
  /** Blocks translated (decoded) and entered into the cache. */
  translated: number;
  /** Of those, how many needed a new JavaScript function (the rest reused one). */
  compiled: number;
  /** Blocks translated again as regions (tier 2) once they stayed hot. */
  promoted: number;
  /** Page invalidations caused by writes to translated code. */
  invalidations: number;
  /** Pages given up on (left to the interpreter). */
  pagesGivenUp: number;
  /** Instructions retired inside translated blocks (the rest were interpreted). */
  executed: number;
  /** Blocks entered, and of those how many straight after another (chained, not through the run loop). */
  entries: number;
  chained: number;
  /** Regions compiled to WebAssembly (wasm-region.ts; only with the `wasm` option). */
  wasm: number;
}

/** The cache slot of a block starting at physical address `phys`. */
function slotOf(phys: number): number {
  return (phys ^ (phys >>> SLOT_BITS)) & SLOT_MASK;
}

export class BlockCache {
  /** Physical pages holding translated code (shared with the memory's write watch). */
  readonly codePages = new Uint8Array(1 << 20);
  private readonly keys = new Int32Array(1 << SLOT_BITS).fill(-1);
  private readonly blocks: (Block | null)[] = new Array<Block | null>(1 << SLOT_BITS).fill(null);
  private readonly heat = new Uint16Array(HEAT_MASK + 1);
  private readonly pageSlots = new Map<number, number[]>();
  private readonly pageInvalidations = new Uint8Array(1 << 20);
  private readonly memo = new Map<string, BlockFunction>();
  /** Why blocks cannot be compiled here (the host forbids generated code), or null. */
  unavailable: string | null = null;
  readonly stats: BlockCacheStats = { translated: 0, compiled: 0, promoted: 0, invalidations: 0, pagesGivenUp: 0, executed: 0, entries: 0, chained: 0, wasm: 0 };
  /** Compiled WebAssembly modules by the bytes they were built from. */
  private readonly wasmModules = new Map<string, WebAssembly.Module>();

  /** `log` hears, once, why blocks are unavailable if it comes to that. */
  constructor(private readonly cpu: Cpu, private readonly hotThreshold = HOT_THRESHOLD, private readonly log?: (message: string) => void,
    private readonly promoteThreshold = PROMOTE_THRESHOLD,
    /** Compile the regions wasm-region.ts can take to WebAssembly (off by default: the first step of that tier). */
    private readonly wasm = false) {}

  /** The block starting at physical address `phys`, translating it once it is hot; null to interpret. */
  lookup(phys: number): Block | null {
    const slot = slotOf(phys);
    if (this.keys[slot] === (phys | 0)) {
      const block = this.blocks[slot]!;
      if (block.tier === 1 && ++block.entries === this.promoteThreshold) return this.translate(phys, slot, 2) ?? block;
      return block;
    }
    if (this.unavailable !== null) return null;
    const h = (phys ^ (phys >>> 14)) & HEAT_MASK;
    if (++this.heat[h] < this.hotThreshold) return null;
    this.heat[h] = 0;
    return this.translate(phys, slot, this.promoteThreshold === 0 ? 2 : 1);
  }

  /**
   * The block to run after `from` at physical address `phys` (the address `from` left
   * for), if one is translated: one of its links when that is still valid, else the
   * cache's block there, which becomes its most recent link. Null when none is (the run
   * loop then looks up the address once, counting it towards translation: this probe does
   * not, so an address is counted once per visit). Only a block actually entered is
   * counted towards promotion (entered()).
   */
  chain(from: Block, phys: number): Block | null {
    let link = from.link0;
    if (link === null || link.phys !== phys || !link.valid) {
      const other = from.link1;
      if (other === null || other.phys !== phys || !other.valid) {
        const slot = slotOf(phys);
        if (this.keys[slot] !== (phys | 0)) return null;
        const block = this.blocks[slot]!;
        from.link1 = link;
        from.link0 = block;
        this.stats.chained++;
        return block;
      }
      from.link1 = link;
      from.link0 = other;
      link = other;
    }
    this.stats.chained++;
    return link;
  }

  /**
   * A block chain() gave is entered: counted towards promotion as lookup() counts; returns
   * the block to run (its region, when this entry promoted it).
   */
  entered(block: Block): Block {
    if (block.tier === 1 && ++block.entries === this.promoteThreshold) return this.translate(block.phys, slotOf(block.phys), 2) ?? block;
    return block;
  }

  /** Whether a block starts at `phys` (the code there ran hot). */
  private readonly isBlock = (phys: number): boolean => this.keys[slotOf(phys)] === (phys | 0);

  /** Whether the block starting at `phys` is a WebAssembly loop. */
  private readonly isWasm = (phys: number): boolean => {
    const slot = slotOf(phys);
    return this.keys[slot] === (phys | 0) && this.blocks[slot]!.wasm;
  };

  private translate(phys: number, slot: number, tier: number): Block | null {
    const page = phys >>> 12;
    if (this.pageInvalidations[page] >= GIVE_UP) return null;
    // With the option, a loop of wasm-region.ts's form is compiled as soon as it is hot
    // (tier 1 too), so the regions later formed around it leave at its head for it.
    const w = this.wasm ? translateWasmLoop(this.cpu.ram, phys, this.wasmModules) : null;
    let run: BlockFunction | undefined, count: number, bytes: number, before: number;
    if (w !== null) {
      if (this.wasmModules.size >= MEMO_LIMIT) this.wasmModules.clear();
      ({ run, count, bytes } = w);
      before = 0;
      this.stats.wasm++;
    } else {
      // A promote threshold of 0 makes every block a region at once, following every jump
      // target (what the tests use to hold regions to the interpreter on any code).
      const t = tier === 1 ? translateBlock(this.cpu.ram, phys, 1, true)
        : translateBlock(this.cpu.ram, phys, MAX_REGION, true, this.promoteThreshold === 0 ? undefined : this.isBlock, this.wasm ? this.isWasm : null);
      if (t === null) return null;
      run = this.memo.get(t.source);
      if (run === undefined) {
        if (this.memo.size >= MEMO_LIMIT) this.memo.clear();
        // The generated source is built only from decoded numbers (codegen.ts), never from
        // guest-controlled text.
        try {
          run = new Function('H', `return function block(c, n, end) {\n${t.source}\n};`)(HELPERS) as BlockFunction;
        } catch (e) {
          // A page whose Content-Security-Policy forbids 'unsafe-eval' cannot compile blocks:
          // the interpreter goes on alone (it is the reference anyway), and says why once.
          this.unavailable = `translated blocks are off (the interpreter runs everything): ${e instanceof Error ? e.message : String(e)}`;
          this.log?.(this.unavailable);
          return null;
        }
        this.memo.set(t.source, run);
        this.stats.compiled++;
      }
      ({ count, bytes, before } = t);
    }
    // A WebAssembly loop is final: never promoted (tier 2 whatever it was translated as).
    const block: Block = { run, count, bytes, before, tier: w !== null ? 2 : tier, entries: 0, phys, valid: true, link0: null, link1: null, wasm: w !== null };
    const replaced = this.blocks[slot];
    if (replaced !== null) replaced.valid = false;
    this.keys[slot] = phys | 0;
    this.blocks[slot] = block;
    if (tier === 2) this.stats.promoted++;
    if (tier === 2 && this.promoteThreshold !== 0) return block; // the slot is already listed for its page
    let slots = this.pageSlots.get(page);
    if (slots === undefined) {
      slots = [];
      this.pageSlots.set(page, slots);
    }
    slots.push(slot);
    if (this.codePages[page] === 0) {
      this.codePages[page] = 1;
      this.cpu.protectCodePage(page);
    }
    this.stats.translated++;
    return block;
  }

  /** A store is about to reach physical page `page`, which holds translated code. */
  invalidatePage(page: number): void {
    const slots = this.pageSlots.get(page);
    if (slots !== undefined) {
      for (const slot of slots) {
        if (this.keys[slot] >>> 12 === page) {
          this.blocks[slot]!.valid = false;
          this.keys[slot] = -1;
          this.blocks[slot] = null;
        }
      }
      this.pageSlots.delete(page);
    }
    this.codePages[page] = 0;
    this.stats.invalidations++;
    if (this.pageInvalidations[page] < GIVE_UP && ++this.pageInvalidations[page] === GIVE_UP) this.stats.pagesGivenUp++;
    this.cpu.blockExit = true;
  }

  /** Forget every translation (RAM replaced wholesale: a restored snapshot). */
  invalidateAll(): void {
    for (const block of this.blocks) if (block !== null) block.valid = false;
    this.keys.fill(-1);
    this.blocks.fill(null);
    this.pageSlots.clear();
    this.codePages.fill(0);
    this.pageInvalidations.fill(0);
    this.heat.fill(0);
  }
}
