/**
 * Runs records through routines on this machine's own CPU, for the differential vector
 * generators (scripts/x87-vectors, scripts/int-vectors): the routines' loop (testing/
 * record-loop.ts) is assembled into a static 32-bit Linux program that reads the records on
 * stdin, runs the loop over them and writes them back. Needs an x86 Linux host that runs
 * 32-bit programs, nasm and ld (binutils); no C compiler.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The program: read stdin into the buffer, call `loopLabel` (EBX = records, ECX = count), write the buffer out. */
function nativeProgram(loopLabel: string, loopSource: string, bufferBytes: number, recordSize: number): string {
  return `
bits 32
global _start
section .text
_start:
    xor esi, esi                ; read all of stdin into buf
.read:
    mov eax, 3                  ; read(0, buf + esi, size - esi)
    xor ebx, ebx
    lea ecx, [buf + esi]
    mov edx, ${bufferBytes}
    sub edx, esi
    jz .run
    int 0x80
    test eax, eax
    js fail
    jz .run
    add esi, eax
    jmp .read
.run:
    mov [length], esi
    mov eax, esi
    xor edx, edx
    mov ecx, ${recordSize}
    div ecx
    mov ecx, eax
    mov ebx, buf
    call ${loopLabel}
    xor esi, esi
.write:
    mov eax, 4                  ; write(1, buf + esi, length - esi)
    mov ebx, 1
    lea ecx, [buf + esi]
    mov edx, [length]
    sub edx, esi
    jz .exit
    int 0x80
    test eax, eax
    jle fail
    add esi, eax
    jmp .write
.exit:
    mov eax, 1
    xor ebx, ebx
    int 0x80
fail:
    mov eax, 1
    mov ebx, 1
    int 0x80
${loopSource}
section .bss
alignb 16
buf: resb ${bufferBytes}
length: resd 1
`;
}

function run(cmd: string, args: string[], input?: Uint8Array): Buffer {
  const r = spawnSync(cmd, args, { input, maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`${cmd}: ${r.error.message} (needs nasm and binutils)`);
  if (r.status !== 0) throw new Error(`${cmd} failed (${r.status ?? r.signal}):\n${r.stderr.toString()}`);
  return r.stdout;
}

/** The records after the host's CPU ran them through `loopLabel` (defined in `loopSource`). */
export function runNativeRecords(loopLabel: string, loopSource: string, records: Uint8Array, recordSize: number): Uint8Array {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'native-records-'));
  try {
    fs.writeFileSync(path.join(dir, 'run.asm'), nativeProgram(loopLabel, loopSource, records.length, recordSize));
    run('nasm', ['-f', 'elf32', '-o', path.join(dir, 'run.o'), path.join(dir, 'run.asm')]);
    run('ld', ['-m', 'elf_i386', '-o', path.join(dir, 'run'), path.join(dir, 'run.o')]);
    const out = new Uint8Array(run(path.join(dir, 'run'), [], records));
    if (out.length !== records.length) throw new Error(`native run returned ${out.length} bytes, expected ${records.length}`);
    return out;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The host CPU's model name, recorded in the vector files. */
export function cpuName(): string {
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    return m ? m[1].trim() : 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Write a vector file: the CPU that computed it, the generator, and each form's vectors, one
 * vector per line (so the diff of a regenerated file stays readable). Returns its size.
 */
export function writeVectorFile(file: string, generator: string, byForm: ReadonlyMap<string, readonly unknown[]>): number {
  const lines = ['{', `  "cpu": ${JSON.stringify(cpuName())},`, `  "generator": ${JSON.stringify(generator)},`, '  "forms": {'];
  const forms = [...byForm.entries()];
  forms.forEach(([name, list], fi) => {
    lines.push(`    ${JSON.stringify(name)}: [`);
    list.forEach((j, vi) => lines.push(`      ${JSON.stringify(j)}${vi < list.length - 1 ? ',' : ''}`));
    lines.push(`    ]${fi < forms.length - 1 ? ',' : ''}`);
  });
  lines.push('  }', '}', '');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, lines.join('\n'));
  return fs.statSync(file).size;
}

/** A seeded random source (mulberry32), so a generator draws the same operands on every run. */
export function seededRandom(seed: number) {
  let state = seed | 0;
  const rand = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    rand,
    /** An integer in [lo, hi]. */
    int: (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1)),
    pick: <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)],
  };
}
