/**
 * The x87 instruction forms of the differential vectors (src/emulator/cpu/fpu/testdata/
 * x87-vectors.json), shared by the generator that runs them on the host's own x87
 * (scripts/x87-vectors/generate.ts) and the test that runs them in Trapdoor
 * (src/emulator/cpu/fpu/x87-vectors.test.ts): both execute the same assembly, so a vector
 * means the same thing on either side.
 *
 * Each vector is a 256-byte record in memory, addressed by EBX. A form's routine sets up
 * the FPU from the record, executes the instruction, and stores what it left behind:
 *
 *     +0   form index (the generator's driver dispatches on it)
 *     +4   control word to load
 *     +8   EFLAGS to load before the instruction (only OF SF ZF AF PF CF vary)
 *     +16  operand A (80-bit), pushed last: ST0
 *     +32  operand B (80-bit), pushed first: ST1
 *     +48  the memory operand the instruction reads or writes (16 bytes)
 *     +64  status word after the instruction (FNSTSW)
 *     +68  EFLAGS after the instruction
 *     +80  FNSAVE image (108 bytes, 32-bit protected-mode layout): the tag word at +8,
 *          ST0-ST7 from +28, 10 bytes each
 *
 * Only no-wait instructions (FNSTSW, FNSAVE) follow the instruction under test, so a
 * vector that leaves an unmasked exception pending is still observed without a trap, and
 * FNSAVE's reinitialisation clears it before the next record.
 */

import { recordLoop as dispatchLoop } from './record-loop.ts';

export const RECORD = {
  size: 256,
  form: 0,
  cw: 4,
  eflags: 8,
  a: 16,
  b: 32,
  mem: 48,
  sw: 64,
  eflagsOut: 68,
  save: 80,
} as const;

/** Offsets inside the FNSAVE image (SDM vol.1 figure 8-10, 32-bit protected mode). */
export const SAVE = { tagWord: 8, st0: 28 } as const;

/** The arithmetic flags a vector loads and compares (OF SF ZF AF PF CF). */
export const EFLAGS_MASK = 0x8d5;

export type MemFormat = 'f32' | 'f64' | 'f80' | 'i16' | 'i32' | 'i64' | 'bcd';

export const MEM_SIZE: Record<MemFormat, number> = { f32: 4, f64: 8, f80: 10, i16: 2, i32: 4, i64: 8, bcd: 10 };

export interface X87Form {
  /** The instruction as written; the key of its vectors in the JSON file. */
  name: string;
  /** Operands pushed from the record first: 2 = B then A (ST0 = A, ST1 = B), 1 = A, 0 = none. */
  depth: 0 | 1 | 2;
  /** Format of the memory operand the instruction reads at +48. */
  memIn?: MemFormat;
  /** Format of what the instruction stores at +48 (those bytes are compared). */
  memOut?: MemFormat;
  /** The instruction(s) under test; `MEM` is the memory operand's address. */
  asm: string;
}

const MEM = 'ebx + 48';

function form(name: string, depth: 0 | 1 | 2, asm: string, mem: { memIn?: MemFormat; memOut?: MemFormat } = {}): X87Form {
  return { name, depth, asm: asm.replaceAll('MEM', MEM), ...mem };
}

const ARITH = ['fadd', 'fsub', 'fsubr', 'fmul', 'fdiv', 'fdivr'] as const;
export type ArithOp = (typeof ARITH)[number];

function arithForms(): X87Form[] {
  const out: X87Form[] = [];
  for (const op of ARITH) {
    out.push(form(`${op} st0, st1`, 2, `${op} st0, st1`));
    out.push(form(`${op} st1, st0`, 2, `${op} st1, st0`));
    out.push(form(`${op}p st1, st0`, 2, `${op}p st1, st0`));
    out.push(form(`${op} m32`, 1, `${op} dword [MEM]`, { memIn: 'f32' }));
    out.push(form(`${op} m64`, 1, `${op} qword [MEM]`, { memIn: 'f64' }));
    const iop = `fi${op.slice(1)}`;
    out.push(form(`${iop} m32`, 1, `${iop} dword [MEM]`, { memIn: 'i32' }));
    out.push(form(`${iop} m16`, 1, `${iop} word [MEM]`, { memIn: 'i16' }));
  }
  return out;
}

export const X87_FORMS: readonly X87Form[] = [
  ...arithForms(),
  form('fsqrt', 1, 'fsqrt'),
  form('frndint', 1, 'frndint'),
  form('fabs', 1, 'fabs'),
  form('fchs', 1, 'fchs'),
  form('fscale', 2, 'fscale'),
  form('fxtract', 1, 'fxtract'),
  form('fprem', 2, 'fprem'),
  form('fprem1', 2, 'fprem1'),
  form('fcom st1', 2, 'fcom st1'),
  form('fcomp st1', 2, 'fcomp st1'),
  form('fcompp', 2, 'fcompp'),
  form('fucom st1', 2, 'fucom st1'),
  form('fucomp st1', 2, 'fucomp st1'),
  form('fucompp', 2, 'fucompp'),
  form('fcomi st0, st1', 2, 'fcomi st0, st1'),
  form('fcomip st0, st1', 2, 'fcomip st0, st1'),
  form('fucomi st0, st1', 2, 'fucomi st0, st1'),
  form('fucomip st0, st1', 2, 'fucomip st0, st1'),
  form('fcom m32', 1, 'fcom dword [MEM]', { memIn: 'f32' }),
  form('fcomp m64', 1, 'fcomp qword [MEM]', { memIn: 'f64' }),
  form('ficom m32', 1, 'ficom dword [MEM]', { memIn: 'i32' }),
  form('ftst', 1, 'ftst'),
  form('fxam', 1, 'fxam'),
  form('fld m32', 0, 'fld dword [MEM]', { memIn: 'f32' }),
  form('fld m64', 0, 'fld qword [MEM]', { memIn: 'f64' }),
  form('fld m80', 0, 'fld tword [MEM]', { memIn: 'f80' }),
  form('fild m16', 0, 'fild word [MEM]', { memIn: 'i16' }),
  form('fild m32', 0, 'fild dword [MEM]', { memIn: 'i32' }),
  form('fild m64', 0, 'fild qword [MEM]', { memIn: 'i64' }),
  form('fbld', 0, 'fbld tword [MEM]', { memIn: 'bcd' }),
  form('fst m32', 1, 'fst dword [MEM]', { memOut: 'f32' }),
  form('fstp m32', 1, 'fstp dword [MEM]', { memOut: 'f32' }),
  form('fst m64', 1, 'fst qword [MEM]', { memOut: 'f64' }),
  form('fstp m64', 1, 'fstp qword [MEM]', { memOut: 'f64' }),
  form('fstp m80', 1, 'fstp tword [MEM]', { memOut: 'f80' }),
  form('fist m16', 1, 'fist word [MEM]', { memOut: 'i16' }),
  form('fistp m16', 1, 'fistp word [MEM]', { memOut: 'i16' }),
  form('fist m32', 1, 'fist dword [MEM]', { memOut: 'i32' }),
  form('fistp m32', 1, 'fistp dword [MEM]', { memOut: 'i32' }),
  form('fistp m64', 1, 'fistp qword [MEM]', { memOut: 'i64' }),
  form('fbstp', 1, 'fbstp tword [MEM]', { memOut: 'bcd' }),
  form('fldpi', 0, 'fldpi'),
  form('fldl2e', 0, 'fldl2e'),
  form('fldl2t', 0, 'fldl2t'),
  form('fldlg2', 0, 'fldlg2'),
  form('fldln2', 0, 'fldln2'),
  form('fld1', 0, 'fld1'),
  form('fldz', 0, 'fldz'),
  // Stack faults (SDM vol.1 §8.5.1.1): masked, they give the indefinite and C1 says which.
  form('fadd st0, st1 (ST1 empty)', 1, 'fadd st0, st1'),
  form('fld m80 (stack full)', 0, 'times 8 fld1\n    fld tword [MEM]', { memIn: 'f80' }),
  form('fstp m32 (ST0 empty)', 0, 'fstp dword [MEM]', { memOut: 'f32' }),
  form('fistp m16 (ST0 empty)', 0, 'fistp word [MEM]', { memOut: 'i16' }),
  form('fxam (ST0 empty)', 0, 'fxam'),
  form('fcomi st0, st1 (ST1 empty)', 1, 'fcomi st0, st1'),
  // The transcendental instructions (last, so the operands drawn for the forms above stay the same).
  form('fsin', 1, 'fsin'),
  form('fcos', 1, 'fcos'),
  form('fsincos', 1, 'fsincos'),
  form('fptan', 1, 'fptan'),
  form('fpatan', 2, 'fpatan'),
  form('f2xm1', 1, 'f2xm1'),
  form('fyl2x', 2, 'fyl2x'),
  form('fyl2xp1', 2, 'fyl2xp1'),
  form('fsincos (stack full)', 1, 'times 7 fldz\n    fsincos'),
  form('fptan (ST0 empty)', 0, 'fptan'),
];

/**
 * The transcendental forms: a real x87 is not correctly rounded there (SDM vol.1 §8.3.10:
 * within one unit in the last place), so the test lets their results differ from the
 * hardware's by one unit in the last place, and C1 (which reports the hardware's own
 * rounding) with them.
 */
export const TRANSCENDENTAL_FORMS: ReadonlySet<string> = new Set(['fsin', 'fcos', 'fsincos', 'fptan', 'fpatan', 'f2xm1', 'fyl2x', 'fyl2xp1']);

/** The routine for one form: set up from the record at EBX, execute, store the results, RET. */
export function formRoutine(f: X87Form, label: string): string {
  const R = RECORD;
  const loads: string[] = [];
  if (f.depth >= 2) loads.push(`fld tword [ebx + ${R.b}]`);
  if (f.depth >= 1) loads.push(`fld tword [ebx + ${R.a}]`);
  return `
${label}:
    fninit
    fldcw [ebx + ${R.cw}]
${loads.map((l) => `    ${l}`).join('\n')}
    push dword [ebx + ${R.eflags}]
    popfd
    ${f.asm}
    pushfd
    pop dword [ebx + ${R.eflagsOut}]
    fnstsw [ebx + ${R.sw}]
    fnsave [ebx + ${R.save}]
    ret
`;
}

/** The loop both sides run over the records: `x87_records`, through each record's form's routine. */
export function recordLoop(forms: readonly X87Form[]): string {
  const routines = forms.map((f, i) => ({ label: `x87_form_${i}`, source: formRoutine(f, `x87_form_${i}`) }));
  return dispatchLoop('x87_records', routines, RECORD.size);
}

/** One vector of fpu/testdata/x87-vectors.json (hex strings), as the generator writes it and the test reads it. */
export interface X87Vector {
  cw: string;
  eflags: string;
  a?: string;
  b?: string;
  mem?: string;
  expect: { sw: string; tw: string; st: string[]; eflags: string; mem?: string };
}
