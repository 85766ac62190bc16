/**
 * Intel-syntax disassembler for error messages, traces and the debugger. It reads the
 * opcode map as data (OPCODE_MAP below, SDM vol.2 appendix A): a mnemonic and operand
 * forms per opcode, with group tables keyed by the ModRM reg field.
 *
 * Operand forms use the SDM's abbreviations: E (ModRM r/m), G (ModRM reg), I (immediate),
 * J (relative), M (memory only), O (moffs), S (Sreg), C/D (control/debug register), A
 * (far pointer); sizes b (byte), w (word), v (word or dword by operand size), z (word or
 * dword immediate), p (far pointer). Fixed registers are written as themselves.
 */

const REG8 = ['al', 'cl', 'dl', 'bl', 'ah', 'ch', 'dh', 'bh'];
const REG16 = ['ax', 'cx', 'dx', 'bx', 'sp', 'bp', 'si', 'di'];
const REG32 = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'];
const SREG = ['es', 'cs', 'ss', 'ds', 'fs', 'gs', '?', '?'];
const MEM16 = ['bx+si', 'bx+di', 'bp+si', 'bp+di', 'si', 'di', 'bp', 'bx'];
const ALU = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];
const SHIFTS = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', 'sal', 'sar'];
const CC = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'];

/** One entry: mnemonic (or a group's eight) and operand forms. */
type Entry = [mnemonic: string | readonly string[], ...operands: string[]];

export const OPCODE_MAP: Record<number, Entry> = {};
const set = (op: number, ...e: Entry) => { OPCODE_MAP[op] = e; };

for (let i = 0; i < 8; i++) {
  set(i * 8, ALU[i], 'Eb', 'Gb');
  set(i * 8 + 1, ALU[i], 'Ev', 'Gv');
  set(i * 8 + 2, ALU[i], 'Gb', 'Eb');
  set(i * 8 + 3, ALU[i], 'Gv', 'Ev');
  set(i * 8 + 4, ALU[i], 'al', 'Ib');
  set(i * 8 + 5, ALU[i], 'eAX', 'Iz');
  set(0x40 + i, 'inc', `r${i}`);
  set(0x48 + i, 'dec', `r${i}`);
  set(0x50 + i, 'push', `r${i}`);
  set(0x58 + i, 'pop', `r${i}`);
  set(0x90 + i, i === 0 ? 'nop' : 'xchg', ...(i === 0 ? [] : ['eAX', `r${i}`]));
  set(0xb0 + i, 'mov', REG8[i], 'Ib');
  set(0xb8 + i, 'mov', `r${i}`, 'Iv');
  set(0x1c8 + i, 'bswap', `d${i}`);
}
for (let i = 0; i < 16; i++) {
  set(0x70 + i, `j${CC[i]}`, 'Jb');
  set(0x180 + i, `j${CC[i]}`, 'Jz');
  set(0x190 + i, `set${CC[i]}`, 'Eb');
  set(0x140 + i, `cmov${CC[i]}`, 'Gv', 'Ev');
}
Object.assign(OPCODE_MAP, {
  0x06: ['push', 'es'], 0x07: ['pop', 'es'], 0x0e: ['push', 'cs'], 0x16: ['push', 'ss'], 0x17: ['pop', 'ss'],
  0x1e: ['push', 'ds'], 0x1f: ['pop', 'ds'], 0x27: ['daa'], 0x2f: ['das'], 0x37: ['aaa'], 0x3f: ['aas'],
  0x60: ['pusha'], 0x61: ['popa'], 0x62: ['bound', 'Gv', 'Ma'], 0x63: ['arpl', 'Ew', 'Gw'],
  0x68: ['push', 'Iz'], 0x69: ['imul', 'Gv', 'Ev', 'Iz'], 0x6a: ['push', 'Ibs'], 0x6b: ['imul', 'Gv', 'Ev', 'Ibs'],
  0x6c: ['insb'], 0x6d: ['insV'], 0x6e: ['outsb'], 0x6f: ['outsV'],
  0x80: [ALU, 'Eb', 'Ib'], 0x81: [ALU, 'Ev', 'Iz'], 0x82: [ALU, 'Eb', 'Ib'], 0x83: [ALU, 'Ev', 'Ibs'],
  0x84: ['test', 'Eb', 'Gb'], 0x85: ['test', 'Ev', 'Gv'], 0x86: ['xchg', 'Eb', 'Gb'], 0x87: ['xchg', 'Ev', 'Gv'],
  0x88: ['mov', 'Eb', 'Gb'], 0x89: ['mov', 'Ev', 'Gv'], 0x8a: ['mov', 'Gb', 'Eb'], 0x8b: ['mov', 'Gv', 'Ev'],
  0x8c: ['mov', 'Ew', 'Sw'], 0x8d: ['lea', 'Gv', 'M'], 0x8e: ['mov', 'Sw', 'Ew'], 0x8f: [['pop'], 'Ev'],
  0x98: ['cbwV'], 0x99: ['cwdV'], 0x9a: ['call', 'Ap'], 0x9b: ['wait'], 0x9c: ['pushfV'], 0x9d: ['popfV'],
  0x9e: ['sahf'], 0x9f: ['lahf'], 0xa0: ['mov', 'al', 'Ob'], 0xa1: ['mov', 'eAX', 'Ov'], 0xa2: ['mov', 'Ob', 'al'],
  0xa3: ['mov', 'Ov', 'eAX'], 0xa4: ['movsb'], 0xa5: ['movsV'], 0xa6: ['cmpsb'], 0xa7: ['cmpsV'],
  0xa8: ['test', 'al', 'Ib'], 0xa9: ['test', 'eAX', 'Iz'], 0xaa: ['stosb'], 0xab: ['stosV'], 0xac: ['lodsb'],
  0xad: ['lodsV'], 0xae: ['scasb'], 0xaf: ['scasV'],
  0xc0: [SHIFTS, 'Eb', 'Ib'], 0xc1: [SHIFTS, 'Ev', 'Ib'], 0xc2: ['ret', 'Iw'], 0xc3: ['ret'],
  0xc4: ['les', 'Gv', 'Mp'], 0xc5: ['lds', 'Gv', 'Mp'], 0xc6: [['mov'], 'Eb', 'Ib'], 0xc7: [['mov'], 'Ev', 'Iz'],
  0xc8: ['enter', 'Iw', 'Ib'], 0xc9: ['leave'], 0xca: ['retf', 'Iw'], 0xcb: ['retf'], 0xcc: ['int3'],
  0xcd: ['int', 'Ib'], 0xce: ['into'], 0xcf: ['iretV'],
  0xd0: [SHIFTS, 'Eb', '1'], 0xd1: [SHIFTS, 'Ev', '1'], 0xd2: [SHIFTS, 'Eb', 'cl'], 0xd3: [SHIFTS, 'Ev', 'cl'],
  0xd4: ['aam', 'Ib'], 0xd5: ['aad', 'Ib'], 0xd6: ['salc'], 0xd7: ['xlatb'],
  0xe0: ['loopne', 'Jb'], 0xe1: ['loope', 'Jb'], 0xe2: ['loop', 'Jb'], 0xe3: ['jcxz', 'Jb'],
  0xe4: ['in', 'al', 'Ib'], 0xe5: ['in', 'eAX', 'Ib'], 0xe6: ['out', 'Ib', 'al'], 0xe7: ['out', 'Ib', 'eAX'],
  0xe8: ['call', 'Jz'], 0xe9: ['jmp', 'Jz'], 0xea: ['jmp', 'Ap'], 0xeb: ['jmp', 'Jb'],
  0xec: ['in', 'al', 'dx'], 0xed: ['in', 'eAX', 'dx'], 0xee: ['out', 'dx', 'al'], 0xef: ['out', 'dx', 'eAX'],
  0xf4: ['hlt'], 0xf5: ['cmc'],
  0xf6: [['test', 'test', 'not', 'neg', 'mul', 'imul', 'div', 'idiv'], 'Eb', 'IbT'],
  0xf7: [['test', 'test', 'not', 'neg', 'mul', 'imul', 'div', 'idiv'], 'Ev', 'IzT'],
  0xf8: ['clc'], 0xf9: ['stc'], 0xfa: ['cli'], 0xfb: ['sti'], 0xfc: ['cld'], 0xfd: ['std'],
  0xfe: [['inc', 'dec'], 'Eb'], 0xff: [['inc', 'dec', 'call', 'call far', 'jmp', 'jmp far', 'push'], 'Ev'],
  0x100: [['sldt', 'str', 'lldt', 'ltr', 'verr', 'verw'], 'Ew'],
  0x101: [['sgdt', 'sidt', 'lgdt', 'lidt', 'smsw', '', 'lmsw', 'invlpg'], 'M'],
  0x102: ['lar', 'Gv', 'Ew'], 0x103: ['lsl', 'Gv', 'Ew'], 0x106: ['clts'], 0x108: ['invd'], 0x109: ['wbinvd'],
  0x10b: ['ud2'], 0x118: [['prefetchnta', 'prefetcht0', 'prefetcht1', 'prefetcht2'], 'M'], 0x119: ['nop', 'Ev'], 0x11a: ['nop', 'Ev'], 0x11b: ['nop', 'Ev'], 0x11c: ['nop', 'Ev'], 0x11d: ['nop', 'Ev'], 0x11e: ['nop', 'Ev'], 0x11f: ['nop', 'Ev'],
  0x120: ['mov', 'Rd', 'Cd'], 0x121: ['mov', 'Rd', 'Dd'], 0x122: ['mov', 'Cd', 'Rd'], 0x123: ['mov', 'Dd', 'Rd'],
  0x130: ['wrmsr'], 0x131: ['rdtsc'], 0x132: ['rdmsr'], 0x134: ['sysenter'], 0x135: ['sysexit'],
  0x1a0: ['push', 'fs'], 0x1a1: ['pop', 'fs'], 0x1a2: ['cpuid'], 0x1a3: ['bt', 'Ev', 'Gv'],
  0x1a4: ['shld', 'Ev', 'Gv', 'Ib'], 0x1a5: ['shld', 'Ev', 'Gv', 'cl'], 0x1a8: ['push', 'gs'], 0x1a9: ['pop', 'gs'],
  0x1ab: ['bts', 'Ev', 'Gv'], 0x1ac: ['shrd', 'Ev', 'Gv', 'Ib'], 0x1ad: ['shrd', 'Ev', 'Gv', 'cl'], 0x1af: ['imul', 'Gv', 'Ev'],
  0x1b0: ['cmpxchg', 'Eb', 'Gb'], 0x1b1: ['cmpxchg', 'Ev', 'Gv'], 0x1b2: ['lss', 'Gv', 'Mp'], 0x1b3: ['btr', 'Ev', 'Gv'],
  0x1b4: ['lfs', 'Gv', 'Mp'], 0x1b5: ['lgs', 'Gv', 'Mp'], 0x1b6: ['movzx', 'Gv', 'Eb'], 0x1b7: ['movzx', 'Gv', 'Ew'],
  0x1ba: [['', '', '', '', 'bt', 'bts', 'btr', 'btc'], 'Ev', 'Ib'], 0x1bb: ['btc', 'Ev', 'Gv'], 0x1bc: ['bsf', 'Gv', 'Ev'],
  0x1bd: ['bsr', 'Gv', 'Ev'], 0x1be: ['movsx', 'Gv', 'Eb'], 0x1bf: ['movsx', 'Gv', 'Ew'],
  0x1c0: ['xadd', 'Eb', 'Gb'], 0x1c1: ['xadd', 'Ev', 'Gv'], 0x1c7: [['', 'cmpxchg8b'], 'Mq'],
} satisfies Record<number, Entry>);
for (let op = 0xd8; op <= 0xdf; op++) set(op, 'fpu', 'X');

const PREFIX_SEG: Record<number, string> = { 0x26: 'es', 0x2e: 'cs', 0x36: 'ss', 0x3e: 'ds', 0x64: 'fs', 0x65: 'gs' };

function hex(v: number, digits = 0): string {
  return (v >>> 0).toString(16).padStart(digits, '0') + 'h';
}

/** Decode one instruction at `offset` of `bytes`; `is32` is the code segment's default size. */
export function disassemble(bytes: Uint8Array, offset: number, is32: boolean, ip = 0): { text: string; length: number } {
  let p = offset;
  const next = (): number => {
    if (p >= bytes.length) throw new RangeError('truncated instruction');
    return bytes[p++];
  };
  let o32 = is32;
  let a32 = is32;
  let seg = '';
  const prefixes: string[] = [];
  try {
    let op = next();
    for (;;) {
      if (PREFIX_SEG[op]) seg = PREFIX_SEG[op];
      else if (op === 0x66) o32 = !is32;
      else if (op === 0x67) a32 = !is32;
      else if (op === 0xf0) prefixes.push('lock');
      else if (op === 0xf2) prefixes.push('repne');
      else if (op === 0xf3) prefixes.push('rep');
      else break;
      op = next();
    }
    if (op === 0x0f) op = 0x100 | next();
    const entry = OPCODE_MAP[op];
    if (!entry) return { text: `(bad) ${hex(op, 2)}`, length: p - offset };
    const [mn, ...forms] = entry;
    const needsModrm = forms.some((f) => /^[EGMSCDRX]/.test(f)) || Array.isArray(mn);
    let modrm = 0;
    let memText = '';
    if (needsModrm) {
      modrm = next();
      if (modrm < 0xc0) memText = decodeMem(modrm);
    }
    const reg = (modrm >> 3) & 7;
    let mnemonic = Array.isArray(mn) ? mn[reg] ?? '(bad)' : (mn as string);
    if (mnemonic === '') mnemonic = '(bad)';
    mnemonic = mnemonic.replace(/V$/, o32 ? 'd' : 'w').replace(/^cbwd$/, 'cwde').replace(/^cwdd$/, 'cdq').replace(/^cbww$/, 'cbw').replace(/^cwdw$/, 'cwd');
    if (mnemonic === 'fpu') return { text: `${prefixes.join(' ')} esc ${hex(op, 2)},${hex(modrm, 2)}`.trim(), length: p - offset };
    const ops: string[] = [];
    for (const f of forms) {
      if (f === 'IbT' || f === 'IzT') {
        if (reg > 1) continue;
      }
      const t = operand(f.replace(/T$/, ''));
      if (t !== '') ops.push(t);
    }
    const text = [...prefixes, mnemonic].join(' ') + (ops.length ? ' ' + ops.join(',') : '');
    return { text, length: p - offset };

    function operand(f: string): string {
      const size = (c: string) => (c === 'b' ? 'byte' : c === 'w' ? 'word' : c === 'q' ? 'qword' : o32 ? 'dword' : 'word');
      if (/^r[0-7]$/.test(f)) return (o32 ? REG32 : REG16)[+f[1]];
      if (/^d[0-7]$/.test(f)) return REG32[+f[1]];
      if (f === 'eAX') return o32 ? 'eax' : 'ax';
      switch (f[0]) {
        case 'E':
          if (modrm >= 0xc0) return (f[1] === 'b' ? REG8 : f[1] === 'w' ? REG16 : o32 ? REG32 : REG16)[modrm & 7];
          return `${size(f[1])} ptr ${memText}`;
        case 'M': return memText || '(bad)';
        case 'G': return (f[1] === 'b' ? REG8 : f[1] === 'w' ? REG16 : o32 ? REG32 : REG16)[reg];
        case 'S': return SREG[reg];
        case 'C': return `cr${reg}`;
        case 'D': return `dr${reg}`;
        case 'R': return REG32[modrm & 7];
        case 'I': {
          if (f === 'Ib') return hex(next(), 2);
          if (f === 'Ibs') { const v = (next() << 24) >> 24; return v < 0 ? `-${hex(-v)}` : hex(v); }
          if (f === 'Iw') return hex(next() | (next() << 8), 4);
          return o32 || f === 'Iv' && o32 ? hex(read32(), 8) : hex(next() | (next() << 8), 4);
        }
        case 'J': {
          const rel = f === 'Jb' ? (next() << 24) >> 24 : o32 ? read32() | 0 : ((next() | (next() << 8)) << 16) >> 16;
          const target = ip + (p - offset) + rel;
          return hex(o32 ? target >>> 0 : target & 0xffff);
        }
        case 'O': {
          const off = a32 ? read32() : next() | (next() << 8);
          return `${f[1] === 'b' ? 'byte' : o32 ? 'dword' : 'word'} ptr ${seg || 'ds'}:[${hex(off)}]`;
        }
        case 'A': {
          const off = o32 ? read32() : next() | (next() << 8);
          const sel = next() | (next() << 8);
          return `${hex(sel, 4)}:${hex(off)}`;
        }
        default:
          return f;
      }
    }

    function read32(): number {
      return next() | (next() << 8) | (next() << 16) | (next() << 24);
    }

    function decodeMem(m: number): string {
      const mod = m >> 6;
      const rm = m & 7;
      let base: string;
      let disp = 0;
      if (!a32) {
        if (mod === 0 && rm === 6) return `${seg ? seg + ':' : ''}[${hex(next() | (next() << 8))}]`;
        base = MEM16[rm];
        if (mod === 1) disp = (next() << 24) >> 24;
        else if (mod === 2) disp = ((next() | (next() << 8)) << 16) >> 16;
      } else {
        if (rm === 4) {
          const sib = next();
          const b = sib & 7;
          const idx = (sib >> 3) & 7;
          const parts: string[] = [];
          if (b === 5 && mod === 0) disp = read32() | 0;
          else parts.push(REG32[b]);
          if (idx !== 4) parts.push(`${REG32[idx]}${sib >> 6 ? '*' + (1 << (sib >> 6)) : ''}`);
          base = parts.join('+');
        } else if (rm === 5 && mod === 0) {
          return `${seg ? seg + ':' : ''}[${hex(read32())}]`;
        } else base = REG32[rm];
        if (mod === 1) disp = (next() << 24) >> 24;
        else if (mod === 2) disp = read32() | 0;
      }
      const d = disp === 0 ? '' : disp < 0 ? `-${hex(-disp)}` : `+${hex(disp)}`;
      return `${seg ? seg + ':' : ''}[${base}${d}]`;
    }
  } catch (e) {
    if (e instanceof RangeError) return { text: '(truncated)', length: p - offset };
    throw e;
  }
}
