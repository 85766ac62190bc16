/**
 * The integer instruction forms of the differential vectors (src/emulator/cpu/testdata/
 * int-vectors.json), shared by the generator that runs them on the host's own CPU
 * (scripts/int-vectors/generate.ts) and the test that runs them in Trapdoor
 * (src/emulator/cpu/int-vectors.test.ts): both execute the same assembly.
 *
 * Each vector is a 128-byte record addressed by EBX. A form's routine loads EFLAGS, the
 * general registers but ESP, and 16 bytes of scratch memory on the stack (the memory operand
 * `[esp]`), executes the instruction, and stores them all back:
 *
 *     +0   form index            +52  EFLAGS after
 *     +4   EFLAGS to load        +56  registers after
 *     +8   EAX ECX EDX EBX EBP ESI EDI to load (7 dwords)
 *     +36  scratch memory in     +84  scratch memory after (16 bytes)
 *
 * The flags the SDM leaves undefined for an instruction (which depend on its operands for
 * the shifts and rotates) are kept apart by `undefinedFlags`: the test holds Trapdoor to the
 * defined ones and reports how many of the others agree with the host.
 */
import { recordLoop as dispatchLoop } from './record-loop.ts';

export const INT_RECORD = { size: 128, form: 0, eflags: 4, regs: 8, mem: 36, eflagsOut: 52, regsOut: 56, memOut: 84 } as const;

/** Register order in a record. */
export const INT_REGS = ['eax', 'ecx', 'edx', 'ebx', 'ebp', 'esi', 'edi'] as const;

/** The arithmetic flags (OF SF ZF AF PF CF), the ones a vector varies and compares. */
export const ARITH_FLAGS = 0x8d5;
const OF = 0x800, SF = 0x80, ZF = 0x40, AF = 0x10, PF = 0x4, CF = 0x1;

/** Operand shapes the generator draws values for. */
export type IntKind = 'alu' | 'shift' | 'double-shift' | 'mul' | 'div' | 'idiv' | 'bit' | 'bit-mem' | 'scan' | 'bcd' | 'any';

/** What a vector's inputs are, as the form sees them. */
export interface IntInputs {
  eflags: number;
  regs: readonly number[];
}

export interface IntForm {
  name: string;
  asm: string;
  kind: IntKind;
  /** Operand size in bits (8, 16, 32), where it matters for the undefined flags. */
  size: number;
  /** Flags the SDM leaves undefined for these inputs. */
  undefinedFlags: (v: IntInputs) => number;
  /** The registers the SDM leaves undefined for these inputs (BSF/BSR of zero, SHLD beyond the size). */
  undefinedRegs?: (v: IntInputs) => readonly number[];
}

const none = () => 0;
const reg = (v: IntInputs, name: (typeof INT_REGS)[number]) => v.regs[INT_REGS.indexOf(name)] >>> 0;

const REG_NAMES: Record<number, [string, string]> = { 8: ['al', 'bl'], 16: ['ax', 'bx'], 32: ['eax', 'ebx'] };

function alu(): IntForm[] {
  const out: IntForm[] = [];
  for (const op of ['add', 'adc', 'sub', 'sbb', 'and', 'or', 'xor', 'cmp', 'test']) {
    const undef = ['and', 'or', 'xor', 'test'].includes(op) ? () => AF : none;
    for (const size of [8, 16, 32]) {
      const [a, b] = REG_NAMES[size];
      out.push({ name: `${op} ${a}, ${b}`, asm: `${op} ${a}, ${b}`, kind: 'alu', size, undefinedFlags: undef });
    }
    // (TEST has no sign-extended imm8 form.)
    const imm = op === 'test' ? '0x0f0f0f0f' : 'byte -100';
    out.push({ name: `${op} eax, imm`, asm: `${op} eax, ${imm}`, kind: 'alu', size: 32, undefinedFlags: undef });
    out.push({ name: `${op} m32, ebx`, asm: `${op} dword [esp], ebx`, kind: 'alu', size: 32, undefinedFlags: undef });
  }
  for (const op of ['inc', 'dec', 'neg', 'not']) {
    for (const size of [8, 16, 32]) out.push({ name: `${op} ${REG_NAMES[size][0]}`, asm: `${op} ${REG_NAMES[size][0]}`, kind: 'alu', size, undefinedFlags: none });
  }
  return out;
}

function multiplyDivide(): IntForm[] {
  const out: IntForm[] = [];
  const mulUndef = () => SF | ZF | AF | PF;
  for (const size of [8, 16, 32]) {
    const b = REG_NAMES[size][1];
    out.push({ name: `mul ${b}`, asm: `mul ${b}`, kind: 'mul', size, undefinedFlags: mulUndef });
    out.push({ name: `imul ${b}`, asm: `imul ${b}`, kind: 'mul', size, undefinedFlags: mulUndef });
    out.push({ name: `div ${b}`, asm: `div ${b}`, kind: 'div', size, undefinedFlags: () => ARITH_FLAGS });
    out.push({ name: `idiv ${b}`, asm: `idiv ${b}`, kind: 'idiv', size, undefinedFlags: () => ARITH_FLAGS });
  }
  for (const size of [16, 32]) {
    const [a, b] = REG_NAMES[size];
    out.push({ name: `imul ${a}, ${b}`, asm: `imul ${a}, ${b}`, kind: 'mul', size, undefinedFlags: mulUndef });
    out.push({ name: `imul ${a}, ${b}, imm`, asm: `imul ${a}, ${b}, ${size === 16 ? 1234 : -123456}`, kind: 'mul', size, undefinedFlags: mulUndef });
  }
  return out;
}

/** The count a shift or rotate uses: CL or its immediate, masked to 5 bits (SDM vol.2 SAL/SAR/SHL/SHR). */
function shiftCount(v: IntInputs, imm: number | null): number {
  return (imm ?? reg(v, 'ecx')) & 0x1f;
}

function shifts(): IntForm[] {
  const out: IntForm[] = [];
  for (const op of ['shl', 'shr', 'sar', 'rol', 'ror', 'rcl', 'rcr']) {
    const rotate = op.startsWith('r');
    for (const size of [8, 16, 32]) {
      const a = REG_NAMES[size][0];
      for (const imm of [null, 1, 7]) {
        const undefinedFlags = (v: IntInputs) => {
          const c = shiftCount(v, imm);
          if (c === 0) return 0;
          // OF is defined for 1-bit shifts and rotates only; AF never for shifts; CF of a
          // shift by the operand's size or more is undefined.
          let u = c === 1 ? 0 : OF;
          if (!rotate) u |= AF | (c >= size ? CF : 0);
          return u;
        };
        const count = imm === null ? 'cl' : String(imm);
        out.push({ name: `${op} ${a}, ${count}`, asm: `${op} ${a}, ${count}`, kind: 'shift', size, undefinedFlags });
      }
    }
  }
  for (const op of ['shld', 'shrd']) {
    for (const size of [16, 32]) {
      const [a, b] = REG_NAMES[size];
      for (const imm of [null, 5]) {
        const beyond = (v: IntInputs) => shiftCount(v, imm) > size;
        const count = imm === null ? 'cl' : String(imm);
        out.push({
          name: `${op} ${a}, ${b}, ${count}`, asm: `${op} ${a}, ${b}, ${count}`, kind: 'double-shift', size,
          undefinedFlags: (v) => {
            const c = shiftCount(v, imm);
            if (c === 0) return 0;
            if (beyond(v)) return ARITH_FLAGS;
            return AF | (c === 1 ? 0 : OF);
          },
          undefinedRegs: (v) => (beyond(v) ? [0] : []),
        });
      }
    }
  }
  return out;
}

function bits(): IntForm[] {
  const out: IntForm[] = [];
  const btUndef = () => OF | SF | AF | PF;
  for (const op of ['bt', 'bts', 'btr', 'btc']) {
    for (const size of [16, 32]) {
      const [a, b] = REG_NAMES[size];
      out.push({ name: `${op} ${a}, ${b}`, asm: `${op} ${a}, ${b}`, kind: 'bit', size, undefinedFlags: btUndef });
      out.push({ name: `${op} ${a}, imm`, asm: `${op} ${a}, ${size === 16 ? 13 : 29}`, kind: 'bit', size, undefinedFlags: btUndef });
    }
    // A register bit offset reaches beyond the addressed dword (SDM vol.2 BT: bit string).
    out.push({ name: `${op} m32, ebx`, asm: `${op} dword [esp], ebx`, kind: 'bit-mem', size: 32, undefinedFlags: btUndef });
  }
  for (const op of ['bsf', 'bsr']) {
    for (const size of [16, 32]) {
      const [a, b] = REG_NAMES[size];
      out.push({
        name: `${op} ${a}, ${b}`, asm: `${op} ${a}, ${b}`, kind: 'scan', size,
        undefinedFlags: () => CF | OF | SF | AF | PF,
        undefinedRegs: (v) => ((reg(v, 'ebx') & (size === 16 ? 0xffff : 0xffffffff)) === 0 ? [0] : []),
      });
    }
  }
  return out;
}

function others(): IntForm[] {
  const f = (name: string, kind: IntKind, undefinedFlags: (v: IntInputs) => number = none, asm = name): IntForm => ({ name, asm, kind, size: 32, undefinedFlags });
  const out: IntForm[] = [
    f('daa', 'bcd', () => OF), f('das', 'bcd', () => OF), f('aaa', 'bcd', () => OF | SF | ZF | PF), f('aas', 'bcd', () => OF | SF | ZF | PF),
    f('aam', 'bcd', () => OF | AF | CF), f('aam 7', 'bcd', () => OF | AF | CF), f('aad', 'bcd', () => OF | AF | CF), f('aad 7', 'bcd', () => OF | AF | CF),
    f('cbw', 'any'), f('cwde', 'any'), f('cwd', 'any'), f('cdq', 'any'),
    f('bswap eax', 'any'), f('lahf', 'any'), f('sahf', 'any'), f('cmc', 'any'), f('clc', 'any'), f('stc', 'any'),
    f('movsx eax, bl', 'any'), f('movsx eax, bx', 'any'), f('movzx eax, bh', 'any'), f('movzx eax, bx', 'any'),
    f('xchg eax, ebx', 'any'), f('xchg al, bh', 'any'),
    f('xadd al, bl', 'alu'), f('xadd ax, bx', 'alu'), f('xadd eax, ebx', 'alu'), f('xadd m32, ebx', 'alu', none, 'xadd dword [esp], ebx'),
    f('cmpxchg bl, cl', 'alu'), f('cmpxchg bx, cx', 'alu'), f('cmpxchg ebx, ecx', 'alu'), f('cmpxchg m32, ecx', 'alu', none, 'cmpxchg dword [esp], ecx'),
    f('cmpxchg8b m64', 'alu', none, 'cmpxchg8b [esp]'),
    f('lea eax, [ebx + esi * 4 - 8]', 'any'), f('lea ax, [ebx + esi + 7]', 'any'),
  ];
  for (const cc of ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g']) {
    out.push(f(`set${cc} al`, 'any'));
    out.push(f(`cmov${cc} eax, ebx`, 'any'));
  }
  return out;
}

/** One register as both operands, where the order of the writes shows; and the hint NOPs. */
function sameRegister(): IntForm[] {
  const f = (name: string, asm = name): IntForm => ({ name, asm, kind: 'alu', size: 32, undefinedFlags: none });
  return [
    f('xadd eax, eax'), f('xadd ax, ax'), f('xadd al, al'), f('cmpxchg eax, eax'), f('cmpxchg bl, bl'),
    f('xchg ah, ah'), f('bswap ebx'),
    f('endbr32', 'db 0xf3, 0x0f, 0x1e, 0xfb'), f('nop dword [esp]'), f('hint nop 0f 19', 'db 0x0f, 0x19, 0xc0'),
  ];
}

export const INT_FORMS: readonly IntForm[] = [...alu(), ...multiplyDivide(), ...shifts(), ...bits(), ...others(), ...sameRegister()];

/** The routine for one form: set up from the record at EBX, execute, store the results, RET (EBX kept). */
export function intRoutine(f: IntForm, label: string): string {
  const R = INT_RECORD;
  const at = (base: number, name: (typeof INT_REGS)[number]) => base + 4 * INT_REGS.indexOf(name);
  const copy = (from: string, fromOff: number, to: string, toOff: number) =>
    [0, 4, 8, 12].map((k) => `    mov eax, [${from} + ${fromOff + k}]\n    mov [${to} + ${toOff + k}], eax`).join('\n');
  return `
${label}:
    push ebx
    sub esp, 16                 ; scratch memory at [esp], the record pointer above it
${copy('ebx', R.mem, 'esp', 0)}
    push dword [ebx + ${R.eflags}]
    popfd
${INT_REGS.filter((r) => r !== 'ebx').map((r) => `    mov ${r}, [ebx + ${at(R.regs, r)}]`).join('\n')}
    mov ebx, [ebx + ${at(R.regs, 'ebx')}]
    ${f.asm}
    pushfd
    push ebx
    mov ebx, [esp + 24]
${INT_REGS.filter((r) => r !== 'ebx').map((r) => `    mov [ebx + ${at(R.regsOut, r)}], ${r}`).join('\n')}
    pop dword [ebx + ${at(R.regsOut, 'ebx')}]
    pop dword [ebx + ${R.eflagsOut}]
${copy('esp', 0, 'ebx', R.memOut)}
    add esp, 16
    pop ebx
    ret
`;
}

/** The loop both sides run over the records: `int_records`. */
export function intRecordLoop(forms: readonly IntForm[]): string {
  const routines = forms.map((f, i) => ({ label: `int_form_${i}`, source: intRoutine(f, `int_form_${i}`) }));
  return dispatchLoop('int_records', routines, INT_RECORD.size);
}

/** One vector of testdata/int-vectors.json (hex strings), as the generator writes it and the test reads it. */
export interface IntVector {
  eflags: string;
  regs: string[];
  /** Only for a form with a memory operand. */
  mem?: string;
  expect: { eflags: string; regs: string[]; mem?: string };
}

/** Does the form have a memory operand (the scratch memory at [esp])? */
export const usesMemory = (f: IntForm): boolean => f.asm.includes('[esp]');
