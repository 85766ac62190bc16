/**
 * `npm run int-vectors`: run integer instruction vectors on this machine's own CPU and write
 * what it computed to src/emulator/cpu/testdata/int-vectors.json, the reference the
 * differential test (src/emulator/cpu/int-vectors.test.ts) holds Trapdoor's CPU to.
 *
 * The forms and the record layout are shared with the test (src/emulator/cpu/testing/
 * int-forms.ts); the records run natively through scripts/native-records.ts (an x86 Linux
 * host that runs 32-bit programs, nasm and ld). The operands come from a seeded generator,
 * so a rerun on the same kind of CPU writes the same file. Not run by CI; rerun it when the
 * forms change, and say in the commit which CPU produced the file (it is recorded in it).
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ARITH_FLAGS, INT_FORMS, INT_RECORD, INT_REGS, intRecordLoop, usesMemory, type IntForm, type IntVector } from '../../src/emulator/cpu/testing/int-forms.ts';
import { cpuName, runNativeRecords, seededRandom, writeVectorFile } from '../native-records.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OUT_FILE = path.join(ROOT, 'src/emulator/cpu/testdata/int-vectors.json');

const { rand, int, pick } = seededRandom(0x386);
const u32 = () => Math.floor(rand() * 4294967296) >>> 0;

/** A 32-bit value, often one of the edges where flags change. */
function value(): number {
  switch (int(0, 9)) {
    case 0: return pick([0, 1, 0xffffffff, 0x7fffffff, 0x80000000, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff]);
    case 1: return int(0, 20);
    case 2: return (u32() & 0xffffff00) | pick([0x7f, 0x80, 0xff, 0x00, 0x09, 0x99, 0x9a, 0x0f]);
    case 3: return (u32() & 0xffff0000) | pick([0x7fff, 0x8000, 0xffff, 0, 1]);
    default: return u32();
  }
}

/** The low `bits` bits of v, as an unsigned number. */
const low = (v: number, bits: number) => (bits === 32 ? v >>> 0 : v & ((1 << bits) - 1));

/** Register values for a form, by its operand kind. */
function registers(f: IntForm): number[] {
  const r = INT_REGS.map(() => value());
  const set = (name: (typeof INT_REGS)[number], v: number) => { r[INT_REGS.indexOf(name)] = v >>> 0; };
  const n = f.size;
  // The double-width dividend of DIV/IDIV: AX, DX:AX or EDX:EAX.
  const setDividend = (dividend: bigint) => {
    if (n === 8) set('eax', (r[0] & ~0xffff) | Number(dividend));
    else if (n === 16) {
      set('eax', (r[0] & ~0xffff) | Number(dividend & 0xffffn));
      set('edx', (r[2] & ~0xffff) | Number(dividend >> 16n));
    } else {
      set('eax', Number(dividend & 0xffffffffn));
      set('edx', Number(dividend >> 32n));
    }
  };
  switch (f.kind) {
    case 'shift':
    case 'double-shift':
      set('ecx', (u32() & ~0xff) | pick([0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, int(0, 255)]));
      break;
    case 'bit-mem':
      set('ebx', int(0, 127)); // inside the 16 bytes of scratch memory
      break;
    case 'scan':
      if (rand() < 0.2) set('ebx', n === 32 ? 0 : u32() & ~0xffff); // a zero source
      break;
    case 'div': {
      // dividend = q * d + r with r < d: the quotient fits, no #DE.
      const d = BigInt(Math.max(1, low(u32(), n) >>> pick([0, 0, 4, n - 4])));
      const q = BigInt(low(u32(), n));
      const dividend = q * d + BigInt(Math.floor(rand() * Number(d)));
      setDividend(dividend);
      set('ebx', n === 32 ? Number(d) : (r[3] & ~low(-1, n)) | Number(d));
      break;
    }
    case 'idiv': {
      const half = 2 ** (n - 1);
      let d = int(-half, half - 1) >> pick([0, 0, 4, n - 4]);
      if (d === 0) d = pick([1, -1, 3]);
      const q = BigInt(int(-half + 1, half - 1));
      const prod = q * BigInt(d);
      const rem = BigInt(int(0, Math.abs(d) - 1)) * (prod < 0n ? -1n : 1n);
      const dividend = BigInt.asUintN(2 * n, prod + rem);
      setDividend(dividend);
      set('ebx', n === 32 ? d : (r[3] & ~low(-1, n)) | low(d, n));
      break;
    }
    default:
      break;
  }
  return r;
}

function vectorCount(f: IntForm): number {
  if (f.kind === 'shift' || f.kind === 'double-shift' || f.kind === 'bcd' || f.kind === 'div' || f.kind === 'idiv') return 16;
  if (/^(set|cmov)/.test(f.name)) return 6;
  return 10;
}

const hex = (v: number, digits = 8) => (v >>> 0).toString(16).padStart(digits, '0');
const bytesHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

interface Vector { form: IntForm; formIndex: number; eflags: number; regs: number[]; mem: Uint8Array }

function buildVectors(): Vector[] {
  const out: Vector[] = [];
  INT_FORMS.forEach((form, formIndex) => {
    for (let i = 0; i < vectorCount(form); i++) {
      const mem = Uint8Array.from({ length: 16 }, () => int(0, 255));
      out.push({ form, formIndex, eflags: 0x2 | (u32() & ARITH_FLAGS), regs: registers(form), mem });
    }
  });
  return out;
}

function main(): void {
  const vectors = buildVectors();
  const R = INT_RECORD;
  const records = new Uint8Array(vectors.length * R.size);
  const dv = new DataView(records.buffer);
  vectors.forEach((v, i) => {
    const at = i * R.size;
    dv.setUint32(at + R.form, v.formIndex, true);
    dv.setUint32(at + R.eflags, v.eflags, true);
    v.regs.forEach((x, k) => dv.setUint32(at + R.regs + 4 * k, x, true));
    records.set(v.mem, at + R.mem);
  });
  const out = runNativeRecords('int_records', intRecordLoop(INT_FORMS), records, R.size);
  const odv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const byForm = new Map<string, IntVector[]>();
  vectors.forEach((v, i) => {
    const at = i * R.size;
    const mem = usesMemory(v.form);
    const j: IntVector = {
      eflags: hex(v.eflags, 3),
      regs: v.regs.map((x) => hex(x)),
      expect: {
        eflags: hex(odv.getUint32(at + R.eflagsOut, true) & ARITH_FLAGS, 3),
        regs: INT_REGS.map((_, k) => hex(odv.getUint32(at + R.regsOut + 4 * k, true))),
      },
    };
    if (mem) {
      j.mem = bytesHex(v.mem);
      j.expect.mem = bytesHex(out.subarray(at + R.memOut, at + R.memOut + 16));
    }
    const list = byForm.get(v.form.name) ?? [];
    list.push(j);
    byForm.set(v.form.name, list);
  });
  const size = writeVectorFile(OUT_FILE, 'scripts/int-vectors/generate.ts', byForm);
  console.log(`int-vectors: ${vectors.length} vectors in ${byForm.size} forms on ${cpuName()}; ${path.relative(ROOT, OUT_FILE)} ${(size / 1024).toFixed(0)} KiB`);
}

main();
