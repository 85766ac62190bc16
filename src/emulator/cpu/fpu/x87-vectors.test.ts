/**
 * Trapdoor's x87 against a real one, bit for bit: testdata/x87-vectors.json holds what a
 * host CPU's FPU computed for ~1500 operand sets (scripts/x87-vectors/generate.ts, run by
 * hand with `npm run x87-vectors`), and each is replayed here through the emulated CPU with
 * the very same routine (testing/x87-forms.ts): FNINIT, FLDCW, the operands pushed from
 * memory, EFLAGS loaded, the instruction, then FNSTSW, PUSHFD and FNSAVE. Compared: the
 * status word (TOP, condition codes, exception flags, ES/B), the tag word, every register
 * left on the stack, OF/SF/ZF/AF/PF/CF, and the bytes a store wrote. The transcendental
 * instructions are held to one unit in the last place and C1 (their hardware results are
 * not correctly rounded either, and differ in the last bit now and then), and most of
 * their vectors must still match bit for bit.
 *
 * Each form runs as one program over all its vectors; if the machine shuts down (a fault
 * with no IDT), its vectors are rerun one by one to name the one that faults.
 */
import * as fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { runGuestRecords } from '../testing/guest-records.ts';
import { nasmAvailable } from '../testing/nasm.ts';
import { EFLAGS_MASK, MEM_SIZE, RECORD, recordLoop, SAVE, TRANSCENDENTAL_FORMS, X87_FORMS, type X87Form, type X87Vector } from '../testing/x87-forms.ts';


interface VectorFile {
  cpu: string;
  forms: Record<string, X87Vector[]>;
}

const file = JSON.parse(fs.readFileSync(new URL('./testdata/x87-vectors.json', import.meta.url), 'utf8')) as VectorFile;

const hex = (v: number | bigint, digits: number) => v.toString(16).padStart(digits, '0');

function parse80(s: string): Uint8Array {
  const [se, m] = s.split(':');
  const b = new Uint8Array(10);
  let mant = BigInt(`0x${m}`);
  for (let i = 0; i < 8; i++, mant >>= 8n) b[i] = Number(mant & 0xffn);
  b[8] = parseInt(se, 16) & 0xff;
  b[9] = parseInt(se, 16) >> 8;
  return b;
}

const parseBytes = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (x) => parseInt(x, 16));
const bytesHex = (b: Uint8Array) => Array.from(b, (x) => hex(x, 2)).join('');

function hex80(b: Uint8Array): string {
  let m = 0n;
  for (let i = 7; i >= 0; i--) m = (m << 8n) | BigInt(b[i]);
  return `${hex(b[8] | (b[9] << 8), 4)}:${hex(m, 16)}`;
}

/** The record a vector starts from, as the generator laid it out (the store's slot holds 0xA5s). */
function record(v: X87Vector): Uint8Array {
  const r = new Uint8Array(RECORD.size);
  const dv = new DataView(r.buffer);
  dv.setUint16(RECORD.cw, parseInt(v.cw, 16), true);
  dv.setUint32(RECORD.eflags, parseInt(v.eflags, 16), true);
  if (v.a) r.set(parse80(v.a), RECORD.a);
  if (v.b) r.set(parse80(v.b), RECORD.b);
  r.fill(0xa5, RECORD.mem, RECORD.mem + 16);
  if (v.mem) r.set(parseBytes(v.mem), RECORD.mem);
  return r;
}

/** Run `vectors` of `form` in one program: their result records, or null if the machine shut down. */
function runBatch(form: X87Form, vectors: X87Vector[]): Uint8Array[] | null {
  return runGuestRecords('x87_records', recordLoop([form]), vectors.map(record), RECORD.size, (cpu) => {
    expect(cpu.fpu, 'cpu.fpu is null: the CPU has no x87 installed').not.toBeNull();
  });
}

/** The x87's C1 condition bit in the status word. */
const SW_C1 = 0x200;

/** Are two 80-bit values (as hex80 strings) one unit in the last place apart, same sign? */
function oneUlpApart(a: string, b: string): boolean {
  const ordinal = (s: string) => {
    const [se, m] = s.split(':');
    // Exponent and significand as one integer: neighbours in magnitude differ by one (the
    // integer bit aside, which a normal number always has).
    return { sign: parseInt(se, 16) >> 15, n: (BigInt(parseInt(se, 16) & 0x7fff) << 63n) | (BigInt(`0x${m}`) & ((1n << 63n) - 1n)) };
  };
  const x = ordinal(a);
  const y = ordinal(b);
  return x.sign === y.sign && (x.n - y.n === 1n || y.n - x.n === 1n);
}

/**
 * What differs between a vector's expectation and Trapdoor's record, as `field expected≠got`
 * items; `ulp` collects the differences a transcendental form is allowed (the last place, C1).
 */
function differences(form: X87Form, v: X87Vector, rec: Uint8Array, ulp: string[] = []): string[] {
  const dv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  const out: string[] = [];
  const lenient = TRANSCENDENTAL_FORMS.has(form.name);
  const sw = dv.getUint16(RECORD.sw, true);
  const tw = dv.getUint16(RECORD.save + SAVE.tagWord, true);
  const eflags = dv.getUint32(RECORD.eflagsOut, true) & EFLAGS_MASK;
  if (hex(sw, 4) !== v.expect.sw) {
    const onlyC1 = ((sw ^ parseInt(v.expect.sw, 16)) & ~SW_C1) === 0;
    (lenient && onlyC1 ? ulp : out).push(`sw ${v.expect.sw}≠${hex(sw, 4)}`);
  }
  if (hex(tw, 4) !== v.expect.tw) out.push(`tw ${v.expect.tw}≠${hex(tw, 4)}`);
  v.expect.st.forEach((want, i) => {
    const got = hex80(rec.subarray(RECORD.save + SAVE.st0 + 10 * i, RECORD.save + SAVE.st0 + 10 * i + 10));
    if (got !== want) (lenient && oneUlpApart(got, want) ? ulp : out).push(`st${i} ${want}≠${got}`);
  });
  if (hex(eflags, 4) !== v.expect.eflags) out.push(`eflags ${v.expect.eflags}≠${hex(eflags, 4)}`);
  if (form.memOut && v.expect.mem !== undefined) {
    const got = bytesHex(rec.subarray(RECORD.mem, RECORD.mem + MEM_SIZE[form.memOut]));
    if (got !== v.expect.mem) out.push(`mem ${v.expect.mem}≠${got}`);
  }
  return out;
}

function describeVector(form: X87Form, v: X87Vector): string {
  const ops = [v.a && `a=${v.a}`, v.b && `b=${v.b}`, v.mem && form.memIn && `m=${v.mem}`].filter(Boolean).join(' ');
  return `${form.name} cw=${v.cw} ${ops}`;
}

let total = 0;
let passed = 0;
const transcendental = { total: 0, exact: 0 };

describe.skipIf(!nasmAvailable())(`x87 against a real x87 (${file.cpu})`, () => {
  afterAll(() => {
    if (passed < total) console.info(`x87 vectors: ${passed}/${total} pass`);
  });

  it('has vectors for every form, and no vectors for forms that are gone', () => {
    expect(Object.keys(file.forms).sort()).toEqual(X87_FORMS.map((f) => f.name).sort());
  });

  for (const form of X87_FORMS) {
    it(form.name, () => {
      const vectors = file.forms[form.name] ?? [];
      expect(vectors.length).toBeGreaterThan(0);
      let records = runBatch(form, vectors);
      const failures: string[] = [];
      if (!records) {
        records = vectors.map((v) => runBatch(form, [v])?.[0] ?? new Uint8Array(0));
      }
      vectors.forEach((v, i) => {
        total++;
        const rec = records[i];
        const ulp: string[] = [];
        const diffs = rec.length === 0 ? ['machine shut down (a fault)'] : differences(form, v, rec, ulp);
        if (diffs.length === 0) passed++;
        else failures.push(`${describeVector(form, v)}: ${diffs.join(', ')}`);
        if (TRANSCENDENTAL_FORMS.has(form.name)) {
          transcendental.total++;
          if (diffs.length === 0 && ulp.length === 0) transcendental.exact++;
        }
      });
      if (failures.length) expect.fail(`${failures.length}/${vectors.length} vectors differ (expected≠got):\n${failures.join('\n')}`);
    });
  }

  // Runs after the forms (vitest keeps the order within a file): one ulp is the hardware's
  // own accuracy, but a model that is right should mostly agree to the bit.
  it('transcendental results are bit for bit those of the hardware in more than nine vectors out of ten', () => {
    expect(transcendental.total).toBeGreaterThan(0);
    console.info(`x87 transcendental vectors: ${transcendental.exact}/${transcendental.total} bit for bit`);
    expect(transcendental.exact / transcendental.total).toBeGreaterThan(0.9);
  });
});
