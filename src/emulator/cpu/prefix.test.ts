/**
 * The decoding state prefixes leave behind (Cpu.prefixDirty): an instruction's operand
 * and address size, segment override, REP and LOCK are its own, whatever the instruction
 * before it had, whether that one completed or faulted, and they follow CS's size across
 * far jumps between 16- and 32-bit code; the 15-byte limit applies to prefixed
 * instructions (SDM vol.2 §2.3.11: #GP(0) beyond 15 bytes), and the CS limit to every
 * fetch. Guest programs assembled with nasm, run through the interpreter alone.
 */
import { describe, expect, it } from 'vitest';
import { boot, IDT_DESC, idtSetup, LAYOUT, protectedMode, runToExit } from './testing/programs.ts';
import { nasmAvailable } from './testing/nasm.ts';

describe.skipIf(!nasmAvailable())('prefix state between instructions', () => {
  it('faults an instruction longer than 15 bytes with #GP(0) at its start, and runs one of exactly 15', () => {
    const { cpu, machine } = boot(protectedMode(`
${idtSetup([[13, 'gp_handler']])}
    xor ebx, ebx
    times 14 db 0x3e        ; 14 DS prefixes
    inc ebx                 ; 15 bytes in all: runs
    mov al, bl
    out 0xe9, al
long_one:
    times 15 db 0x3e        ; 15 prefixes
    inc ebx                 ; 16 bytes: #GP(0), EBX unchanged
after_long:
    mov al, bl
    out 0xe9, al
    ; an unprefixed instruction right after is not held to the prefixed one's 15 bytes
    mov eax, 0x11223344
    cmp eax, 0x11223344
    jne .bad
    mov al, 0x55
    jmp done
.bad:
    mov al, 0xee
    jmp done
gp_handler:
    pop eax                 ; error code
    out 0xe9, al
    mov eax, [esp]          ; the saved EIP: the start of the long instruction
    cmp eax, long_one
    jne .wrong
    mov al, 0x0d
    out 0xe9, al
.wrong:
    mov dword [esp], after_long
    iretd
${IDT_DESC}`));
    runToExit(cpu, machine);
    expect(machine.shutdownReason).toBe('');
    expect(machine.exitValue).toBe(0x55);
    expect(machine.debugcon).toEqual([1, 0, 0x0d, 1]);
  });

  it('leaves no operand size, REP, LOCK or segment override to the next instruction, after it ran or faulted', () => {
    const { cpu, machine } = boot(protectedMode(`
${idtSetup([[14, 'pf_handler'], [6, 'ud_handler']])}
    ; 66: the next MOV r32, imm32 must take 4 bytes of immediate
    mov ax, 0x1234
    mov ebx, 0x89abcdef
    cmp ebx, 0x89abcdef
    jne .bad
    ; REP on one MOVSB only
    mov esi, src
    mov edi, 0x300000
    mov ecx, 3
    rep movsb
    mov ecx, 5
    movsb                   ; one byte, ECX untouched
    cmp ecx, 5
    jne .bad
    cmp edi, 0x300004
    jne .bad
    ; LOCK on a memory ADD, then an ADD to a register (#UD if LOCK stayed)
    lock add [0x300010], ebx
    add eax, ebx
    ; an override on a faulting instruction: the handler's own instructions have none
    and dword [${LAYOUT.pageTables} + (0x400000 >> 12) * 4], ~1
    mov eax, cr3
    mov cr3, eax
    fs o16 mov ax, [0x400000]   ; 64 66: #PF, then retried after the handler maps the page
    mov al, 0x55
    jmp done
.bad:
    mov al, 0xee
    jmp done
pf_handler:
    add esp, 4
    mov edx, 0x01020304     ; 32-bit immediate in the handler: no 66 left from the fault
    cmp edx, 0x01020304
    jne .pf_bad
    mov al, 0x0e
    out 0xe9, al
    or dword [${LAYOUT.pageTables} + (0x400000 >> 12) * 4], 1
    invlpg [0x400000]
    iretd
.pf_bad:
    mov al, 0xe1
    out 0xe9, al
    iretd
ud_handler:
    mov al, 0x06
    out 0xe9, al
    add dword [esp], 2
    iretd
src: db 1, 2, 3, 4, 5
${IDT_DESC}`));
    runToExit(cpu, machine);
    expect(machine.shutdownReason).toBe('');
    expect(machine.exitValue).toBe(0x55);
    expect(machine.debugcon).toEqual([0x0e]);
    expect(machine.read32(0x300000)).toBe(0x04030201);
  });

  it('decodes by the code segment it is in after far jumps between 32- and 16-bit code', () => {
    const { cpu, machine } = boot(protectedMode(`
    xor eax, eax
    jmp 0x30:code16         ; selector 0x30: 16-bit ring-0 code, base 0
bits 16
code16:
    mov ax, 0x1234          ; b8 34 12: two bytes of immediate here
    inc ax
    o32 mov ebx, 0x55667788 ; the 66 prefix makes it 32-bit once
    mov cx, 0x4321          ; and 16-bit again
    jmp dword 0x08:back32   ; 66 ea: a 32-bit far pointer
bits 32
back32:
    mov edx, 0x99aabbcc     ; 32-bit again
    cmp ax, 0x1235
    jne .bad
    cmp ebx, 0x55667788
    jne .bad
    cmp cx, 0x4321
    jne .bad
    cmp edx, 0x99aabbcc
    jne .bad
    mov al, 0x55
    jmp done
.bad:
    mov al, 0xee
    jmp done`));
    runToExit(cpu, machine);
    expect(machine.shutdownReason).toBe('');
    expect(machine.exitValue).toBe(0x55);
    expect(cpu.cs32).toBe(true);
  });
});
