/**
 * Hardware task switching (SDM vol.3 chapter 7, and the TASK-SWITCH pseudo-code under
 * JMP, CALL, IRET and "Interrupt and exception handling" in vol.2/vol.3 §6.12.2).
 *
 * A switch is entered four ways: JMP or CALL to a TSS descriptor or a task gate, an
 * interrupt or exception through a task gate in the IDT, and IRET with EFLAGS.NT set
 * (back to the task named by the current TSS's previous-task link). Linux i386 uses the
 * third for #DF, so a kernel stack overflow is reported instead of triple-faulting.
 *
 * The order matters for what a guest sees when something is wrong (SDM §7.3, table 7-1):
 * faults found before the current task's state is saved are taken in the old task;
 * faults found while loading the new task's segments are taken in the new task, with
 * its CS:EIP and its selectors already in the registers.
 */
import * as C from './constants.ts';
import type { Cpu } from './cpu.ts';

/** What started the switch: it decides busy bits, nesting and which checks fault how. */
export type TaskSwitchSource = 'jmp' | 'call' | 'iret' | 'interrupt';

/** TSS descriptor types (S=0): 16-bit available/busy, 32-bit available/busy. */
const TSS16_AVAIL = 0x01;
const TSS16_BUSY = 0x03;
const TSS32_AVAIL = 0x09;
const TSS32_BUSY = 0x0b;
const TASK_GATE = 0x05;

/** JMP/CALL whose far pointer names a TSS descriptor or a task gate (already read into c.descLo/descHi). */
export function farTaskSwitch(c: Cpu, sel: number, source: 'jmp' | 'call'): void {
  const hi = c.descHi;
  const type = (hi >> 8) & 0x1f;
  const dpl = (hi >> 13) & 3;
  // The gate's or TSS's DPL bounds who may use it: max(CPL, RPL) <= DPL (SDM vol.2 JMP, CALL).
  if (dpl < c.cpl || dpl < (sel & 3)) c.fault(C.GP, sel & 0xfffc);
  if (type === TSS16_AVAIL || type === TSS32_AVAIL || type === TSS16_BUSY || type === TSS32_BUSY) {
    if (type === TSS16_BUSY || type === TSS32_BUSY) c.fault(C.GP, sel & 0xfffc);
    if ((hi & 0x8000) === 0) c.fault(C.NP, sel & 0xfffc);
    taskSwitch(c, sel, source, -1, 0);
    return;
  }
  if (type !== TASK_GATE) c.fault(C.GP, sel & 0xfffc);
  if ((hi & 0x8000) === 0) c.fault(C.NP, sel & 0xfffc);
  const tss = c.descLo >>> 16;
  if (tss & 4) c.fault(C.GP, tss & 0xfffc);
  taskSwitch(c, tss, source, -1, 0);
}

/**
 * Switch to the task whose TSS selector is `sel`. For an exception through a task gate,
 * `error` (>= 0) is pushed on the new task's stack; `ext` is the EXT bit for error codes.
 */
export function taskSwitch(c: Cpu, sel: number, source: TaskSwitchSource, error: number, ext: number): void {
  const nested = source === 'call' || source === 'interrupt';
  // The TSS selector must name a GDT entry that is a TSS of the right busy state.
  const badSelector = source === 'iret' ? C.TS : C.GP;
  if (sel & 4) c.fault(badSelector, (sel & 0xfffc) + ext);
  if (!c.readDescriptor(sel)) c.fault(badSelector, (sel & 0xfffc) + ext);
  const newHi = c.descHi;
  const type = (newHi >> 8) & 0x1f;
  if (source === 'iret') {
    if (type !== TSS16_BUSY && type !== TSS32_BUSY) c.fault(C.TS, (sel & 0xfffc) + ext);
  } else if (type !== TSS16_AVAIL && type !== TSS32_AVAIL) {
    c.fault(C.GP, (sel & 0xfffc) + ext);
  }
  if ((newHi & 0x8000) === 0) c.fault(C.NP, (sel & 0xfffc) + ext);
  const new32 = (type & 8) !== 0;
  const newBase = c.descBase();
  const newLimit = c.descLimit();
  // A TSS shorter than its fixed part is #TS (SDM §7.2.2: 0x67 for 32-bit, 0x2B for 16-bit).
  if (newLimit < (new32 ? 0x67 : 0x2b)) c.fault(C.TS, (sel & 0xfffc) + ext);

  // Read the incoming task's state before anything changes: a page fault on the new TSS
  // is taken in the old task with nothing modified (SDM §7.3 step 5).
  const rd16 = (off: number) => c.readSys16((newBase + off) | 0);
  const rd32 = (off: number) => c.readSys32((newBase + off) | 0);
  const regs = new Array<number>(8);
  const segs = new Array<number>(6);
  let eip: number, eflags: number, ldt: number, cr3 = 0, trap = false;
  if (new32) {
    cr3 = rd32(0x1c);
    eip = rd32(0x20);
    eflags = rd32(0x24);
    for (let i = 0; i < 8; i++) regs[i] = rd32(0x28 + i * 4);
    for (let i = 0; i < 6; i++) segs[i] = rd16(0x48 + i * 4);
    ldt = rd16(0x60);
    trap = (rd16(0x64) & 1) !== 0;
  } else {
    eip = rd16(0x0e);
    eflags = rd16(0x10); // a 16-bit TSS holds FLAGS only
    // The upper register halves are not in a 286 TSS; the SDM leaves them undefined (§7.6).
    for (let i = 0; i < 8; i++) regs[i] = rd16(0x12 + i * 2) | 0xffff0000;
    for (let i = 0; i < 4; i++) segs[i] = rd16(0x22 + i * 2);
    segs[4] = segs[5] = 0; // FS and GS do not exist in a 286 TSS
    ldt = rd16(0x2a);
  }
  // Check that the writes to come will not fault either (old TSS dynamic fields, new TSS link).
  const old32 = (c.trType & 8) !== 0;
  c.translate((c.trBase + (old32 ? 0x20 : 0x0e)) | 0, true);
  c.translate((c.trBase + (old32 ? 0x5d : 0x29)) | 0, true);
  if (nested) c.translate(newBase, true);

  // Save the outgoing task's dynamic state (SDM §7.3 step 8; CR3, LDTR and the stacks are static).
  let oldFlags = c.getFlags();
  if (source === 'iret') oldFlags &= ~C.NT;
  const ob = c.trBase;
  if (old32) {
    c.writeSys32((ob + 0x20) | 0, c.eip);
    c.writeSys32((ob + 0x24) | 0, oldFlags);
    for (let i = 0; i < 8; i++) c.writeSys32((ob + 0x28 + i * 4) | 0, c.r32[i]);
    for (let i = 0; i < 6; i++) c.writeSys16((ob + 0x48 + i * 4) | 0, c.sreg[i]);
  } else {
    c.writeSys16((ob + 0x0e) | 0, c.eip);
    c.writeSys16((ob + 0x10) | 0, oldFlags);
    for (let i = 0; i < 8; i++) c.writeSys16((ob + 0x12 + i * 2) | 0, c.r32[i]);
    for (let i = 0; i < 4; i++) c.writeSys16((ob + 0x22 + i * 2) | 0, c.sreg[i]);
  }
  // JMP and IRET leave the old task: it is no longer busy (§7.3 step 6).
  if (source === 'jmp' || source === 'iret') setBusy(c, c.tr, false);
  // CALL and interrupts nest: the new task links back and runs with NT set (§7.4).
  if (nested) {
    c.writeSys16(newBase, c.tr);
    eflags |= C.NT;
  }
  if (source !== 'iret') setBusy(c, sel, true);

  // Commit: TR, CR0.TS, CR3, then the registers. From here faults belong to the new task.
  c.tr = sel;
  c.trBase = newBase;
  c.trLimit = newLimit;
  c.trType = type | 2;
  c.cr0 |= C.CR0_TS;
  if (new32 && (c.cr0 & C.CR0_PG) !== 0) c.setCr3(cr3);
  c.eip = eip;
  c.instrStart = eip;
  c.setFlags((eflags & C.FLAGS_IMPLEMENTED) | 2);
  for (let i = 0; i < 8; i++) c.r32[i] = regs[i];
  // Selectors first, with empty caches, so a fault below shows the new task's values (§7.3 step 12).
  for (let i = 0; i < 6; i++) {
    c.sreg[i] = segs[i];
    c.setSegCache(i, 0, 0, 0);
  }
  c.ldtr = ldt;
  c.ldtrBase = 0;
  c.ldtrLimit = 0;

  loadTaskLdt(c, ldt);
  if ((eflags & C.VM) !== 0 && new32) {
    // The new task runs in virtual-8086 mode: every segment is real-mode style, CPL 3.
    for (let i = 0; i < 6; i++) c.setSegCache(i, segs[i] << 4, 0xffff, i === C.CS ? 0xfb : 0xf3);
    c.setCpl(3);
  } else {
    loadTaskSegments(c, segs);
  }
  c.updateModeCaches();
  if ((c.eip >>> 0) > c.segHi[C.CS]) c.fault(C.GP, 0);

  if (error >= 0) {
    // An exception's error code goes on the new task's stack, sized by its TSS (§6.12.2).
    if (new32) c.push32(error);
    else c.push16(error);
  }
  if (trap) {
    // The debug-trap bit of the new TSS: #DB before its first instruction, DR6.BT set (§17.3.1.5).
    c.dr[6] |= 0x8000;
    c.interrupt(C.DB, -1, false);
  }
}

function setBusy(c: Cpu, sel: number, busy: boolean): void {
  const at = (c.gdtrBase + (sel & 0xfff8) + 4) | 0;
  const hi = c.readSys32(at);
  c.writeSys32(at, busy ? hi | 0x200 : hi & ~0x200);
}

/** LDTR of the new task: null, or a present LDT descriptor in the GDT; else #TS (§7.3 step 12). */
function loadTaskLdt(c: Cpu, ldt: number): void {
  if ((ldt & 0xfffc) === 0) return;
  if (ldt & 4) c.fault(C.TS, ldt & 0xfffc);
  if (!c.readDescriptor(ldt)) c.fault(C.TS, ldt & 0xfffc);
  if (((c.descHi >> 8) & 0x1f) !== 0x02) c.fault(C.TS, ldt & 0xfffc);
  if ((c.descHi & 0x8000) === 0) c.fault(C.TS, ldt & 0xfffc);
  c.ldtrBase = c.descBase();
  c.ldtrLimit = c.descLimit();
}

/** CS, SS, then the data segments of the new task, with #TS/#NP/#SS as the task-switch checks say. */
function loadTaskSegments(c: Cpu, segs: number[]): void {
  const cs = segs[C.CS];
  if ((cs & 0xfffc) === 0 || !c.readDescriptor(cs)) c.fault(C.TS, cs & 0xfffc);
  let hi = c.descHi;
  const csType = (hi >> 8) & 0x1f;
  if ((csType & 0x18) !== 0x18) c.fault(C.TS, cs & 0xfffc);
  const csDpl = (hi >> 13) & 3;
  const rpl = cs & 3;
  if ((csType & 4) !== 0 ? csDpl > rpl : csDpl !== rpl) c.fault(C.TS, cs & 0xfffc);
  if ((hi & 0x8000) === 0) c.fault(C.NP, cs & 0xfffc);
  c.setAccessedBit(cs);
  c.setSegCacheRaw(C.CS, c.descBase(), c.descLimit(), hi | 0x100);
  c.setCpl(rpl);

  const ss = segs[C.SS];
  if ((ss & 0xfffc) === 0 || !c.readDescriptor(ss)) c.fault(C.TS, ss & 0xfffc);
  hi = c.descHi;
  if ((ss & 3) !== c.cpl || ((hi >> 13) & 3) !== c.cpl || ((hi >> 8) & 0x1a) !== 0x12) c.fault(C.TS, ss & 0xfffc);
  if ((hi & 0x8000) === 0) c.fault(C.SS_VEC, ss & 0xfffc);
  c.setAccessedBit(ss);
  c.setSegCacheRaw(C.SS, c.descBase(), c.descLimit(), hi | 0x100);
  c.updateModeCaches(); // the stack size, before a fault below pushes on this stack

  for (const s of [C.ES, C.DS, C.FS, C.GS]) {
    const sel = segs[s];
    if ((sel & 0xfffc) === 0) {
      c.setSegCache(s, 0, 0, 0); // null: loads fine, faults when used
      continue;
    }
    if (!c.readDescriptor(sel)) c.fault(C.TS, sel & 0xfffc);
    hi = c.descHi;
    const t = (hi >> 8) & 0x1f;
    // Data, or readable code; data and non-conforming code need max(CPL, RPL) <= DPL.
    if ((t & 0x10) === 0 || (t & 0x1a) === 0x18) c.fault(C.TS, sel & 0xfffc);
    const dpl = (hi >> 13) & 3;
    if ((t & 0x1c) !== 0x1c && ((sel & 3) > dpl || c.cpl > dpl)) c.fault(C.TS, sel & 0xfffc);
    if ((hi & 0x8000) === 0) c.fault(C.NP, sel & 0xfffc);
    c.setAccessedBit(sel);
    c.setSegCacheRaw(s, c.descBase(), c.descLimit(), hi | 0x100);
  }
}
