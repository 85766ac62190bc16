/**
 * System instructions and control transfers that depend on the mode: far CALL/JMP/RET,
 * IRET, PUSHF/POPF, CLI/STI, I/O permission, descriptor-table and control-register
 * instructions, MSRs, CPUID, SYSENTER/SYSEXIT (SDM vol.2 and vol.3 chapters 5-7).
 */
import type { Cpu } from './cpu.ts';
import * as C from './constants.ts';
import { farTaskSwitch } from './task.ts';

type Op = (c: Cpu) => void;

function iopl(c: Cpu): number {
  return (c.flags & C.IOPL) >> 12;
}

/** I/O permission: CPL <= IOPL, else the TSS I/O bitmap decides (SDM vol.1 §18.5). */
export function ioPermitted(c: Cpu, port: number, size: number): boolean {
  if (!c.protectedMode) return true;
  if (!c.v86 && c.cpl <= iopl(c)) return true;
  // Only a 32-bit TSS has a bitmap.
  if ((c.trType & 8) === 0 || c.trLimit < 0x67) return false;
  const mapBase = c.readSys16((c.trBase + 0x66) | 0);
  const at = mapBase + (port >> 3);
  if (at + 1 > c.trLimit) return false;
  const bits = c.readSys16((c.trBase + at) | 0);
  const mask = ((1 << size) - 1) << (port & 7);
  return (bits & mask) === 0;
}

export function pushf(c: Cpu): void {
  if (c.v86 && iopl(c) < 3) c.fault(C.GP, 0);
  // VM and RF are never pushed as set (SDM vol.2 PUSHF).
  const f = c.getFlags() & ~(C.VM | C.RF);
  if (c.o32) c.push32(f);
  else c.push16(f & 0xffff);
}

export function popf(c: Cpu): void {
  if (c.v86 && iopl(c) < 3) c.fault(C.GP, 0);
  const v = c.o32 ? c.pop32() : c.pop16();
  writeFlagsByPrivilege(c, v, c.o32 ? 0xffffffff : 0xffff);
}

/** POPF/IRET rules: IOPL only at CPL 0, IF only at CPL <= IOPL; VM, RF, VIF, VIP never via POPF. */
function writeFlagsByPrivilege(c: Cpu, v: number, sizeMask: number): void {
  const old = c.getFlags();
  let changeable = C.ARITH_FLAGS | C.TF | C.DF | C.NT | C.AC | C.ID;
  if (!c.protectedMode || c.cpl === 0) changeable |= C.IOPL | C.IF;
  else if (c.cpl <= iopl(c)) changeable |= C.IF;
  if (c.v86) changeable = (changeable | C.IF) & ~C.IOPL;
  changeable &= sizeMask;
  c.setFlags((old & ~changeable) | (v & changeable));
}

export function cli(c: Cpu): void {
  if (c.protectedMode && (c.v86 ? iopl(c) < 3 : c.cpl > iopl(c))) c.fault(C.GP, 0);
  c.flags &= ~C.IF;
}

export function sti(c: Cpu): void {
  if (c.protectedMode && (c.v86 ? iopl(c) < 3 : c.cpl > iopl(c))) c.fault(C.GP, 0);
  // Interrupts are recognised only after the next instruction (SDM vol.2 STI).
  if ((c.flags & C.IF) === 0) c.interruptShadow = 1;
  c.flags |= C.IF;
}

function realModeFar(c: Cpu): boolean {
  return !c.protectedMode || c.v86;
}

/** Load CS from a code-segment descriptor already in c.descLo/descHi, with CPL `cpl`. */
function loadCodeSegment(c: Cpu, sel: number, cpl: number): void {
  c.setAccessedBit(sel);
  c.sreg[C.CS] = (sel & 0xfffc) | cpl;
  c.setSegCacheRaw(C.CS, c.descBase(), c.descLimit(), c.descHi | 0x100);
  c.setCpl(cpl);
}

/** Checks for a direct far transfer to a code segment (SDM vol.3 §5.8.1, JMP/CALL). */
function checkCodeTarget(c: Cpu, sel: number): void {
  const hi = c.descHi;
  const dpl = (hi >> 13) & 3;
  const conforming = (hi & 0x400) !== 0;
  if (conforming ? dpl > c.cpl : (sel & 3) > c.cpl || dpl !== c.cpl) c.fault(C.GP, sel & 0xfffc);
  if ((hi & 0x8000) === 0) c.fault(C.NP, sel & 0xfffc);
}

export function farJump(c: Cpu, sel: number, off: number): void {
  if (realModeFar(c)) {
    if (!c.o32) off &= 0xffff;
    c.loadSeg(C.CS, sel);
    c.eip = off;
    return;
  }
  if ((sel & 0xfffc) === 0) c.fault(C.GP, 0);
  if (!c.readDescriptor(sel)) c.fault(C.GP, sel & 0xfffc);
  const hi = c.descHi;
  if ((hi & 0x1800) === 0x1800) {
    checkCodeTarget(c, sel);
    const limit = c.descLimit();
    if ((off >>> 0) > limit) c.fault(C.GP, 0);
    loadCodeSegment(c, sel, c.cpl);
    c.eip = off;
    return;
  }
  const type = (hi >> 8) & 0x1f;
  if (type === 0x0c || type === 0x04) {
    // Call gate used by JMP: only to the same privilege.
    const gateLo = c.descLo;
    const dpl = (hi >> 13) & 3;
    if (dpl < c.cpl || dpl < (sel & 3)) c.fault(C.GP, sel & 0xfffc);
    if ((hi & 0x8000) === 0) c.fault(C.NP, sel & 0xfffc);
    const target = gateLo >>> 16;
    const tOff = type === 0x0c ? (gateLo & 0xffff) | (hi & 0xffff0000) : gateLo & 0xffff;
    if ((target & 0xfffc) === 0) c.fault(C.GP, 0);
    if (!c.readDescriptor(target)) c.fault(C.GP, target & 0xfffc);
    if ((c.descHi & 0x1800) !== 0x1800) c.fault(C.GP, target & 0xfffc);
    const tdpl = (c.descHi >> 13) & 3;
    const conforming = (c.descHi & 0x400) !== 0;
    if (conforming ? tdpl > c.cpl : tdpl !== c.cpl) c.fault(C.GP, target & 0xfffc);
    if ((c.descHi & 0x8000) === 0) c.fault(C.NP, target & 0xfffc);
    if ((tOff >>> 0) > c.descLimit()) c.fault(C.GP, 0);
    loadCodeSegment(c, target, c.cpl);
    c.eip = tOff;
    return;
  }
  // Task gates and TSS descriptors: hardware task switch.
  farTaskSwitch(c, sel, 'jmp');
}

export function farCall(c: Cpu, sel: number, off: number): void {
  if (realModeFar(c)) {
    if (!c.o32) off &= 0xffff;
    // Push first (the pushes may fault), then transfer.
    const oldCs = c.sreg[C.CS];
    const sp = c.sp;
    try {
      c.push(oldCs);
      c.push(c.eip);
    } catch (e) {
      c.sp = sp;
      throw e;
    }
    c.loadSeg(C.CS, sel);
    c.eip = off;
    return;
  }
  if ((sel & 0xfffc) === 0) c.fault(C.GP, 0);
  if (!c.readDescriptor(sel)) c.fault(C.GP, sel & 0xfffc);
  const hi = c.descHi;
  if ((hi & 0x1800) === 0x1800) {
    checkCodeTarget(c, sel);
    if ((off >>> 0) > c.descLimit()) c.fault(C.GP, 0);
    const lo = c.descLo;
    const oldCs = c.sreg[C.CS];
    const sp = c.sp;
    try {
      c.push(oldCs);
      c.push(c.eip);
    } catch (e) {
      c.sp = sp;
      throw e;
    }
    c.descLo = lo;
    c.descHi = hi;
    loadCodeSegment(c, sel, c.cpl);
    c.eip = off;
    return;
  }
  const type = (hi >> 8) & 0x1f;
  if (type === 0x0c || type === 0x04) {
    callGate(c, sel, type === 0x0c);
    return;
  }
  farTaskSwitch(c, sel, 'call');
}

/** CALL through a call gate, with a stack switch to a more privileged level (SDM vol.3 §5.8.5). */
function callGate(c: Cpu, sel: number, gate32: boolean): void {
  const gLo = c.descLo;
  const gHi = c.descHi;
  const dpl = (gHi >> 13) & 3;
  if (dpl < c.cpl || dpl < (sel & 3)) c.fault(C.GP, sel & 0xfffc);
  if ((gHi & 0x8000) === 0) c.fault(C.NP, sel & 0xfffc);
  const target = gLo >>> 16;
  const tOff = gate32 ? (gLo & 0xffff) | (gHi & 0xffff0000) : gLo & 0xffff;
  const paramCount = gHi & 0x1f;
  if ((target & 0xfffc) === 0) c.fault(C.GP, 0);
  if (!c.readDescriptor(target)) c.fault(C.GP, target & 0xfffc);
  const cLo = c.descLo;
  const cHi = c.descHi;
  if ((cHi & 0x1800) !== 0x1800) c.fault(C.GP, target & 0xfffc);
  const tdpl = (cHi >> 13) & 3;
  if (tdpl > c.cpl) c.fault(C.GP, target & 0xfffc);
  if ((cHi & 0x8000) === 0) c.fault(C.NP, target & 0xfffc);
  const conforming = (cHi & 0x400) !== 0;
  const oldCs = c.sreg[C.CS];
  const oldEip = c.eip;
  const push = (v: number) => (gate32 ? c.push32(v) : c.push16(v));
  if (!conforming && tdpl < c.cpl) {
    const oldSs = c.sreg[C.SS];
    const oldEsp = c.r32[C.ESP];
    const oldSsBase = c.segBase[C.SS];
    const oldSs32 = c.ss32;
    // Parameters are copied from the old stack before switching.
    const params: number[] = [];
    for (let i = 0; i < paramCount; i++) {
      const off = oldSs32 ? (oldEsp + i * (gate32 ? 4 : 2)) | 0 : (oldEsp + i * (gate32 ? 4 : 2)) & 0xffff;
      params.push(gate32 ? c.read32(C.SS, off) : c.read16(C.SS, off));
    }
    void oldSsBase;
    const { ss, esp } = c.stackFromTss(tdpl, 0);
    c.readDescriptor(ss);
    c.sreg[C.SS] = ss;
    c.setSegCacheRaw(C.SS, c.descBase(), c.descLimit(), c.descHi | 0x100);
    c.setCpl(tdpl);
    c.r32[C.ESP] = c.ss32 ? esp : esp & 0xffff;
    push(oldSs);
    push(oldEsp);
    for (let i = paramCount - 1; i >= 0; i--) push(params[i]);
    push(oldCs);
    push(oldEip);
    c.descLo = cLo;
    c.descHi = cHi;
    loadCodeSegment(c, target, tdpl);
  } else {
    push(oldCs);
    push(oldEip);
    c.descLo = cLo;
    c.descHi = cHi;
    loadCodeSegment(c, target, c.cpl);
  }
  c.eip = tOff;
}

export function farReturn(c: Cpu, extra: number): void {
  const w = c.o32 ? 4 : 2;
  if (realModeFar(c)) {
    const ip = c.peek(0, w);
    const cs = c.peek(w, w) & 0xffff;
    c.loadSeg(C.CS, cs);
    c.eip = c.o32 ? ip : ip & 0xffff;
    c.sp = c.ss32 ? (c.sp + 2 * w + extra) | 0 : (c.sp + 2 * w + extra) & 0xffff;
    return;
  }
  const ip = c.peek(0, w);
  const sel = c.peek(w, w) & 0xffff;
  if ((sel & 0xfffc) === 0) c.fault(C.GP, 0);
  if (!c.readDescriptor(sel)) c.fault(C.GP, sel & 0xfffc);
  const hi = c.descHi;
  if ((hi & 0x1800) !== 0x1800) c.fault(C.GP, sel & 0xfffc);
  const rpl = sel & 3;
  if (rpl < c.cpl) c.fault(C.GP, sel & 0xfffc);
  const dpl = (hi >> 13) & 3;
  const conforming = (hi & 0x400) !== 0;
  if (conforming ? dpl > rpl : dpl !== rpl) c.fault(C.GP, sel & 0xfffc);
  if ((hi & 0x8000) === 0) c.fault(C.NP, sel & 0xfffc);
  if (rpl === c.cpl) {
    loadCodeSegment(c, sel, rpl);
    c.eip = ip;
    c.sp = c.ss32 ? (c.sp + 2 * w + extra) | 0 : (c.sp + 2 * w + extra) & 0xffff;
    return;
  }
  // Return to an outer level: SS:ESP from the stack (SDM vol.2 RET, "RETURN-TO-OUTER-PRIVILEGE-LEVEL").
  const lo = c.descLo;
  const newEsp = c.peek(2 * w + extra, w);
  const newSs = c.peek(3 * w + extra, w) & 0xffff;
  c.descLo = lo;
  c.descHi = hi;
  loadCodeSegment(c, sel, rpl);
  c.eip = ip;
  c.loadSeg(C.SS, newSs);
  c.r32[C.ESP] = c.ss32 ? (newEsp + extra) | 0 : (newEsp + extra) & 0xffff;
  nullifyOuterSegments(c);
}

/** After a return to an outer level, data segments the new CPL may not use are nulled (SDM vol.2 RET). */
function nullifyOuterSegments(c: Cpu): void {
  for (const s of [C.ES, C.DS, C.FS, C.GS]) {
    const acc = c.segAccess[s];
    const dpl = (acc >> 13) & 3;
    const isCode = (acc & 0x800) !== 0;
    const conforming = isCode && (acc & 0x400) !== 0;
    if ((c.sreg[s] & 0xfffc) !== 0 && !conforming && dpl < c.cpl) {
      c.sreg[s] = 0;
      c.segRights[s] = 0;
      c.segLo[s] = 1;
      c.segHi[s] = 0;
    }
  }
}

export function iret(c: Cpu): void {
  c.unblockNmi();
  const w = c.o32 ? 4 : 2;
  if (!c.protectedMode) {
    const ip = c.peek(0, w);
    const cs = c.peek(w, w) & 0xffff;
    const fl = c.peek(2 * w, w);
    c.loadSeg(C.CS, cs);
    c.eip = c.o32 ? ip : ip & 0xffff;
    c.sp = c.ss32 ? (c.sp + 3 * w) | 0 : (c.sp + 3 * w) & 0xffff;
    writeFlagsByPrivilege(c, fl, c.o32 ? 0xffffffff : 0xffff);
    return;
  }
  if (c.v86) {
    // IRET in v86 mode with IOPL 3 stays in v86; otherwise #GP(0) (no VME).
    if (iopl(c) < 3) c.fault(C.GP, 0);
    const ip = c.peek(0, w);
    const cs = c.peek(w, w) & 0xffff;
    const fl = c.peek(2 * w, w);
    c.loadSeg(C.CS, cs);
    c.eip = c.o32 ? ip : ip & 0xffff;
    c.sp = c.ss32 ? (c.sp + 3 * w) | 0 : (c.sp + 3 * w) & 0xffff;
    writeFlagsByPrivilege(c, fl, c.o32 ? 0xffffffff : 0xffff);
    return;
  }
  if (c.flags & C.NT) {
    // Return from a nested task: back link in the current TSS.
    c.taskReturn();
    return;
  }
  const ip = c.peek(0, w);
  const sel = c.peek(w, w) & 0xffff;
  const fl = c.peek(2 * w, w);
  if (c.o32 && (fl & C.VM) && c.cpl === 0) {
    iretToV86(c, ip, sel, fl);
    return;
  }
  if ((sel & 0xfffc) === 0) c.fault(C.GP, 0);
  if (!c.readDescriptor(sel)) c.fault(C.GP, sel & 0xfffc);
  const hi = c.descHi;
  const lo = c.descLo;
  if ((hi & 0x1800) !== 0x1800) c.fault(C.GP, sel & 0xfffc);
  const rpl = sel & 3;
  if (rpl < c.cpl) c.fault(C.GP, sel & 0xfffc);
  const dpl = (hi >> 13) & 3;
  const conforming = (hi & 0x400) !== 0;
  if (conforming ? dpl > rpl : dpl !== rpl) c.fault(C.GP, sel & 0xfffc);
  if ((hi & 0x8000) === 0) c.fault(C.NP, sel & 0xfffc);
  const oldCpl = c.cpl;
  if (rpl === oldCpl) {
    c.descLo = lo;
    c.descHi = hi;
    loadCodeSegment(c, sel, rpl);
    c.eip = ip;
    c.sp = c.ss32 ? (c.sp + 3 * w) | 0 : (c.sp + 3 * w) & 0xffff;
    writeFlagsAtCpl(c, fl, oldCpl, w);
    return;
  }
  const newEsp = c.peek(3 * w, w);
  const newSs = c.peek(4 * w, w) & 0xffff;
  c.descLo = lo;
  c.descHi = hi;
  loadCodeSegment(c, sel, rpl);
  c.eip = ip;
  writeFlagsAtCpl(c, fl, oldCpl, w);
  c.loadSeg(C.SS, newSs);
  c.r32[C.ESP] = c.ss32 ? newEsp : newEsp & 0xffff;
  nullifyOuterSegments(c);
}

/** IRET's EFLAGS write uses the privilege before the return (IOPL at CPL 0, IF at CPL <= IOPL). */
function writeFlagsAtCpl(c: Cpu, v: number, cpl: number, w: number): void {
  const old = c.getFlags();
  let changeable = C.ARITH_FLAGS | C.TF | C.DF | C.NT | C.AC | C.ID | C.RF;
  if (cpl === 0) changeable |= C.IOPL | C.IF | C.VIF | C.VIP;
  else if (cpl <= iopl(c)) changeable |= C.IF;
  if (w === 2) changeable &= 0xffff;
  c.setFlags((old & ~changeable) | (v & changeable));
}

/** IRET from CPL 0 with VM set in the popped EFLAGS: enter virtual-8086 mode (SDM vol.3 §20.2.5). */
function iretToV86(c: Cpu, ip: number, cs: number, fl: number): void {
  const esp = c.peek(12, 4);
  const ss = c.peek(16, 4) & 0xffff;
  const es = c.peek(20, 4) & 0xffff;
  const ds = c.peek(24, 4) & 0xffff;
  const fs = c.peek(28, 4) & 0xffff;
  const gs = c.peek(32, 4) & 0xffff;
  c.setFlags((fl & C.FLAGS_IMPLEMENTED) | C.VM);
  c.setCpl(3);
  for (const [s, v] of [[C.CS, cs], [C.SS, ss], [C.ES, es], [C.DS, ds], [C.FS, fs], [C.GS, gs]] as const) {
    c.sreg[s] = v;
    c.setSegCache(s, v << 4, 0xffff, s === C.CS ? 0xfb : 0xf3);
  }
  c.updateModeCaches();
  c.r32[C.ESP] = esp;
  c.eip = ip & 0xffff;
}

// ---------------------------------------------------------------------------------------
// 0F 00 / 0F 01 groups and other system instructions
// ---------------------------------------------------------------------------------------
function requireCpl0(c: Cpu): void {
  if (c.protectedMode && (c.cpl !== 0 || c.v86)) c.fault(C.GP, 0);
}

function requirePm(c: Cpu): void {
  // SLDT/STR/LLDT/LTR/VERR/VERW/LAR/LSL are #UD in real and v86 mode.
  if (!c.protectedMode || c.v86) c.undefinedOpcode();
}

/** Load a system descriptor for LLDT/LTR (SDM vol.2 LLDT, LTR). */
function loadLdt(c: Cpu, sel: number): void {
  if ((sel & 0xfffc) === 0) {
    c.ldtr = sel;
    c.ldtrBase = 0;
    c.ldtrLimit = 0;
    return;
  }
  if (sel & 4) c.fault(C.GP, sel & 0xfffc);
  if (!c.readDescriptor(sel)) c.fault(C.GP, sel & 0xfffc);
  if (((c.descHi >> 8) & 0x1f) !== 0x02) c.fault(C.GP, sel & 0xfffc);
  if ((c.descHi & 0x8000) === 0) c.fault(C.NP, sel & 0xfffc);
  c.ldtr = sel;
  c.ldtrBase = c.descBase();
  c.ldtrLimit = c.descLimit();
}

function loadTr(c: Cpu, sel: number): void {
  if ((sel & 0xfffc) === 0 || (sel & 4)) c.fault(C.GP, sel & 0xfffc);
  if (!c.readDescriptor(sel)) c.fault(C.GP, sel & 0xfffc);
  const type = (c.descHi >> 8) & 0x1f;
  if (type !== 0x01 && type !== 0x09) c.fault(C.GP, sel & 0xfffc);
  if ((c.descHi & 0x8000) === 0) c.fault(C.NP, sel & 0xfffc);
  // Mark busy.
  c.writeSys32((c.gdtrBase + (sel & 0xfff8) + 4) | 0, c.descHi | 0x200);
  c.tr = sel;
  c.trBase = c.descBase();
  c.trLimit = c.descLimit();
  c.trType = type | 2;
}

function group6(c: Cpu): void {
  c.decodeModrm();
  const op = c.regField;
  requirePm(c);
  switch (op) {
    case 0: // SLDT
      if (c.modrm >= 0xc0 && c.o32) c.r32[c.modrm & 7] = c.ldtr;
      else c.setRm16(c.ldtr);
      return;
    case 1: // STR
      if (c.modrm >= 0xc0 && c.o32) c.r32[c.modrm & 7] = c.tr;
      else c.setRm16(c.tr);
      return;
    case 2:
      requireCpl0(c);
      loadLdt(c, c.rm16());
      return;
    case 3:
      requireCpl0(c);
      loadTr(c, c.rm16());
      return;
    case 4:
    case 5: {
      // VERR/VERW: ZF=1 when the segment is readable/writable from CPL and RPL.
      const sel = c.rm16();
      c.setStatusFlags(C.ZF, verify(c, sel, op === 5) ? C.ZF : 0);
      return;
    }
    default:
      c.undefinedOpcode();
  }
}

function verify(c: Cpu, sel: number, write: boolean): boolean {
  if ((sel & 0xfffc) === 0 || !c.readDescriptor(sel)) return false;
  const hi = c.descHi;
  if ((hi & 0x1000) === 0) return false;
  const isCode = (hi & 0x800) !== 0;
  const conforming = isCode && (hi & 0x400) !== 0;
  const dpl = (hi >> 13) & 3;
  if (!conforming && (dpl < c.cpl || dpl < (sel & 3))) return false;
  if (write) return !isCode && (hi & 0x200) !== 0;
  return !isCode || (hi & 0x200) !== 0;
}

function group7(c: Cpu): void {
  c.decodeModrm();
  const op = c.regField;
  switch (op) {
    case 0:
    case 1: {
      // SGDT/SIDT: 16-bit operand size stores a 24-bit base on the 386 and later... the P6 stores all 32 bits
      // with the high byte zeroed for 16-bit operands (SDM vol.2 SGDT).
      if (c.modrm >= 0xc0) c.undefinedOpcode();
      const limit = op === 0 ? c.gdtrLimit : c.idtrLimit;
      const base = op === 0 ? c.gdtrBase : c.idtrBase;
      c.write16(c.eaSeg, c.eaOff, limit);
      c.write32(c.eaSeg, c.eaPlus(2), c.o32 ? base : base & 0x00ffffff);
      return;
    }
    case 2:
    case 3: {
      if (c.modrm >= 0xc0) c.undefinedOpcode();
      requireCpl0(c);
      const limit = c.read16(c.eaSeg, c.eaOff);
      let base = c.read32(c.eaSeg, c.eaPlus(2));
      if (!c.o32) base &= 0x00ffffff;
      if (op === 2) {
        c.gdtrLimit = limit;
        c.gdtrBase = base;
      } else {
        c.idtrLimit = limit;
        c.idtrBase = base;
      }
      return;
    }
    case 4: // SMSW
      if (c.modrm >= 0xc0 && c.o32) c.r32[c.modrm & 7] = c.cr0;
      else c.setRm16(c.cr0 & 0xffff);
      return;
    case 6: {
      // LMSW: can set PE but not clear it; only the low four bits.
      requireCpl0(c);
      const v = c.rm16();
      let cr0 = (c.cr0 & ~0xe) | (v & 0xf);
      if (c.cr0 & C.CR0_PE) cr0 |= C.CR0_PE;
      c.setCr0(cr0);
      c.stopSlice = true;
      return;
    }
    case 7:
      if (c.modrm >= 0xc0) c.undefinedOpcode();
      requireCpl0(c);
      c.invalidatePage((c.segBase[c.eaSeg] + c.eaOff) | 0);
      return;
    default:
      c.undefinedOpcode();
  }
}

/** LAR/LSL (0F 02/03): ZF=1 and the rights/limit loaded when the descriptor is visible. */
function larLsl(lsl: boolean): Op {
  return (c) => {
    c.decodeModrm();
    requirePm(c);
    const sel = c.rm16();
    let ok = (sel & 0xfffc) !== 0 && c.readDescriptor(sel);
    if (ok) {
      const hi = c.descHi;
      const type = (hi >> 8) & 0x1f;
      const dpl = (hi >> 13) & 3;
      const conformingCode = (type & 0x1c) === 0x1c;
      // System types valid for LAR: 1-5, 9, 0xB, 0xC; for LSL: 1, 2, 3, 9, 0xB.
      const validSys = lsl ? [1, 2, 3, 9, 11] : [1, 2, 3, 4, 5, 9, 11, 12];
      if ((type & 0x10) === 0 && !validSys.includes(type)) ok = false;
      else if (!conformingCode && (dpl < c.cpl || dpl < (sel & 3))) ok = false;
    }
    c.setStatusFlags(C.ZF, ok ? C.ZF : 0);
    if (!ok) return;
    const v = lsl ? c.descLimit() : c.descHi & 0x00f0ff00;
    if (c.o32) c.r32[c.regField] = v;
    else c.r16[c.regField << 1] = v;
  };
}

/**
 * ARPL (63): raise the RPL of the destination to that of the source (#UD in real and v86 mode).
 * The destination is written only when its RPL changes (SDM vol.2 ARPL: DEST is assigned
 * inside the IF), so an unchanged selector in a read-only segment does not fault.
 */
function arpl(c: Cpu): void {
  requirePm(c);
  c.decodeModrm();
  const dst = c.rm16();
  const src = c.r16[c.regField << 1];
  if ((dst & 3) < (src & 3)) {
    c.setRm16((dst & ~3) | (src & 3));
    c.setStatusFlags(C.ZF, C.ZF);
  } else {
    c.setStatusFlags(C.ZF, 0);
  }
}

function movFromCr(c: Cpu): void {
  c.decodeModrm();
  requireCpl0(c);
  const n = c.regField;
  let v: number;
  switch (n) {
    case 0: v = c.cr0; break;
    case 2: v = c.cr2; break;
    case 3: v = c.cr3; break;
    case 4: v = c.cr4; break;
    default: c.undefinedOpcode();
  }
  c.r32[c.modrm & 7] = v;
}

function movToCr(c: Cpu): void {
  c.decodeModrm();
  requireCpl0(c);
  const v = c.r32[c.modrm & 7];
  switch (c.regField) {
    case 0: c.setCr0(v); c.stopSlice = true; break;
    case 2: c.cr2 = v; break;
    case 3: c.setCr3(v); break;
    case 4: c.setCr4(v); break;
    default: c.undefinedOpcode();
  }
}

function movDr(toDr: boolean): Op {
  return (c) => {
    c.decodeModrm();
    requireCpl0(c);
    let n = c.regField;
    // DR4/DR5 alias DR6/DR7 when CR4.DE is clear (SDM vol.3 §17.2.2).
    if (n === 4 || n === 5) {
      if (c.cr4 & C.CR4_DE) c.undefinedOpcode();
      n += 2;
    }
    if (toDr) c.dr[n] = c.r32[c.modrm & 7];
    else c.r32[c.modrm & 7] = c.dr[n];
  };
}

function cpuid(c: Cpu): void {
  const leaf = c.r32[C.EAX] >>> 0;
  let a = 0, b = 0, cc = 0, d = 0;
  if (leaf === 0) {
    a = 2;
    // "GenuineIntel"
    b = 0x756e6547;
    d = 0x49656e69;
    cc = 0x6c65746e;
  } else if (leaf === 1) {
    // Family 6, model 8, stepping 3 (a Pentium III class core without SSE).
    a = 0x00000683;
    // fpu de pse tsc msr cx8 (apic when present) sep pge cmov, and fxsr once an x87 (which
    // does FXSAVE/FXRSTOR) is installed; no fpu bit without one.
    d = (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 8) | (1 << 11) | (1 << 13) | (1 << 15);
    // clfsh, with its line size in EBX[15:8] in 8-byte units: 64 bytes (a stride of 0 would
    // make Linux's clflush_cache_range loop forever).
    d |= 1 << 19;
    b = 8 << 8;
    if (c.fpu) d |= (1 << 0) | (1 << 24);
    // The APIC bit follows IA32_APIC_BASE.EN: a globally disabled APIC is not there (SDM vol.3 §10.4.3).
    if (c.host.apicPresent && (c.host.getApicBase?.() ?? 0) & APIC_BASE_EN) d |= 1 << 9;
  } else if (leaf === 2) {
    // Cache and TLB descriptors: one iteration, a 32 KiB L1 and 256 KiB L2 of the P6 era.
    a = 0x03020101;
    d = 0x0c040843;
  }
  c.r32[C.EAX] = a;
  c.r32[C.EBX] = b;
  c.r32[C.ECX] = cc;
  c.r32[C.EDX] = d;
}

function rdmsr(c: Cpu): void {
  requireCpl0(c);
  const msr = c.r32[C.ECX] >>> 0;
  let lo = 0, hi = 0;
  switch (msr) {
    case C.MSR_TSC: {
      const t = c.readTsc();
      lo = t % 0x100000000 | 0;
      hi = Math.floor(t / 0x100000000) | 0;
      break;
    }
    case C.MSR_APIC_BASE:
      if (!c.host.getApicBase) c.fault(C.GP, 0);
      lo = c.host.getApicBase();
      break;
    case C.MSR_SYSENTER_CS: lo = c.sysenterCs; break;
    case C.MSR_SYSENTER_ESP: lo = c.sysenterEsp; break;
    case C.MSR_SYSENTER_EIP: lo = c.sysenterEip; break;
    // Platform 0 (bits 52:50): Linux's microcode driver reads it on every family 6 CPU,
    // and a P6 has it, so a #GP here would be a fault real hardware does not raise.
    case C.MSR_PLATFORM_ID: break;
    case C.MSR_BIOS_SIGN_ID: break; // no microcode update loaded
    default: c.fault(C.GP, 0);
  }
  c.r32[C.EAX] = lo;
  c.r32[C.EDX] = hi;
}

/** IA32_APIC_BASE.EN, the APIC's global enable (SDM vol.3 figure 10-5). */
const APIC_BASE_EN = 1 << 11;

function wrmsr(c: Cpu): void {
  requireCpl0(c);
  const msr = c.r32[C.ECX] >>> 0;
  const lo = c.r32[C.EAX];
  const hi = c.r32[C.EDX];
  switch (msr) {
    case C.MSR_TSC:
      c.tscOffset = (hi * 0x100000000 + (lo >>> 0)) - c.host.readTsc();
      break;
    case C.MSR_APIC_BASE:
      // Reserved: bits 0-7 and 9, EXTD (bit 10: no x2APIC here) and everything above the
      // 32-bit physical address width. WRMSR of a reserved bit is #GP(0).
      if (!c.host.setApicBase || (lo & 0x6ff) !== 0 || hi !== 0) c.fault(C.GP, 0);
      c.host.setApicBase(lo);
      break;
    case C.MSR_SYSENTER_CS: c.sysenterCs = lo & 0xffff; break;
    case C.MSR_SYSENTER_ESP: c.sysenterEsp = lo; break;
    case C.MSR_SYSENTER_EIP: c.sysenterEip = lo; break;
    case C.MSR_BIOS_SIGN_ID: break; // software writes 0 before CPUID to read the signature back
    default: c.fault(C.GP, 0); // IA32_PLATFORM_ID among them: read-only
  }
}

function rdtsc(c: Cpu): void {
  if ((c.cr4 & C.CR4_TSD) && c.cpl !== 0 && c.protectedMode) c.fault(C.GP, 0);
  const t = c.readTsc();
  c.r32[C.EAX] = t % 0x100000000 | 0;
  c.r32[C.EDX] = Math.floor(t / 0x100000000) | 0;
}

/** SYSENTER (SDM vol.2): flat CPL 0 code and stack from the SYSENTER MSRs. */
function sysenter(c: Cpu): void {
  if (!c.protectedMode || (c.sysenterCs & 0xfffc) === 0) c.fault(C.GP, 0);
  c.flags &= ~(C.VM | C.IF | C.RF);
  c.sreg[C.CS] = c.sysenterCs & 0xfffc;
  c.setSegCache(C.CS, 0, 0xffffffff, 0xc09b);
  c.sreg[C.SS] = (c.sysenterCs + 8) & 0xfffc;
  c.setSegCache(C.SS, 0, 0xffffffff, 0xc093);
  c.setCpl(0);
  c.r32[C.ESP] = c.sysenterEsp;
  c.eip = c.sysenterEip;
}

function sysexit(c: Cpu): void {
  if (!c.protectedMode || c.v86 || c.cpl !== 0 || (c.sysenterCs & 0xfffc) === 0) c.fault(C.GP, 0);
  c.sreg[C.CS] = ((c.sysenterCs + 16) & 0xfffc) | 3;
  c.setSegCache(C.CS, 0, 0xffffffff, 0xc0fb);
  c.sreg[C.SS] = ((c.sysenterCs + 24) & 0xfffc) | 3;
  c.setSegCache(C.SS, 0, 0xffffffff, 0xc0f3);
  c.setCpl(3);
  c.r32[C.ESP] = c.r32[C.ECX];
  c.eip = c.r32[C.EDX];
}

export const SYSTEM_OPS: [number, Op][] = [
  [0x63, arpl],
  [0x100, group6],
  [0x101, group7],
  [0x102, larLsl(false)],
  [0x103, larLsl(true)],
  [0x106, (c) => { requireCpl0(c); c.cr0 &= ~C.CR0_TS; }],
  [0x108, (c) => requireCpl0(c)],
  [0x109, (c) => requireCpl0(c)],
  // 0F 18 /0-3: PREFETCH hints, architecturally NOPs.
  [0x118, (c) => c.decodeModrm()],
  [0x120, movFromCr],
  [0x121, movDr(false)],
  [0x122, movToCr],
  [0x123, movDr(true)],
  [0x130, wrmsr],
  [0x131, rdtsc],
  [0x132, rdmsr],
  [0x134, sysenter],
  [0x135, sysexit],
  [0x1a2, cpuid],
];
