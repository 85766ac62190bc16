/**
 * Trapdoor's integer instructions against a real CPU's: testdata/int-vectors.json holds what
 * a host CPU computed for ~2700 operand sets over the ALU, multiply/divide, shift/rotate,
 * bit, BCD, exchange, conditional and conversion instructions at 8, 16 and 32 bits
 * (scripts/int-vectors/generate.ts, run by hand with `npm run int-vectors`), and each is
 * replayed here through the emulated CPU with the very same routine (testing/int-forms.ts).
 * Compared: every general register but ESP, the scratch memory a memory form worked on, and
 * the flags the SDM defines for the instruction. The flags (and BSF/BSR's or SHLD's register)
 * it leaves undefined are counted, not compared: the generator's CPU is a modern one, this
 * is a P6, and no manual promises they agree.
 *
 * Each form runs as one program over all its vectors; if the machine shuts down (a fault
 * with no IDT), its vectors are rerun one by one to name the one that faults.
 */
import * as fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { runGuestRecords } from './testing/guest-records.ts';
import { nasmAvailable } from './testing/nasm.ts';
import { ARITH_FLAGS, INT_FORMS, INT_RECORD, INT_REGS, intRecordLoop, type IntForm, type IntInputs, type IntVector } from './testing/int-forms.ts';

interface VectorFile {
  cpu: string;
  forms: Record<string, IntVector[]>;
}

const file = JSON.parse(fs.readFileSync(new URL('./testdata/int-vectors.json', import.meta.url), 'utf8')) as VectorFile;

const hex = (v: number, digits = 8) => (v >>> 0).toString(16).padStart(digits, '0');
const parseBytes = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (x) => parseInt(x, 16));
const bytesHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

function inputs(v: IntVector): IntInputs {
  return { eflags: parseInt(v.eflags, 16), regs: v.regs.map((r) => parseInt(r, 16)) };
}

/** The record a vector starts from (form index 0: each program holds one form). */
function record(v: IntVector): Uint8Array {
  const R = INT_RECORD;
  const r = new Uint8Array(R.size);
  const dv = new DataView(r.buffer);
  const inp = inputs(v);
  dv.setUint32(R.eflags, inp.eflags, true);
  inp.regs.forEach((x, k) => dv.setUint32(R.regs + 4 * k, x >>> 0, true));
  if (v.mem) r.set(parseBytes(v.mem), R.mem);
  return r;
}

/** Run `vectors` of `form` in one program: their result records, or null if the machine shut down. */
function runBatch(form: IntForm, vectors: IntVector[]): Uint8Array[] | null {
  return runGuestRecords('int_records', intRecordLoop([form]), vectors.map(record), INT_RECORD.size);
}

const undefinedSeen = { flags: 0, agreed: 0 };

/** What differs between a vector's expectation and Trapdoor's record, as `field expected≠got` items. */
function differences(form: IntForm, v: IntVector, rec: Uint8Array): string[] {
  const R = INT_RECORD;
  const dv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  const out: string[] = [];
  const inp = inputs(v);
  const undefFlags = form.undefinedFlags(inp);
  const undefRegs = form.undefinedRegs?.(inp) ?? [];
  const want = parseInt(v.expect.eflags, 16);
  const got = dv.getUint32(R.eflagsOut, true) & ARITH_FLAGS;
  if (((want ^ got) & ~undefFlags) !== 0) out.push(`eflags ${hex(want, 3)}≠${hex(got, 3)} (undefined ${hex(undefFlags, 3)})`);
  if (undefFlags) {
    undefinedSeen.flags++;
    if (((want ^ got) & undefFlags) === 0) undefinedSeen.agreed++;
  }
  INT_REGS.forEach((name, k) => {
    const g = hex(dv.getUint32(R.regsOut + 4 * k, true));
    if (g !== v.expect.regs[k] && !undefRegs.includes(k)) out.push(`${name} ${v.expect.regs[k]}≠${g}`);
  });
  if (v.expect.mem !== undefined) {
    const g = bytesHex(rec.subarray(R.memOut, R.memOut + 16));
    if (g !== v.expect.mem) out.push(`mem ${v.expect.mem}≠${g}`);
  }
  return out;
}

describe.skipIf(!nasmAvailable())(`integer instructions against a real CPU (${file.cpu})`, () => {
  afterAll(() => {
    if (undefinedSeen.flags) console.info(`int vectors: undefined flags agree with the host in ${undefinedSeen.agreed}/${undefinedSeen.flags} vectors`);
  });

  it('has vectors for every form, and no vectors for forms that are gone', () => {
    expect(Object.keys(file.forms).sort()).toEqual(INT_FORMS.map((f) => f.name).sort());
  });

  for (const form of INT_FORMS) {
    it(form.name, () => {
      const vectors = file.forms[form.name] ?? [];
      expect(vectors.length).toBeGreaterThan(0);
      const records = runBatch(form, vectors) ?? vectors.map((v) => runBatch(form, [v])?.[0] ?? new Uint8Array(0));
      const failures: string[] = [];
      vectors.forEach((v, i) => {
        const diffs = records[i].length === 0 ? ['machine shut down (a fault)'] : differences(form, v, records[i]);
        if (diffs.length) failures.push(`${form.name} flags=${v.eflags} regs=${v.regs.join(',')}${v.mem ? ` mem=${v.mem}` : ''}: ${diffs.join(', ')}`);
      });
      if (failures.length) expect.fail(`${failures.length}/${vectors.length} vectors differ (expected≠got):\n${failures.join('\n')}`);
    });
  }
});
