/**
 * Instruction handlers, indexed by opcode: 0x00-0xFF one-byte opcodes, 0x100-0x1FF the
 * 0F two-byte map (SDM vol.2 appendix A). Each handler is a small function so V8 can
 * optimise it on its own; operand size comes from `c.o32`, address size from `c.a32`.
 */
import type { Cpu } from './cpu.ts';
import * as C from './constants.ts';
import { aaa, alu, daa, incDec, mul32, MUL_HIGH, neg, setMulFlags, shift, shiftDouble } from './alu.ts';
import { cli, farCall, farJump, farReturn, ioPermitted, iret, popf, pushf, sti, SYSTEM_OPS } from './system.ts';

type Op = (c: Cpu) => void;

export const OPS: Op[] = new Array<Op>(512);

const ud: Op = (c) => c.undefinedOpcode();
for (let i = 0; i < 512; i++) OPS[i] = ud;

// ---------------------------------------------------------------------------------------
// 00-3F: the eight ALU operations in their six forms each (Eb,Gb Ev,Gv Gb,Eb Gv,Ev AL,Ib eAX,Iz)
// ---------------------------------------------------------------------------------------
for (let aluOp = 0; aluOp < 8; aluOp++) {
  const base = aluOp << 3;
  const writes = aluOp !== 7;
  OPS[base] = (c) => {
    c.decodeModrm();
    c.checkLockMemory();
    if (!writes && c.lock) c.undefinedOpcode();
    const a = writes ? c.rmw8() : c.rm8();
    const r = alu(c, aluOp, a, c.getReg8(c.regField), 8);
    if (writes) c.setRm8(r);
  };
  OPS[base + 1] = (c) => {
    c.decodeModrm();
    c.checkLockMemory();
    if (c.o32) {
      const a = writes ? c.rmw32() : c.rm32();
      const r = alu(c, aluOp, a, c.r32[c.regField], 32);
      if (writes) c.setRm32(r);
    } else {
      const a = writes ? c.rmw16() : c.rm16();
      const r = alu(c, aluOp, a, c.r16[c.regField << 1], 16);
      if (writes) c.setRm16(r);
    }
  };
  OPS[base + 2] = (c) => {
    c.decodeModrm();
    const reg = c.regField;
    const r = alu(c, aluOp, c.getReg8(reg), c.rm8(), 8);
    if (writes) c.setReg8(reg, r);
  };
  OPS[base + 3] = (c) => {
    c.decodeModrm();
    const reg = c.regField;
    if (c.o32) {
      const r = alu(c, aluOp, c.r32[reg], c.rm32(), 32);
      if (writes) c.r32[reg] = r;
    } else {
      const r = alu(c, aluOp, c.r16[reg << 1], c.rm16(), 16);
      if (writes) c.r16[reg << 1] = r;
    }
  };
  OPS[base + 4] = (c) => {
    const r = alu(c, aluOp, c.r8[0], c.fetch8(), 8);
    if (writes) c.r8[0] = r;
  };
  OPS[base + 5] = (c) => {
    if (c.o32) {
      const r = alu(c, aluOp, c.r32[0], c.fetch32(), 32);
      if (writes) c.r32[0] = r;
    } else {
      const r = alu(c, aluOp, c.r16[0], c.fetch16(), 16);
      if (writes) c.r16[0] = r;
    }
  };
}

// PUSH/POP of segment registers: 06 07 0E 16 17 1E 1F, 0F A0 A1 A8 A9.
function pushSeg(s: number): Op {
  return (c) => {
    // A 32-bit push of a segment register moves ESP by 4 but writes only the selector's 16 bits,
    // leaving the upper half of the slot as it was (SDM vol.2 PUSH: what the 386, the 486 and
    // recent Core processors do; the manual allows a zero-extended write too).
    if (c.o32) {
      const sp = c.ss32 ? (c.r32[C.ESP] - 4) | 0 : (c.r16[C.ESP << 1] - 4) & 0xffff;
      c.probeWrite(c.linW(C.SS, sp, 4), 4);
      c.write16(C.SS, sp, c.sreg[s]);
      c.sp = sp;
    } else {
      c.push16(c.sreg[s]);
    }
  };
}
function popSeg(s: number): Op {
  return (c) => {
    const v = c.peek(0, c.o32 ? 4 : 2) & 0xffff;
    // The stack pointer moves by the stack's size as the instruction found it (SDM vol.2 POP:
    // the increment is by the address size of the stack segment being popped from): POP SS
    // of a 32-bit segment from a 16-bit stack adds to SP alone.
    const sp = c.sp + (c.o32 ? 4 : 2);
    const ss32 = c.ss32;
    c.loadSeg(s, v);
    if (ss32) c.r32[C.ESP] = sp;
    else c.r16[C.ESP << 1] = sp;
    // POP SS inhibits interrupts until after the next instruction (SDM vol.2 POP).
    if (s === C.SS) c.interruptShadow = 1;
  };
}
OPS[0x06] = pushSeg(C.ES);
OPS[0x07] = popSeg(C.ES);
OPS[0x0e] = pushSeg(C.CS);
OPS[0x16] = pushSeg(C.SS);
OPS[0x17] = popSeg(C.SS);
OPS[0x1e] = pushSeg(C.DS);
OPS[0x1f] = popSeg(C.DS);
OPS[0x1a0] = pushSeg(C.FS);
OPS[0x1a1] = popSeg(C.FS);
OPS[0x1a8] = pushSeg(C.GS);
OPS[0x1a9] = popSeg(C.GS);

OPS[0x27] = (c) => daa(c, false);
OPS[0x2f] = (c) => daa(c, true);
OPS[0x37] = (c) => aaa(c, false);
OPS[0x3f] = (c) => aaa(c, true);

// 40-4F INC/DEC r
for (let r = 0; r < 8; r++) {
  OPS[0x40 + r] = (c) => {
    if (c.o32) c.r32[r] = incDec(c, c.r32[r], false, 32);
    else c.r16[r << 1] = incDec(c, c.r16[r << 1], false, 16);
  };
  OPS[0x48 + r] = (c) => {
    if (c.o32) c.r32[r] = incDec(c, c.r32[r], true, 32);
    else c.r16[r << 1] = incDec(c, c.r16[r << 1], true, 16);
  };
  // 50-5F PUSH/POP r. PUSH SP pushes the value before the decrement (286 and later).
  OPS[0x50 + r] = (c) => {
    if (c.o32) c.push32(c.r32[r]);
    else c.push16(c.r16[r << 1]);
  };
  OPS[0x58 + r] = (c) => {
    const v = c.o32 ? c.pop32() : c.pop16();
    if (c.o32) c.r32[r] = v;
    else c.r16[r << 1] = v;
  };
  // 90-97 XCHG eAX, r
  if (r > 0) {
    OPS[0x90 + r] = (c) => {
      if (c.o32) {
        const t = c.r32[0];
        c.r32[0] = c.r32[r];
        c.r32[r] = t;
      } else {
        const t = c.r16[0];
        c.r16[0] = c.r16[r << 1];
        c.r16[r << 1] = t;
      }
    };
  }
  // B0-BF MOV r, imm
  OPS[0xb0 + r] = (c) => c.setReg8(r, c.fetch8());
  OPS[0xb8 + r] = (c) => {
    if (c.o32) c.r32[r] = c.fetch32();
    else c.r16[r << 1] = c.fetch16();
  };
  // 0F C8-CF BSWAP (16-bit operand size: undefined; a P6 zeroes the low word)
  OPS[0x1c8 + r] = (c) => {
    const v = c.r32[r];
    c.r32[r] = c.o32 ? ((v >>> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24)) : v & 0xffff0000;
  };
}
OPS[0x90] = (c) => {
  // PAUSE (F3 90) is NOP too.
  void c;
};

// 60 PUSHA, 61 POPA
OPS[0x60] = (c) => {
  const sp = c.o32 ? c.r32[C.ESP] : c.r16[C.ESP << 1];
  const size = c.o32 ? 4 : 2;
  // All eight stores are checked by writing from the lowest address up; SP moves at the end.
  const base = c.ss32 ? (c.r32[C.ESP] - 8 * size) | 0 : (c.r16[C.ESP << 1] - 8 * size) & 0xffff;
  for (let i = 0; i < 8; i++) {
    const v = i === C.ESP ? sp : c.o32 ? c.r32[i] : c.r16[i << 1];
    const off = c.ss32 ? (base + (7 - i) * size) | 0 : (base + (7 - i) * size) & 0xffff;
    if (c.o32) c.write32(C.SS, off, v);
    else c.write16(C.SS, off, v);
  }
  c.sp = base;
};
OPS[0x61] = (c) => {
  const size = c.o32 ? 4 : 2;
  const vals = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < 8; i++) vals[7 - i] = c.peek(i * size, size);
  for (let i = 0; i < 8; i++) {
    if (i === C.ESP) continue;
    if (c.o32) c.r32[i] = vals[i];
    else c.r16[i << 1] = vals[i];
  }
  c.sp = c.ss32 ? (c.sp + 8 * size) | 0 : (c.sp + 8 * size) & 0xffff;
};
// 62 BOUND Gv, Ma: #BR when out of range; a register operand is #UD.
OPS[0x62] = (c) => {
  c.decodeModrm();
  if (c.modrm >= 0xc0) c.undefinedOpcode();
  if (c.o32) {
    const idx = c.r32[c.regField];
    const lo = c.read32(c.eaSeg, c.eaOff);
    const hi = c.read32(c.eaSeg, c.eaPlus(4));
    if (idx < lo || idx > hi) c.fault(C.BR);
  } else {
    const idx = (c.r16[c.regField << 1] << 16) >> 16;
    const lo = (c.read16(c.eaSeg, c.eaOff) << 16) >> 16;
    const hi = (c.read16(c.eaSeg, c.eaPlus(2)) << 16) >> 16;
    if (idx < lo || idx > hi) c.fault(C.BR);
  }
};
// 68 PUSH Iz, 6A PUSH Ib (sign-extended)
OPS[0x68] = (c) => c.push(c.o32 ? c.fetch32() : c.fetch16());
OPS[0x6a] = (c) => c.push(c.o32 ? c.fetchS8() : c.fetchS8() & 0xffff);
// 69/6B IMUL Gv, Ev, Iz/Ib
function imul3(c: Cpu, imm8: boolean): void {
  c.decodeModrm();
  if (c.o32) {
    const a = c.rm32();
    const b = imm8 ? c.fetchS8() : c.fetch32();
    const lo = mul32(a, b, true);
    const hi = MUL_HIGH[0];
    c.r32[c.regField] = lo;
    setMulFlags(c, hi !== lo >> 31, lo, 32);
  } else {
    const a = (c.rm16() << 16) >> 16;
    const b = imm8 ? c.fetchS8() : (c.fetch16() << 16) >> 16;
    const p = a * b;
    c.r16[c.regField << 1] = p;
    setMulFlags(c, p !== (p << 16) >> 16, p, 16);
  }
}
OPS[0x69] = (c) => imul3(c, false);
OPS[0x6b] = (c) => imul3(c, true);

// 70-7F Jcc rel8, 0F 80-8F Jcc rel16/32
function jump(c: Cpu, rel: number): void {
  const target = c.o32 ? (c.eip + rel) | 0 : (c.eip + rel) & 0xffff;
  if ((target >>> 0) > c.segHi[C.CS]) c.fault(C.GP, 0);
  c.eip = target;
}
for (let cc = 0; cc < 16; cc++) {
  OPS[0x70 + cc] = (c) => {
    const rel = c.fetchS8();
    if (c.cond(cc)) jump(c, rel);
  };
  OPS[0x180 + cc] = (c) => {
    const rel = c.o32 ? c.fetch32() : (c.fetch16() << 16) >> 16;
    if (c.cond(cc)) jump(c, rel);
  };
  // 0F 90-9F SETcc Eb
  OPS[0x190 + cc] = (c) => {
    c.decodeModrm();
    c.setRm8(c.cond(cc) ? 1 : 0);
  };
  // 0F 40-4F CMOVcc Gv, Ev: the source is read (and may fault) even when the condition is false.
  OPS[0x140 + cc] = (c) => {
    c.decodeModrm();
    if (c.o32) {
      const v = c.rm32();
      if (c.cond(cc)) c.r32[c.regField] = v;
    } else {
      const v = c.rm16();
      if (c.cond(cc)) c.r16[c.regField << 1] = v;
    }
  };
}

// 80-83 group 1: ALU Eb/Ev with an immediate
function group1(size: 8 | 16 | 32, immSize: number): Op {
  return (c) => {
    c.decodeModrm();
    const op = c.regField;
    c.checkLockMemory();
    if (op === 7 && c.lock) c.undefinedOpcode();
    if (size === 8) {
      const a = op === 7 ? c.rm8() : c.rmw8();
      const r = alu(c, op, a, c.fetch8(), 8);
      if (op !== 7) c.setRm8(r);
      return;
    }
    if (c.o32) {
      const a = op === 7 ? c.rm32() : c.rmw32();
      const b = immSize === 1 ? c.fetchS8() : c.fetch32();
      const r = alu(c, op, a, b, 32);
      if (op !== 7) c.setRm32(r);
    } else {
      const a = op === 7 ? c.rm16() : c.rmw16();
      const b = immSize === 1 ? c.fetchS8() & 0xffff : c.fetch16();
      const r = alu(c, op, a, b, 16);
      if (op !== 7) c.setRm16(r);
    }
  };
}
OPS[0x80] = group1(8, 1);
OPS[0x81] = group1(16, 0);
OPS[0x82] = group1(8, 1);
OPS[0x83] = group1(16, 1);

// 84/85 TEST, 86/87 XCHG
OPS[0x84] = (c) => {
  c.decodeModrm();
  alu(c, 4, c.rm8(), c.getReg8(c.regField), 8);
};
OPS[0x85] = (c) => {
  c.decodeModrm();
  if (c.o32) alu(c, 4, c.rm32(), c.r32[c.regField], 32);
  else alu(c, 4, c.rm16(), c.r16[c.regField << 1], 16);
};
OPS[0x86] = (c) => {
  c.decodeModrm();
  c.checkLockMemory();
  const a = c.rmw8();
  c.setRm8(c.getReg8(c.regField));
  c.setReg8(c.regField, a);
};
OPS[0x87] = (c) => {
  c.decodeModrm();
  c.checkLockMemory();
  if (c.o32) {
    const a = c.rmw32();
    c.setRm32(c.r32[c.regField]);
    c.r32[c.regField] = a;
  } else {
    const a = c.rmw16();
    c.setRm16(c.r16[c.regField << 1]);
    c.r16[c.regField << 1] = a;
  }
};
// 88-8B MOV
OPS[0x88] = (c) => {
  c.decodeModrm();
  c.setRm8(c.getReg8(c.regField));
};
OPS[0x89] = (c) => {
  c.decodeModrm();
  if (c.o32) c.setRm32(c.r32[c.regField]);
  else c.setRm16(c.r16[c.regField << 1]);
};
OPS[0x8a] = (c) => {
  c.decodeModrm();
  c.setReg8(c.regField, c.rm8());
};
OPS[0x8b] = (c) => {
  c.decodeModrm();
  if (c.o32) c.r32[c.regField] = c.rm32();
  else c.r16[c.regField << 1] = c.rm16();
};
// 8C MOV Ev, Sreg: to a register with 32-bit operand size the P6 zero-extends; to memory it stores 16 bits.
OPS[0x8c] = (c) => {
  c.decodeModrm();
  const s = c.regField;
  if (s > 5) c.undefinedOpcode();
  if (c.modrm >= 0xc0 && c.o32) c.r32[c.modrm & 7] = c.sreg[s];
  else c.setRm16(c.sreg[s]);
};
// 8D LEA: a register operand is #UD.
OPS[0x8d] = (c) => {
  c.decodeModrm();
  if (c.modrm >= 0xc0) c.undefinedOpcode();
  if (c.o32) c.r32[c.regField] = c.eaOff;
  else c.r16[c.regField << 1] = c.eaOff;
};
// 8E MOV Sreg, Ew: CS is not a valid destination (#UD), nor 6 and 7.
OPS[0x8e] = (c) => {
  c.decodeModrm();
  const s = c.regField;
  if (s === C.CS || s > 5) c.undefinedOpcode();
  c.loadSeg(s, c.rm16());
  if (s === C.SS) c.interruptShadow = 1;
};
// 8F /0 POP Ev: ESP is incremented before the destination address is used (SDM vol.2 POP).
OPS[0x8f] = (c) => {
  const start = c.eip;
  c.decodeModrm();
  if (c.regField !== 0) c.undefinedOpcode();
  const size = c.o32 ? 4 : 2;
  const v = c.peek(0, size);
  const oldSp = c.sp;
  c.sp = c.ss32 ? (oldSp + size) | 0 : (oldSp + size) & 0xffff;
  if (c.modrm < 0xc0) {
    // Recompute the address with the incremented stack pointer.
    c.eip = start;
    c.decodeModrm();
  }
  try {
    if (size === 4) c.setRm32(v);
    else c.setRm16(v);
  } catch (e) {
    c.sp = oldSp;
    throw e;
  }
};

// 98 CBW/CWDE, 99 CWD/CDQ
OPS[0x98] = (c) => {
  if (c.o32) c.r32[0] = (c.r32[0] << 16) >> 16;
  else c.r16[0] = (c.r8[0] << 24) >> 24;
};
OPS[0x99] = (c) => {
  if (c.o32) c.r32[C.EDX] = c.r32[0] >> 31;
  else c.r16[C.EDX << 1] = (c.r16[0] & 0x8000) ? 0xffff : 0;
};
// 9B WAIT/FWAIT
OPS[0x9b] = (c) => {
  if ((c.cr0 & (C.CR0_MP | C.CR0_TS)) === (C.CR0_MP | C.CR0_TS)) c.fault(C.NM);
  c.fpu?.fwait();
};
// 9E SAHF, 9F LAHF
OPS[0x9e] = (c) => {
  c.setStatusFlags(C.SF | C.ZF | C.AF | C.PF | C.CF, c.r8[1]);
};
OPS[0x9f] = (c) => {
  c.r8[1] = (c.getFlags() & 0xd7) | 2;
};
// A0-A3 MOV AL/eAX <-> moffs
function moffs(c: Cpu): number {
  return c.a32 ? c.fetch32() : c.fetch16();
}
OPS[0xa0] = (c) => { c.r8[0] = c.read8(c.dataSeg(), moffs(c)); };
OPS[0xa1] = (c) => {
  const off = moffs(c);
  if (c.o32) c.r32[0] = c.read32(c.dataSeg(), off);
  else c.r16[0] = c.read16(c.dataSeg(), off);
};
OPS[0xa2] = (c) => c.write8(c.dataSeg(), moffs(c), c.r8[0]);
OPS[0xa3] = (c) => {
  const off = moffs(c);
  if (c.o32) c.write32(c.dataSeg(), off, c.r32[0]);
  else c.write16(c.dataSeg(), off, c.r16[0]);
};
// A8/A9 TEST AL/eAX, imm
OPS[0xa8] = (c) => { alu(c, 4, c.r8[0], c.fetch8(), 8); };
OPS[0xa9] = (c) => {
  if (c.o32) alu(c, 4, c.r32[0], c.fetch32(), 32);
  else alu(c, 4, c.r16[0], c.fetch16(), 16);
};

// ---------------------------------------------------------------------------------------
// String instructions (A4-A7, AA-AF, 6C-6F) with REP. Registers advance per iteration,
// so a fault leaves a restartable state; long runs yield to interrupts between chunks.
// ---------------------------------------------------------------------------------------
const STRING_CHUNK = 4096;
const MOVS = 0, CMPS = 1, STOS = 2, LODS = 3, SCAS = 4, INS = 5, OUTS = 6;

function stringOp(kind: number, size: number): Op {
  return (c) => {
    const a32 = c.a32;
    const step = (c.flags & C.DF) !== 0 ? -size : size;
    const bits = size * 8;
    const src = c.dataSeg();
    if ((kind === INS || kind === OUTS) && !ioPermitted(c, c.r16[C.EDX << 1], size)) c.fault(C.GP, 0);
    const repeat = c.rep !== 0;
    let count = repeat ? (a32 ? c.r32[C.ECX] >>> 0 : c.r16[C.ECX << 1]) : 1;
    if (count === 0) return;
    let n = 0;
    const bulk = repeat && a32 && step > 0 && (kind === MOVS || kind === STOS || kind === INS || kind === OUTS);
    while (count > 0) {
      if (bulk) {
        const k = kind === INS || kind === OUTS ? bulkPortString(c, kind, size, src, count, STRING_CHUNK - n) : bulkString(c, kind, size, src, count, STRING_CHUNK - n);
        if (k > 0) {
          count -= k;
          c.r32[C.ECX] = count;
          n += k;
          if (n >= STRING_CHUNK && count > 0) {
            c.eip = c.instrStart;
            c.stopSlice = true;
            return;
          }
          continue;
        }
      }
      const si = a32 ? c.r32[C.ESI] : c.r16[C.ESI << 1];
      const di = a32 ? c.r32[C.EDI] : c.r16[C.EDI << 1];
      let stop = false;
      switch (kind) {
        case MOVS: {
          const v = size === 1 ? c.read8(src, si) : size === 2 ? c.read16(src, si) : c.read32(src, si);
          if (size === 1) c.write8(C.ES, di, v);
          else if (size === 2) c.write16(C.ES, di, v);
          else c.write32(C.ES, di, v);
          advance(c, C.ESI, step, a32);
          advance(c, C.EDI, step, a32);
          break;
        }
        case CMPS: {
          const a = size === 1 ? c.read8(src, si) : size === 2 ? c.read16(src, si) : c.read32(src, si);
          const b = size === 1 ? c.read8(C.ES, di) : size === 2 ? c.read16(C.ES, di) : c.read32(C.ES, di);
          alu(c, 7, a, b, bits);
          advance(c, C.ESI, step, a32);
          advance(c, C.EDI, step, a32);
          stop = repeat && (c.rep === 0xf3 ? !c.zf() : c.zf());
          break;
        }
        case STOS:
          if (size === 1) c.write8(C.ES, di, c.r8[0]);
          else if (size === 2) c.write16(C.ES, di, c.r16[0]);
          else c.write32(C.ES, di, c.r32[0]);
          advance(c, C.EDI, step, a32);
          break;
        case LODS:
          if (size === 1) c.r8[0] = c.read8(src, si);
          else if (size === 2) c.r16[0] = c.read16(src, si);
          else c.r32[0] = c.read32(src, si);
          advance(c, C.ESI, step, a32);
          break;
        case SCAS: {
          const b = size === 1 ? c.read8(C.ES, di) : size === 2 ? c.read16(C.ES, di) : c.read32(C.ES, di);
          const a = size === 1 ? c.r8[0] : size === 2 ? c.r16[0] : c.r32[0];
          alu(c, 7, a, b, bits);
          advance(c, C.EDI, step, a32);
          stop = repeat && (c.rep === 0xf3 ? !c.zf() : c.zf());
          break;
        }
        case INS: {
          // The destination is checked before the port is read (SDM vol.2 INS).
          const lin = c.linW(C.ES, di, size);
          c.probeWrite(lin, size);
          const port = c.r16[C.EDX << 1];
          const v = size === 1 ? c.io.in8(port) : size === 2 ? c.io.in16(port) : c.io.in32(port);
          if (size === 1) c.writeLin8(lin, v);
          else if (size === 2) c.writeLin16(lin, v);
          else c.writeLin32(lin, v);
          advance(c, C.EDI, step, a32);
          break;
        }
        default: {
          const v = size === 1 ? c.read8(src, si) : size === 2 ? c.read16(src, si) : c.read32(src, si);
          const port = c.r16[C.EDX << 1];
          if (size === 1) c.io.out8(port, v);
          else if (size === 2) c.io.out16(port, v);
          else c.io.out32(port, v);
          advance(c, C.ESI, step, a32);
          break;
        }
      }
      if (!repeat) return;
      count--;
      if (a32) c.r32[C.ECX] = count;
      else c.r16[C.ECX << 1] = count;
      if (stop) return;
      if (++n >= STRING_CHUNK && count > 0) {
        // Let pending interrupts in: the instruction restarts with the registers as they are.
        c.eip = c.instrStart;
        c.stopSlice = true;
        return;
      }
    }
  };
}
/**
 * REP MOVS/STOS forwards (32-bit addressing) over plain RAM: the elements that stay within
 * one page of the destination and of the source, within the segment limits and within the
 * chunk, in one typed-array operation with the same result as one at a time. Returns how
 * many it did; 0 leaves the next element to the loop (a page crossing, a TLB miss, MMIO,
 * a watched or dirty-tracked page, a limit, a destination that starts inside the source).
 */
function bulkString(c: Cpu, kind: number, size: number, src: number, count: number, room: number): number {
  const di = c.r32[C.EDI];
  const dOff = di >>> 0;
  if ((c.segRights[C.ES] & 2) === 0 || dOff < c.segLo[C.ES]) return 0;
  const dLin = (c.segBase[C.ES] + di) | 0;
  let k = Math.min(count, room, Math.floor((c.segHi[C.ES] - dOff + 1) / size), ((0x1000 - (dLin & 0xfff)) / size) | 0);
  const we = c.tlbW[dLin >>> 12];
  if (k < 2 || we === C.TLB_MISS) return 0;
  if (kind === STOS && (we & 0xfff) !== 0) return bulkBacked(c, kind, size, dLin, we, 0, 0, k);
  const dPhys = (we >>> 0) + (dLin & 0xfff);
  if (kind === STOS) {
    if (size === 1) c.ram.fill(c.r8[0], dPhys, dPhys + k);
    else if (size === 4 && (dPhys & 3) === 0) c.ram32.fill(c.r32[0], dPhys >>> 2, (dPhys >>> 2) + k);
    else return 0;
    c.r32[C.EDI] = (di + k * size) | 0;
    return k;
  }
  const si = c.r32[C.ESI];
  const sOff = si >>> 0;
  if ((c.segRights[src] & 1) === 0 || sOff < c.segLo[src]) return 0;
  const sLin = (c.segBase[src] + si) | 0;
  k = Math.min(k, Math.floor((c.segHi[src] - sOff + 1) / size), ((0x1000 - (sLin & 0xfff)) / size) | 0);
  const re = c.tlbR[sLin >>> 12];
  if (k < 2 || re === C.TLB_MISS) return 0;
  if (((we | re) & 0xfff) !== 0) return bulkBacked(c, kind, size, dLin, we, sLin, re, k);
  const sPhys = (re >>> 0) + (sLin & 0xfff);
  const bytes = k * size;
  // Element by element forwards equals a memmove unless the destination starts inside the source.
  if (dPhys > sPhys && dPhys < sPhys + bytes) return 0;
  c.ram.copyWithin(dPhys, sPhys, sPhys + bytes);
  c.r32[C.ESI] = (si + bytes) | 0;
  c.r32[C.EDI] = (di + bytes) | 0;
  return k;
}

/**
 * REP INS/OUTS forwards (32-bit addressing) between a port and plain RAM: the elements that
 * stay within one page and the segment's limit, in one call to the bus (PortBus.insString),
 * which on the emulated path is one ioreq for the run instead of one per element. The
 * device sees the same reads or writes in the same order; the RAM side needs no checks
 * between elements, since a direct TLB entry is neither watched (code, dirty logging) nor
 * a device. Returns how many it did; 0 leaves the next element to the loop.
 */
function bulkPortString(c: Cpu, kind: number, size: number, src: number, count: number, room: number): number {
  const io = c.io;
  if (io.insString === undefined || io.outsString === undefined) return 0;
  const ins = kind === INS;
  const seg = ins ? C.ES : src;
  const reg = ins ? C.EDI : C.ESI;
  const ptr = c.r32[reg];
  const off = ptr >>> 0;
  if ((c.segRights[seg] & (ins ? 2 : 1)) === 0 || off < c.segLo[seg]) return 0;
  const lin = (c.segBase[seg] + ptr) | 0;
  const k = Math.min(count, room, Math.floor((c.segHi[seg] - off + 1) / size), ((0x1000 - (lin & 0xfff)) / size) | 0);
  const e = ins ? c.tlbW[lin >>> 12] : c.tlbR[lin >>> 12];
  if (k < 2 || e === C.TLB_MISS || (e & 0xfff) !== 0) return 0;
  const phys = (e >>> 0) + (lin & 0xfff);
  const bytes = c.ram.subarray(phys, phys + k * size);
  const port = c.r16[C.EDX << 1];
  const sz = size as 1 | 2 | 4;
  if (!(ins ? io.insString(port, sz, bytes, k) : io.outsString(port, sz, bytes, k))) return 0;
  c.r32[reg] = (ptr + k * size) | 0;
  return k;
}

/**
 * bulkString's run when a side is not direct RAM but video memory (the LFB the bochs-drm
 * driver fills with memcpy_toio/memset_io): the same bytes moved through views of the
 * memory's backing (PhysicalBus.backedSpan), each side counted as its single accesses
 * would be. `we`/`re` are the TLB entries (a slow entry still holds its physical page).
 */
function bulkBacked(c: Cpu, kind: number, size: number, dLin: number, we: number, sLin: number, re: number, k: number): number {
  const bytes = k * size;
  const dPhys = ((we & ~0xfff) | (dLin & 0xfff)) >>> 0;
  const dst = spanOf(c, dPhys, we, bytes);
  if (dst === null) return 0;
  if (kind === STOS) {
    const v = c.r32[C.EAX];
    if (size === 1) dst.fill(v & 0xff);
    else for (let i = 0; i < bytes; i += size) {
      dst[i] = v;
      dst[i + 1] = v >>> 8;
      if (size === 4) {
        dst[i + 2] = v >>> 16;
        dst[i + 3] = v >>> 24;
      }
    }
  } else {
    const sPhys = ((re & ~0xfff) | (sLin & 0xfff)) >>> 0;
    const from = spanOf(c, sPhys, re, bytes);
    if (from === null) return 0;
    // Element by element forwards equals a memmove unless the destination starts inside the source.
    if (from.buffer === dst.buffer && dst.byteOffset > from.byteOffset && dst.byteOffset < from.byteOffset + bytes) return 0;
    dst.set(from);
    if ((re & 0xfff) !== 0) c.mem.spanDone?.(sPhys, k, size, false);
    c.r32[C.ESI] = (c.r32[C.ESI] + bytes) | 0;
  }
  if ((we & 0xfff) !== 0) c.mem.spanDone?.(dPhys, k, size, true);
  c.r32[C.EDI] = (c.r32[C.EDI] + bytes) | 0;
  return k;
}

/** The bytes at `phys` behind TLB entry `e`: RAM for a direct entry, else video memory or null. */
function spanOf(c: Cpu, phys: number, e: number, bytes: number): Uint8Array | null {
  if ((e & 0xfff) === 0) return c.ram.subarray(phys, phys + bytes);
  return c.mem.backedSpan?.(phys, bytes) ?? null;
}

function advance(c: Cpu, reg: number, step: number, a32: boolean): void {
  if (a32) c.r32[reg] = (c.r32[reg] + step) | 0;
  else c.r16[reg << 1] = (c.r16[reg << 1] + step) & 0xffff;
}
function stringPair(op8: number, kind: number): void {
  OPS[op8] = stringOp(kind, 1);
  const w = stringOp(kind, 2);
  const d = stringOp(kind, 4);
  OPS[op8 + 1] = (c) => (c.o32 ? d(c) : w(c));
}
stringPair(0xa4, MOVS);
stringPair(0xa6, CMPS);
stringPair(0xaa, STOS);
stringPair(0xac, LODS);
stringPair(0xae, SCAS);
stringPair(0x6c, INS);
stringPair(0x6e, OUTS);

// ---------------------------------------------------------------------------------------
// C0/C1/D0-D3 group 2: shifts and rotates
// ---------------------------------------------------------------------------------------
function group2(size: 8 | 16, countFrom: 'imm' | 'one' | 'cl'): Op {
  return (c) => {
    c.decodeModrm();
    const op = c.regField;
    if (size === 8) {
      const v = c.rmw8();
      const n = countFrom === 'imm' ? c.fetch8() : countFrom === 'one' ? 1 : c.r8[4];
      c.setRm8(shift(c, op, v, n, 8));
    } else if (c.o32) {
      const v = c.rmw32();
      const n = countFrom === 'imm' ? c.fetch8() : countFrom === 'one' ? 1 : c.r8[4];
      c.setRm32(shift(c, op, v, n, 32));
    } else {
      const v = c.rmw16();
      const n = countFrom === 'imm' ? c.fetch8() : countFrom === 'one' ? 1 : c.r8[4];
      c.setRm16(shift(c, op, v, n, 16));
    }
  };
}
OPS[0xc0] = group2(8, 'imm');
OPS[0xc1] = group2(16, 'imm');
OPS[0xd0] = group2(8, 'one');
OPS[0xd1] = group2(16, 'one');
OPS[0xd2] = group2(8, 'cl');
OPS[0xd3] = group2(16, 'cl');

// C2/C3 RET near
OPS[0xc2] = (c) => {
  const n = c.fetch16();
  const target = c.o32 ? c.pop32() : c.pop16();
  if ((target >>> 0) > c.segHi[C.CS]) c.fault(C.GP, 0);
  c.eip = target;
  c.sp = c.ss32 ? (c.sp + n) | 0 : (c.sp + n) & 0xffff;
};
OPS[0xc3] = (c) => {
  const target = c.o32 ? c.peek(0, 4) : c.peek(0, 2);
  if ((target >>> 0) > c.segHi[C.CS]) c.fault(C.GP, 0);
  c.sp = c.ss32 ? (c.sp + (c.o32 ? 4 : 2)) | 0 : (c.sp + (c.o32 ? 4 : 2)) & 0xffff;
  c.eip = target;
};
// C4 LES, C5 LDS (0F B2 LSS, B4 LFS, B5 LGS): a register operand is #UD.
function loadFarPointer(s: number): Op {
  return (c) => {
    c.decodeModrm();
    if (c.modrm >= 0xc0) c.undefinedOpcode();
    const off = c.o32 ? c.read32(c.eaSeg, c.eaOff) : c.read16(c.eaSeg, c.eaOff);
    const sel = c.read16(c.eaSeg, c.eaPlus(c.o32 ? 4 : 2));
    c.loadSeg(s, sel);
    if (c.o32) c.r32[c.regField] = off;
    else c.r16[c.regField << 1] = off;
    if (s === C.SS) c.interruptShadow = 1;
  };
}
OPS[0xc4] = loadFarPointer(C.ES);
OPS[0xc5] = loadFarPointer(C.DS);
OPS[0x1b2] = loadFarPointer(C.SS);
OPS[0x1b4] = loadFarPointer(C.FS);
OPS[0x1b5] = loadFarPointer(C.GS);
// C6/C7 MOV Ev, imm (/0 only)
OPS[0xc6] = (c) => {
  c.decodeModrm();
  if (c.regField !== 0) c.undefinedOpcode();
  c.setRm8(c.fetch8());
};
OPS[0xc7] = (c) => {
  c.decodeModrm();
  if (c.regField !== 0) c.undefinedOpcode();
  if (c.o32) c.setRm32(c.fetch32());
  else c.setRm16(c.fetch16());
};
// C8 ENTER Iw, Ib (SDM vol.2 ENTER, nesting level mod 32). Nothing is committed until the
// end, and a write at the final stack pointer is checked first: ENTER raises #PF or #SS "if a
// write using the final value of the stack pointer would" fault, before it has pushed anything.
OPS[0xc8] = (c) => {
  const size = c.fetch16();
  const level = c.fetch8() & 31;
  const w = c.o32 ? 4 : 2;
  const ss32 = c.ss32;
  const esp = c.r32[C.ESP];
  const wrap = (v: number): number => (ss32 ? v | 0 : v & 0xffff);
  let sp = wrap(esp);
  const finalSp = wrap(sp - (level === 0 ? 1 : level + 1) * w - size);
  c.probeWrite(c.linW(C.SS, finalSp, 1), 1);
  const push = (v: number): void => {
    sp = wrap(sp - w);
    if (w === 4) c.write32(C.SS, sp, v);
    else c.write16(C.SS, sp, v);
  };
  push(c.o32 ? c.r32[C.EBP] : c.r16[C.EBP << 1]);
  // FrameTemp is ESP for a 32-bit ENTER and SP for a 16-bit one, whatever the stack's size:
  // a 32-bit ENTER on a 16-bit stack keeps ESP's upper half in EBP.
  const frame = c.o32 ? (ss32 ? sp : (esp & ~0xffff) | sp) : sp & 0xffff;
  if (level > 0) {
    let p = ss32 ? c.r32[C.EBP] : c.r16[C.EBP << 1];
    for (let i = 1; i < level; i++) {
      p = wrap(p - w);
      push(w === 4 ? c.read32(C.SS, p) : c.read16(C.SS, p));
    }
    push(frame);
  }
  sp = wrap(sp - size);
  if (c.o32) c.r32[C.EBP] = frame;
  else c.r16[C.EBP << 1] = frame;
  if (ss32) c.r32[C.ESP] = sp;
  else c.r16[C.ESP << 1] = sp;
};
// C9 LEAVE
OPS[0xc9] = (c) => {
  const bp = c.ss32 ? c.r32[C.EBP] : c.r16[C.EBP << 1];
  const v = c.o32 ? c.read32(C.SS, bp) : c.read16(C.SS, bp);
  const w = c.o32 ? 4 : 2;
  if (c.ss32) c.r32[C.ESP] = (bp + w) | 0;
  else c.r16[C.ESP << 1] = (bp + w) & 0xffff;
  if (c.o32) c.r32[C.EBP] = v;
  else c.r16[C.EBP << 1] = v;
};
// CC INT3, CD INT n, CE INTO
OPS[0xcc] = (c) => {
  c.interrupt(C.BP, -1, true);
  c.suppressTrap = true;
};
OPS[0xcd] = (c) => {
  const n = c.fetch8();
  c.interrupt(n, -1, true);
  c.suppressTrap = true;
};
OPS[0xce] = (c) => {
  if (c.of()) {
    c.interrupt(C.OF_VEC, -1, true);
    c.suppressTrap = true;
  }
};
// D4 AAM, D5 AAD (with their immediate base; AAM 0 is #DE)
OPS[0xd4] = (c) => {
  const base = c.fetch8();
  if (base === 0) c.fault(C.DE);
  const al = c.r8[0];
  c.r8[1] = (al / base) | 0;
  c.r8[0] = al % base;
  alu(c, 4, c.r8[0], 0xff, 8);
};
OPS[0xd5] = (c) => {
  const base = c.fetch8();
  const r = (c.r8[0] + c.r8[1] * base) & 0xff;
  // The flags come from the internal add of AH*base to AL (as the P6 computes them).
  alu(c, 0, c.r8[0], (c.r8[1] * base) & 0xff, 8);
  c.r16[0] = r;
};
// D6 SALC (undocumented, present on the P6): AL = CF ? FF : 00.
OPS[0xd6] = (c) => { c.r8[0] = c.cf() ? 0xff : 0; };
// D7 XLAT
OPS[0xd7] = (c) => {
  const off = c.a32 ? (c.r32[C.EBX] + c.r8[0]) | 0 : (c.r16[C.EBX << 1] + c.r8[0]) & 0xffff;
  c.r8[0] = c.read8(c.dataSeg(), off);
};
// D8-DF x87 escapes
for (let op = 0xd8; op <= 0xdf; op++) {
  OPS[op] = (c) => {
    c.decodeModrm();
    const mem = c.modrm < 0xc0;
    // The whole operand must lie within its segment; the x87 itself works on linear addresses.
    const lin = mem ? c.linR(c.eaSeg, c.eaOff, x87OperandSize(op, c.regField, c.o32)) : 0;
    // Without a coprocessor attached, an ESC decodes its operand and does nothing (as on an 8086/286 with no 287).
    if (!c.fpu) return;
    if (c.cr0 & (C.CR0_EM | C.CR0_TS)) c.fault(C.NM);
    c.fpu.exec(op, c.modrm, lin, c.sreg[c.eaSeg], c.eaOff, c.o32, c.protectedMode && !c.v86, c.sreg[C.CS], c.instrStart);
  };
}
// 0F AE /0 FXSAVE, /1 FXRSTOR, /7 CLFLUSH (the other forms are SSE/SSE2: #UD on this CPU).
OPS[0x1ae] = (c) => {
  c.decodeModrm();
  const reg = c.regField;
  const fpu = c.fpu;
  if (reg === 7 && c.modrm < 0xc0) {
    // CLFLUSH (SDM vol.2A): there is no cache to write back, so only its checks remain:
    // "subject to all permission checking and faults associated with a byte load". Linux's
    // intel-iommu flushes the page tables it writes with it (see CPUID.1:EDX.CLFSH). The
    // segment and page checks of a read, without reading: a line of MMIO has no side effects.
    c.translate(c.linR(c.eaSeg, c.eaOff, 1), false);
    return;
  }
  if (c.modrm >= 0xc0 || reg > 1 || !fpu) return c.undefinedOpcode();
  if (c.cr0 & (C.CR0_EM | C.CR0_TS)) c.fault(C.NM);
  if (reg === 0) fpu.fxsave(c.linW(c.eaSeg, c.eaOff, 512));
  else fpu.fxrstor(c.linR(c.eaSeg, c.eaOff, 512));
};
/** Bytes of an x87 memory operand (SDM vol.1 §8.1.10 for the environment and state images). */
export function x87OperandSize(op: number, reg: number, o32: boolean): number {
  const env = o32 ? 28 : 14;
  switch (op) {
    case 0xd8: return 4;
    case 0xd9: return reg === 4 || reg === 6 ? env : reg === 5 || reg === 7 ? 2 : 4;
    case 0xda: return 4;
    case 0xdb: return reg === 5 || reg === 7 ? 10 : 4;
    case 0xdc: return 8;
    case 0xdd: return reg === 4 || reg === 6 ? env + 80 : reg === 7 ? 2 : 8;
    case 0xde: return 2;
    default: return reg === 4 || reg === 6 ? 10 : reg === 5 || reg === 7 ? 8 : 2;
  }
}

// E0-E2 LOOPNE/LOOPE/LOOP, E3 JCXZ
function loopOp(kind: number): Op {
  return (c) => {
    const rel = c.fetchS8();
    let count: number;
    if (c.a32) count = c.r32[C.ECX] = (c.r32[C.ECX] - 1) | 0;
    else count = c.r16[C.ECX << 1] = (c.r16[C.ECX << 1] - 1) & 0xffff;
    const take = count !== 0 && (kind === 2 || (kind === 1 ? c.zf() : !c.zf()));
    if (take) jump(c, rel);
  };
}
OPS[0xe0] = loopOp(0);
OPS[0xe1] = loopOp(1);
OPS[0xe2] = loopOp(2);
OPS[0xe3] = (c) => {
  const rel = c.fetchS8();
  if ((c.a32 ? c.r32[C.ECX] : c.r16[C.ECX << 1]) === 0) jump(c, rel);
};
// E4-E7, EC-EF IN/OUT
function inOp(size: number, immPort: boolean): Op {
  return (c) => {
    const port = immPort ? c.fetch8() : c.r16[C.EDX << 1];
    if (!ioPermitted(c, port, size)) c.fault(C.GP, 0);
    if (size === 1) c.r8[0] = c.io.in8(port);
    else if (size === 2) c.r16[0] = c.io.in16(port);
    else c.r32[0] = c.io.in32(port);
  };
}
function outOp(size: number, immPort: boolean): Op {
  return (c) => {
    const port = immPort ? c.fetch8() : c.r16[C.EDX << 1];
    if (!ioPermitted(c, port, size)) c.fault(C.GP, 0);
    if (size === 1) c.io.out8(port, c.r8[0]);
    else if (size === 2) c.io.out16(port, c.r16[0]);
    else c.io.out32(port, c.r32[0]);
  };
}
// The word and dword forms are made once here and chosen per execution by the operand
// size (no closure built per instruction).
function sized(word: Op, dword: Op): Op {
  return (c) => (c.o32 ? dword(c) : word(c));
}
OPS[0xe4] = inOp(1, true);
OPS[0xe5] = sized(inOp(2, true), inOp(4, true));
OPS[0xe6] = outOp(1, true);
OPS[0xe7] = sized(outOp(2, true), outOp(4, true));
OPS[0xec] = inOp(1, false);
OPS[0xed] = sized(inOp(2, false), inOp(4, false));
OPS[0xee] = outOp(1, false);
OPS[0xef] = sized(outOp(2, false), outOp(4, false));
// E8 CALL rel, E9 JMP rel, EB JMP rel8
OPS[0xe8] = (c) => {
  const rel = c.o32 ? c.fetch32() : (c.fetch16() << 16) >> 16;
  const target = c.o32 ? (c.eip + rel) | 0 : (c.eip + rel) & 0xffff;
  if ((target >>> 0) > c.segHi[C.CS]) c.fault(C.GP, 0);
  c.push(c.eip);
  c.eip = target;
};
OPS[0xe9] = (c) => jump(c, c.o32 ? c.fetch32() : (c.fetch16() << 16) >> 16);
OPS[0xeb] = (c) => jump(c, c.fetchS8());
// F4 HLT (privileged)
OPS[0xf4] = (c) => {
  if (c.cpl !== 0 && c.protectedMode) c.fault(C.GP, 0);
  c.halted = true;
  c.stopSlice = true;
};
// F5 CMC, F8-FD flag instructions
OPS[0xf5] = (c) => c.setStatusFlags(C.CF, c.cf() ? 0 : C.CF);
OPS[0xf8] = (c) => c.setStatusFlags(C.CF, 0);
OPS[0xf9] = (c) => c.setStatusFlags(C.CF, C.CF);
OPS[0xfc] = (c) => { c.flags &= ~C.DF; };
OPS[0xfd] = (c) => { c.flags |= C.DF; };

// F6/F7 group 3: TEST NOT NEG MUL IMUL DIV IDIV
OPS[0xf6] = (c) => {
  c.decodeModrm();
  const op = c.regField;
  if (c.lock && op !== 2 && op !== 3) c.undefinedOpcode();
  c.checkLockMemory();
  switch (op) {
    case 0:
    case 1:
      alu(c, 4, c.rm8(), c.fetch8(), 8);
      return;
    case 2:
      c.setRm8(~c.rmw8() & 0xff);
      return;
    case 3:
      c.setRm8(neg(c, c.rmw8(), 8));
      return;
    case 4: {
      const p = c.r8[0] * c.rm8();
      c.r16[0] = p;
      setMulFlags(c, (p & 0xff00) !== 0, p, 8);
      return;
    }
    case 5: {
      const p = ((c.r8[0] << 24) >> 24) * ((c.rm8() << 24) >> 24);
      c.r16[0] = p;
      setMulFlags(c, p !== (p << 24) >> 24, p, 8);
      return;
    }
    case 6: {
      const d = c.rm8();
      if (d === 0) c.fault(C.DE);
      const n = c.r16[0];
      const q = (n / d) | 0;
      if (q > 0xff) c.fault(C.DE);
      c.r8[0] = q;
      c.r8[1] = n % d;
      return;
    }
    default: {
      const d = (c.rm8() << 24) >> 24;
      if (d === 0) c.fault(C.DE);
      const n = (c.r16[0] << 16) >> 16;
      const q = (n / d) | 0;
      if (q > 127 || q < -128) c.fault(C.DE);
      c.r8[0] = q;
      c.r8[1] = n % d;
    }
  }
};
OPS[0xf7] = (c) => {
  c.decodeModrm();
  const op = c.regField;
  if (c.lock && op !== 2 && op !== 3) c.undefinedOpcode();
  c.checkLockMemory();
  if (c.o32) group3d(c, op);
  else group3w(c, op);
};
function group3w(c: Cpu, op: number): void {
  switch (op) {
    case 0:
    case 1:
      alu(c, 4, c.rm16(), c.fetch16(), 16);
      return;
    case 2:
      c.setRm16(~c.rmw16() & 0xffff);
      return;
    case 3:
      c.setRm16(neg(c, c.rmw16(), 16));
      return;
    case 4: {
      const p = c.r16[0] * c.rm16();
      c.r16[0] = p;
      c.r16[C.EDX << 1] = p >>> 16;
      setMulFlags(c, p >>> 16 !== 0, p, 16);
      return;
    }
    case 5: {
      const p = ((c.r16[0] << 16) >> 16) * ((c.rm16() << 16) >> 16);
      c.r16[0] = p;
      c.r16[C.EDX << 1] = p >> 16;
      setMulFlags(c, p !== (p << 16) >> 16, p, 16);
      return;
    }
    case 6: {
      const d = c.rm16();
      if (d === 0) c.fault(C.DE);
      const n = ((c.r16[C.EDX << 1] << 16) | c.r16[0]) >>> 0;
      const q = Math.floor(n / d);
      if (q > 0xffff) c.fault(C.DE);
      c.r16[0] = q;
      c.r16[C.EDX << 1] = n % d;
      return;
    }
    default: {
      const d = (c.rm16() << 16) >> 16;
      if (d === 0) c.fault(C.DE);
      const n = (c.r16[C.EDX << 1] << 16) | c.r16[0];
      const q = Math.trunc(n / d);
      if (q > 32767 || q < -32768) c.fault(C.DE);
      c.r16[0] = q;
      c.r16[C.EDX << 1] = n % d;
    }
  }
}
function group3d(c: Cpu, op: number): void {
  switch (op) {
    case 0:
    case 1:
      alu(c, 4, c.rm32(), c.fetch32(), 32);
      return;
    case 2:
      c.setRm32(~c.rmw32());
      return;
    case 3:
      c.setRm32(neg(c, c.rmw32(), 32));
      return;
    case 4:
    case 5: {
      const lo = mul32(c.r32[0], c.rm32(), op === 5);
      const hi = MUL_HIGH[0];
      c.r32[0] = lo;
      c.r32[C.EDX] = hi;
      setMulFlags(c, op === 4 ? hi !== 0 : hi !== lo >> 31, lo, 32);
      return;
    }
    case 6: {
      const dn = c.rm32() >>> 0;
      if (dn === 0) c.fault(C.DE);
      const high = c.r32[C.EDX] >>> 0;
      if (high < 0x200000) {
        // The dividend fits in 53 bits: the double quotient never rounds across an integer
        // (that would take 1/dn < ulp(q)/2, i.e. q * dn >= 2^53), so its floor is exact.
        const n = high * 0x100000000 + (c.r32[0] >>> 0);
        const q = Math.floor(n / dn);
        if (q > 0xffffffff) c.fault(C.DE);
        c.r32[0] = q;
        c.r32[C.EDX] = n - q * dn;
        return;
      }
      const d = BigInt(dn);
      const n = (BigInt(c.r32[C.EDX] >>> 0) << 32n) | BigInt(c.r32[0] >>> 0);
      const q = n / d;
      if (q > 0xffffffffn) c.fault(C.DE);
      c.r32[0] = Number(BigInt.asIntN(32, q));
      c.r32[C.EDX] = Number(BigInt.asIntN(32, n % d));
      return;
    }
    default: {
      const d = BigInt(c.rm32() | 0);
      if (d === 0n) c.fault(C.DE);
      const n = (BigInt(c.r32[C.EDX] | 0) << 32n) | BigInt(c.r32[0] >>> 0);
      const q = n / d;
      if (q > 0x7fffffffn || q < -0x80000000n) c.fault(C.DE);
      c.r32[0] = Number(q);
      c.r32[C.EDX] = Number(n % d);
    }
  }
}

// FE group 4: INC/DEC Eb; FF group 5: INC DEC CALL CALLF JMP JMPF PUSH
OPS[0xfe] = (c) => {
  c.decodeModrm();
  const op = c.regField;
  if (op > 1) c.undefinedOpcode();
  c.checkLockMemory();
  c.setRm8(incDec(c, c.rmw8(), op === 1, 8));
};
OPS[0xff] = (c) => {
  c.decodeModrm();
  const op = c.regField;
  if (c.lock && op > 1) c.undefinedOpcode();
  c.checkLockMemory();
  switch (op) {
    case 0:
    case 1:
      if (c.o32) c.setRm32(incDec(c, c.rmw32(), op === 1, 32));
      else c.setRm16(incDec(c, c.rmw16(), op === 1, 16));
      return;
    case 2: {
      const target = c.o32 ? c.rm32() : c.rm16();
      if ((target >>> 0) > c.segHi[C.CS]) c.fault(C.GP, 0);
      c.push(c.eip);
      c.eip = target;
      return;
    }
    case 3:
    case 5: {
      if (c.modrm >= 0xc0) c.undefinedOpcode();
      const off = c.o32 ? c.read32(c.eaSeg, c.eaOff) : c.read16(c.eaSeg, c.eaOff);
      const sel = c.read16(c.eaSeg, c.eaPlus(c.o32 ? 4 : 2));
      if (op === 3) farCall(c, sel, off);
      else farJump(c, sel, off);
      return;
    }
    case 4: {
      const target = c.o32 ? c.rm32() : c.rm16();
      if ((target >>> 0) > c.segHi[C.CS]) c.fault(C.GP, 0);
      c.eip = target;
      return;
    }
    case 6:
      c.push(c.o32 ? c.rm32() : c.rm16());
      return;
    default:
      c.undefinedOpcode();
  }
};

// 9A CALL far, EA JMP far, CA/CB RET far, CF IRET
OPS[0x9a] = (c) => {
  const off = c.o32 ? c.fetch32() : c.fetch16();
  const sel = c.fetch16();
  farCall(c, sel, off);
};
OPS[0xea] = (c) => {
  const off = c.o32 ? c.fetch32() : c.fetch16();
  const sel = c.fetch16();
  farJump(c, sel, off);
};
OPS[0xca] = (c) => farReturn(c, c.fetch16());
OPS[0xcb] = (c) => farReturn(c, 0);
OPS[0xcf] = (c) => iret(c);
// 9C PUSHF, 9D POPF
OPS[0x9c] = (c) => pushf(c);
OPS[0x9d] = (c) => popf(c);
// FA CLI, FB STI
OPS[0xfa] = (c) => cli(c);
OPS[0xfb] = (c) => sti(c);

// ---------------------------------------------------------------------------------------
// 0F map: bit operations, MOVZX/MOVSX, SHLD/SHRD, XADD, CMPXCHG, IMUL
// ---------------------------------------------------------------------------------------
// 0F A3/AB/B3/BB BT/BTS/BTR/BTC Ev, Gv; 0F BA /4-7 with Ib. Register bit offsets address memory beyond the operand.
function bitOp(kind: number, imm: boolean): Op {
  return (c) => {
    c.decodeModrm();
    if (imm && c.regField < 4) c.undefinedOpcode();
    const k = imm ? c.regField - 4 : kind;
    if (k !== 0) c.checkLockMemory();
    const bits = c.o32 ? 32 : 16;
    let bitOffset = imm ? c.fetch8() : c.o32 ? c.r32[c.regField] : (c.r16[c.regField << 1] << 16) >> 16;
    let v: number;
    if (c.modrm >= 0xc0) {
      bitOffset &= bits - 1;
      v = c.o32 ? c.r32[c.modrm & 7] : c.r16[(c.modrm & 7) << 1];
    } else {
      if (imm) bitOffset &= bits - 1;
      else {
        const disp = Math.floor(bitOffset / bits) * (bits / 8);
        c.eaOff = c.a32 ? (c.eaOff + disp) | 0 : (c.eaOff + disp) & 0xffff;
        bitOffset &= bits - 1;
      }
      v = k === 0 ? (c.o32 ? c.rm32() : c.rm16()) : c.o32 ? c.rmw32() : c.rmw16();
    }
    const mask = 1 << bitOffset;
    c.setStatusFlags(C.CF, (v & mask) !== 0 ? C.CF : 0);
    if (k === 0) return;
    const r = k === 1 ? v | mask : k === 2 ? v & ~mask : v ^ mask;
    if (c.o32) c.setRm32(r);
    else c.setRm16(r & 0xffff);
  };
}
OPS[0x1a3] = bitOp(0, false);
OPS[0x1ab] = bitOp(1, false);
OPS[0x1b3] = bitOp(2, false);
OPS[0x1bb] = bitOp(3, false);
OPS[0x1ba] = bitOp(0, true);
// 0F BC BSF, 0F BD BSR: ZF=1 and destination unchanged when the source is zero.
function bitScan(reverse: boolean): Op {
  return (c) => {
    c.decodeModrm();
    const v = c.o32 ? c.rm32() : c.rm16();
    if (v === 0) {
      c.setStatusFlags(C.ZF, C.ZF);
      return;
    }
    const idx = reverse ? 31 - Math.clz32(v) : 31 - Math.clz32(v & -v);
    if (c.o32) c.r32[c.regField] = idx;
    else c.r16[c.regField << 1] = idx;
    c.setStatusFlags(C.ZF, 0);
  };
}
OPS[0x1bc] = bitScan(false);
OPS[0x1bd] = bitScan(true);
// 0F A4/A5 SHLD, 0F AC/AD SHRD
function shd(left: boolean, cl: boolean): Op {
  return (c) => {
    c.decodeModrm();
    if (c.o32) {
      const v = c.rmw32();
      const n = cl ? c.r8[4] : c.fetch8();
      c.setRm32(shiftDouble(c, left, v, c.r32[c.regField], n, 32));
    } else {
      const v = c.rmw16();
      const n = cl ? c.r8[4] : c.fetch8();
      c.setRm16(shiftDouble(c, left, v, c.r16[c.regField << 1], n, 16));
    }
  };
}
OPS[0x1a4] = shd(true, false);
OPS[0x1a5] = shd(true, true);
OPS[0x1ac] = shd(false, false);
OPS[0x1ad] = shd(false, true);
// 0F AF IMUL Gv, Ev
OPS[0x1af] = (c) => {
  c.decodeModrm();
  if (c.o32) {
    const lo = mul32(c.r32[c.regField], c.rm32(), true);
    const hi = MUL_HIGH[0];
    c.r32[c.regField] = lo;
    setMulFlags(c, hi !== lo >> 31, lo, 32);
  } else {
    const p = ((c.r16[c.regField << 1] << 16) >> 16) * ((c.rm16() << 16) >> 16);
    c.r16[c.regField << 1] = p;
    setMulFlags(c, p !== (p << 16) >> 16, p, 16);
  }
};
// 0F B6/B7 MOVZX, 0F BE/BF MOVSX
OPS[0x1b6] = (c) => {
  c.decodeModrm();
  const v = c.rm8();
  if (c.o32) c.r32[c.regField] = v;
  else c.r16[c.regField << 1] = v;
};
OPS[0x1b7] = (c) => {
  c.decodeModrm();
  const v = c.rm16();
  if (c.o32) c.r32[c.regField] = v;
  else c.r16[c.regField << 1] = v;
};
OPS[0x1be] = (c) => {
  c.decodeModrm();
  const v = (c.rm8() << 24) >> 24;
  if (c.o32) c.r32[c.regField] = v;
  else c.r16[c.regField << 1] = v;
};
OPS[0x1bf] = (c) => {
  c.decodeModrm();
  const v = (c.rm16() << 16) >> 16;
  if (c.o32) c.r32[c.regField] = v;
  else c.r16[c.regField << 1] = v;
};
// 0F C0/C1 XADD: SRC <- DEST, then DEST <- the sum (SDM vol.2 XADD), so XADD of a register
// with itself leaves the sum. The destination was probed for writing by rmw*: the final
// store cannot fault after the source register has changed.
OPS[0x1c0] = (c) => {
  c.decodeModrm();
  c.checkLockMemory();
  const a = c.rmw8();
  const r = alu(c, 0, a, c.getReg8(c.regField), 8);
  c.setReg8(c.regField, a);
  c.setRm8(r);
};
OPS[0x1c1] = (c) => {
  c.decodeModrm();
  c.checkLockMemory();
  if (c.o32) {
    const a = c.rmw32();
    const r = alu(c, 0, a, c.r32[c.regField], 32);
    c.r32[c.regField] = a;
    c.setRm32(r);
  } else {
    const a = c.rmw16();
    const r = alu(c, 0, a, c.r16[c.regField << 1], 16);
    c.r16[c.regField << 1] = a;
    c.setRm16(r);
  }
};
// 0F B0/B1 CMPXCHG: the destination is always written (with its own value on a mismatch), as the SDM says.
OPS[0x1b0] = (c) => {
  c.decodeModrm();
  c.checkLockMemory();
  const d = c.rmw8();
  alu(c, 7, c.r8[0], d, 8);
  if (c.zf()) c.setRm8(c.getReg8(c.regField));
  else {
    c.setRm8(d);
    c.r8[0] = d;
  }
};
OPS[0x1b1] = (c) => {
  c.decodeModrm();
  c.checkLockMemory();
  if (c.o32) {
    const d = c.rmw32();
    alu(c, 7, c.r32[0], d, 32);
    if (c.zf()) c.setRm32(c.r32[c.regField]);
    else {
      c.setRm32(d);
      c.r32[0] = d;
    }
  } else {
    const d = c.rmw16();
    alu(c, 7, c.r16[0], d, 16);
    if (c.zf()) c.setRm16(c.r16[c.regField << 1]);
    else {
      c.setRm16(d);
      c.r16[0] = d;
    }
  }
};
// 0F C7 /1 CMPXCHG8B m64
OPS[0x1c7] = (c) => {
  c.decodeModrm();
  if (c.regField !== 1 || c.modrm >= 0xc0) c.undefinedOpcode();
  const lin = c.linW(c.eaSeg, c.eaOff, 8);
  c.probeWrite(lin, 8);
  const lo = c.readLin32(lin);
  const hi = c.readLin32((lin + 4) | 0);
  if (lo === c.r32[C.EAX] && hi === c.r32[C.EDX]) {
    c.writeLin32(lin, c.r32[C.EBX]);
    c.writeLin32((lin + 4) | 0, c.r32[C.ECX]);
    c.setStatusFlags(C.ZF, C.ZF);
  } else {
    c.writeLin32(lin, lo);
    c.writeLin32((lin + 4) | 0, hi);
    c.r32[C.EAX] = lo;
    c.r32[C.EDX] = hi;
    c.setStatusFlags(C.ZF, 0);
  }
};
// 0F 0B UD2. 0F 19-1F NOP Ev: 0F 1F is the multi-byte NOP, and the whole row is reserved
// as NOPs on the P6 and later (SDM vol.2 table A-3), which is what makes F3 0F 1E FB (ENDBR32,
// at the start of every function GCC builds with -fcf-protection) run on CPUs without CET.
OPS[0x10b] = (c) => c.undefinedOpcode();
for (let op = 0x119; op <= 0x11f; op++) {
  OPS[op] = (c) => {
    c.decodeModrm();
  };
}

for (const [op, handler] of SYSTEM_OPS) OPS[op] = handler;
