/**
 * The x87 through guest programs (nasm): extended-precision results bit for bit, precision
 * and rounding control, stores to every format, integer and BCD conversions with their
 * invalid cases, comparisons into the condition codes and EFLAGS, stack faults, the masked
 * and unmasked exception paths (#MF with CR0.NE = 1, FERR# with NE = 0), FSTENV/FSAVE/
 * FRSTOR and FXSAVE/FXRSTOR images, FPREM's quotient bits, and CPUID's fpu/fxsr bits.
 */
import { describe, expect, it } from 'vitest';
import { boot, IDT_DESC, idtSetup, protectedMode, runToExit } from '../testing/programs.ts';
import { nasmAvailable } from '../testing/nasm.ts';

const OUT = 0x300000;

/** Run `body` (32-bit flat protected mode with paging); results are read from OUT. */
function run(body: string, data = '') {
  const { cpu, machine } = boot(protectedMode(`
    finit
${body}
    mov al, 0x55
    jmp done`, `
align 16
${data}`));
  runToExit(cpu, machine);
  expect(machine.shutdownReason).toBe('');
  const m = machine.ram;
  const hex80 = (at: number) => {
    const se = m[OUT + at + 8] | (m[OUT + at + 9] << 8);
    let mant = 0n;
    for (let i = 7; i >= 0; i--) mant = (mant << 8n) | BigInt(m[OUT + at + i]);
    return `${se.toString(16).padStart(4, '0')}:${mant.toString(16).padStart(16, '0')}`;
  };
  const u16 = (at: number) => m[OUT + at] | (m[OUT + at + 1] << 8);
  const u32 = (at: number) => (u16(at) | (u16(at + 2) << 16)) >>> 0;
  const u64 = (at: number) => (BigInt(u32(at + 4)) << 32n) | BigInt(u32(at));
  return { cpu, machine, hex80, u16, u32, u64 };
}

describe.skipIf(!nasmAvailable())('x87 FPU', () => {
  it('divides in extended precision, and rounds to the precision control', () => {
    const r = run(`
    fld1
    fidiv dword [three]
    fstp tword [${OUT}]
    fnstcw [${OUT} + 32]
    and word [${OUT} + 32], ~0x0300
    or word [${OUT} + 32], 0x0200       ; PC = 53 bits
    fldcw [${OUT} + 32]
    fld1
    fidiv dword [three]
    fst qword [${OUT} + 16]
    fstp tword [${OUT} + 40]`, 'three: dd 3');
    expect(r.hex80(0)).toBe('3ffd:aaaaaaaaaaaaaaab');
    expect(r.hex80(40)).toBe('3ffd:aaaaaaaaaaaaa800');
    expect(r.u64(16)).toBe(0x3fd5555555555555n);
  });

  it('takes sqrt(2), stores it as single and double, and loads pi under each rounding mode', () => {
    const r = run(`
    fild dword [two]
    fsqrt
    fst dword [${OUT} + 20]
    fst qword [${OUT} + 24]
    fstp tword [${OUT}]
    fldpi
    fstp tword [${OUT} + 40]
    fldcw [down]
    fldpi
    fstp tword [${OUT} + 60]
    fldl2e
    fstp tword [${OUT} + 80]`, 'two: dd 2\ndown: dw 0x077f');
    expect(r.hex80(0)).toBe('3fff:b504f333f9de6484');
    expect(r.u32(20)).toBe(0x3fb504f3);
    expect(r.u64(24)).toBe(0x3ff6a09e667f3bcdn);
    expect(r.hex80(40)).toBe('4000:c90fdaa22168c235');
    expect(r.hex80(60)).toBe('4000:c90fdaa22168c234');
    expect(r.hex80(80)).toBe('3fff:b8aa3b295c17f0bb'); // log2(e) rounded down
  });

  it('converts to integers with the rounding mode, and stores the integer indefinite when out of range', () => {
    const r = run(`
    fld dword [two_and_half]
    fistp dword [${OUT}]
    fld dword [three_and_half]
    fistp dword [${OUT} + 4]
    fld dword [big]
    fistp word [${OUT} + 8]
    fnstsw [${OUT} + 12]
    fild qword [i64]
    fistp qword [${OUT} + 16]
    fild dword [bcdval]
    fbstp [${OUT} + 32]
    fbld [${OUT} + 32]
    fistp dword [${OUT} + 48]`, 'two_and_half: dd 2.5\nthree_and_half: dd 3.5\nbig: dd 1.0e6\ni64: dq -1234567890123\nbcdval: dd -1234567');
    expect(r.u32(0)).toBe(2);
    expect(r.u32(4)).toBe(4);
    expect(r.u16(8)).toBe(0x8000);
    expect(r.u16(12) & 0x21).toBe(0x21); // IE and PE... IE at least
    expect(BigInt.asIntN(64, r.u64(16))).toBe(-1234567890123n);
    expect(Array.from(r.machine.ram.subarray(OUT + 32, OUT + 42))).toEqual([0x67, 0x45, 0x23, 0x01, 0, 0, 0, 0, 0, 0x80]);
    expect(r.u32(48) | 0).toBe(-1234567);
  });

  it('compares into C3/C2/C0 and, with FCOMI, into ZF/PF/CF', () => {
    const r = run(`
    fld1
    fild dword [two]
    fcom st1                  ; 2 > 1: C3=C2=C0=0
    fnstsw ax
    mov [${OUT}], ax
    fcomi st0, st1            ; 2 > 1: ZF=PF=CF=0
    pushfd
    pop dword [${OUT} + 4]
    fxch
    fcomi st0, st1            ; 1 < 2: CF
    pushfd
    pop dword [${OUT} + 8]
    fld dword [qnan]
    fucomip st0, st1          ; unordered: ZF PF CF, no IE for a quiet NaN
    pushfd
    pop dword [${OUT} + 12]
    fnstsw [${OUT} + 16]
    ftst                      ; 1 vs 0: greater
    fnstsw [${OUT} + 20]
    fxam                      ; 1.0: normal, positive
    fnstsw [${OUT} + 24]`, 'two: dd 2\nqnan: dd 0x7fc00000');
    expect(r.u16(0) & 0x4500).toBe(0);
    expect(r.u32(4) & 0x45).toBe(0);
    expect(r.u32(8) & 0x45).toBe(0x01);
    expect(r.u32(12) & 0x45).toBe(0x45);
    expect(r.u16(16) & 0x01).toBe(0);
    expect(r.u16(20) & 0x4500).toBe(0);
    expect(r.u16(24) & 0x4700).toBe(0x0400);
  });

  it('answers stack underflow and masked zero-divide with the IEEE defaults', () => {
    const r = run(`
    fadd st0, st1             ; empty stack: IE + SF, ST0 = indefinite... but ST0 is empty too
    fnstsw [${OUT}]
    fnclex
    fld1
    fldz
    fdivp st1, st0            ; 1/0 = +inf, ZE
    fnstsw [${OUT} + 4]
    fstp tword [${OUT} + 16]`);
    expect(r.u16(0) & 0x41).toBe(0x41);
    expect(r.u16(0) & 0x200).toBe(0); // C1 = 0: underflow
    expect(r.u16(4) & 0x04).toBe(0x04);
    expect(r.hex80(16)).toBe('7fff:8000000000000000');
  });

  it('delivers an unmasked exception as #MF at the next waiting instruction when CR0.NE = 1', () => {
    const { cpu, machine } = boot(protectedMode(`
${idtSetup([[16, 'mf_handler']], 0x8e00)}
    mov eax, cr0
    or eax, 0x20              ; NE
    mov cr0, eax
    finit
    fldcw [cw]                ; zero-divide unmasked
    fld1
    fldz
    fdivp st1, st0            ; pending, not yet signalled
    mov al, 1
    out 0xe9, al
    fwait                     ; #MF here
    mov al, 2
    out 0xe9, al
    mov al, 0x55
    jmp done
mf_handler:
    fnstsw ax
    out 0xe9, al              ; ZE | ES: 0x84
    fnclex
    mov al, 0x4d
    out 0xe9, al
    iretd
cw: dw 0x037b
${IDT_DESC}`));
    runToExit(cpu, machine);
    expect(machine.debugcon).toEqual([1, 0x84, 0x4d, 2]);
    expect(machine.ferrCount).toBe(0);
  });

  it('raises FERR# (IRQ 13 on a PC) instead when CR0.NE = 0', () => {
    const r = run(`
    fldcw [cw]
    fld1
    fldz
    fdivp st1, st0
    fwait                     ; no #MF with NE = 0
    fnstsw [${OUT}]`, 'cw: dw 0x037b');
    expect(r.machine.ferrCount).toBe(1);
    expect(r.u16(0) & 0x8084).toBe(0x8084);
  });

  it('saves and restores its state with FSAVE/FRSTOR and FXSAVE/FXRSTOR', () => {
    const r = run(`
    fld1
    fldpi
    fnstenv [${OUT}]          ; 28 bytes: CW, SW, TW...
    fnsave [${OUT} + 0x100]   ; 108 bytes, then FNINIT
    fld1
    fnstsw [${OUT} + 0x80]    ; TOP = 7 after FNINIT + one load
    frstor [${OUT} + 0x100]
    fxsave [${OUT} + 0x200]
    fninit
    fxrstor [${OUT} + 0x200]
    fstp tword [${OUT} + 0x400]
    fstp tword [${OUT} + 0x410]`);
    expect(r.u16(0)).toBe(0x037f);
    expect((r.u16(4) >> 11) & 7).toBe(6); // TOP after two loads
    expect(r.u16(8)).toBe(0x0fff); // R7 and R6 valid (pi, 1), the rest empty
    expect((r.u16(0x80) >> 11) & 7).toBe(7);
    expect(r.machine.ram[OUT + 0x200 + 4]).toBe(0xc0); // abridged tag: R6, R7
    expect(r.hex80(0x400)).toBe('4000:c90fdaa22168c235');
    expect(r.hex80(0x410)).toBe('3fff:8000000000000000');
  });

  it('computes FPREM and FPREM1 with the low quotient bits in C0, C3, C1', () => {
    const r = run(`
    fild dword [three]
    fild dword [ten]
    fprem                     ; 10 = 3 * 3 + 1
    fnstsw [${OUT}]
    fistp dword [${OUT} + 4]
    fild dword [eleven]
    fprem1                    ; 11 = 3 * 4 - 1
    fnstsw [${OUT} + 8]
    fistp dword [${OUT} + 12]`, 'three: dd 3\nten: dd 10\neleven: dd 11');
    expect(r.u32(4)).toBe(1);
    expect(r.u16(0) & 0x4700).toBe(0x4200); // q = 3: C3 = 1, C1 = 1, C0 = 0, C2 = 0
    expect(r.u32(12) | 0).toBe(-1);
    expect(r.u16(8) & 0x4700).toBe(0x0100); // q = 4: C0 = 1
  });

  it('reports fpu and fxsr in CPUID', () => {
    const r = run(`
    mov eax, 1
    cpuid
    mov [${OUT}], edx`);
    expect(r.u32(0) & 1).toBe(1);
    expect(r.u32(0) & (1 << 24)).toBe(1 << 24);
  });
});
