/**
 * Hardware task switches (SDM vol.3 ch.7) as guest programs: CALL through a task gate and
 * IRET back (back link, NT, busy bits, CR0.TS, registers saved and restored), JMP to a
 * TSS, a task in virtual-8086 mode, a fault while loading the new task, and a double
 * fault delivered through a task gate as Linux i386 sets it up.
 */
import { describe, expect, it } from 'vitest';
import { boot, IDT_DESC, idtSetup, LAYOUT, protectedMode, runToExit } from './testing/programs.ts';
import { nasmAvailable } from './testing/nasm.ts';

const TSS2 = 0x82000;
const GDT2 = 0x83000;

/**
 * Copies the standard GDT to GDT2 and adds 0x38: a 32-bit TSS at TSS2 whose task runs
 * `entry` on its own stack, and 0x40: a task gate (DPL 3) for it. TR = 0x28 (the first TSS).
 */
const TASKS = (entry: string) => `
    mov esi, gdt
    mov edi, ${GDT2}
    mov ecx, (gdt_end - gdt) / 4
    rep movsd
    mov dword [${GDT2} + 0x38], ((${TSS2} & 0xffff) << 16) | 0x67
    mov dword [${GDT2} + 0x3c], 0x00008900 | ((${TSS2} >> 16) & 0xff)
    mov dword [${GDT2} + 0x40], 0x00380000
    mov dword [${GDT2} + 0x44], 0x0000e500
    lgdt [gdt2_desc]
    mov ax, 0x28
    ltr ax
    ; the second task's initial state
    mov eax, cr3
    mov [${TSS2} + 0x1c], eax
    mov [${LAYOUT.tss} + 0x1c], eax         ; CR3 is loaded from the TSS on a switch back
    mov dword [${TSS2} + 0x20], ${entry}
    mov dword [${TSS2} + 0x24], 0x2
    mov dword [${TSS2} + 0x38], 0x70000     ; ESP
    mov dword [${TSS2} + 0x34], 0x2222       ; EBX
    mov word [${TSS2} + 0x48], 0x10          ; ES
    mov word [${TSS2} + 0x4c], 0x08          ; CS
    mov word [${TSS2} + 0x50], 0x10          ; SS
    mov word [${TSS2} + 0x54], 0x10          ; DS
    mov word [${TSS2} + 0x58], 0x10          ; FS
    mov word [${TSS2} + 0x5c], 0x10          ; GS
    mov word [${TSS2} + 0x60], 0             ; LDT
`;
const GDT2_DESC = `
gdt2_desc:
    dw 0x47
    dd ${GDT2}
`;
/** Type nibble of a GDT descriptor (0x9 available 32-bit TSS, 0xB busy). */
const typeOf = (hi: number) => (hi >> 8) & 0xf;

describe.skipIf(!nasmAvailable())('hardware task switches', () => {
  it('CALLs a task through a task gate and IRETs back with the state of both tasks kept', () => {
    const { cpu, machine } = boot(protectedMode(`
${TASKS('task2')}
    mov ebx, 0x1111
    mov esi, 0x5a5a
    call 0x40:0              ; the offset is ignored for a task gate
    ; back in the first task: its registers came back from its TSS
    mov eax, ebx
    out 0xe9, al             ; 0x11
    mov eax, esi
    out 0xe9, al             ; 0x5a
    str ax
    out 0xe9, al             ; 0x28
    mov al, 0x99
    jmp done
task2:
    mov eax, ebx
    out 0xe9, al             ; 0x22: the new task's EBX from its TSS
    str ax
    out 0xe9, al             ; 0x38
    pushfd
    pop eax
    shr eax, 14
    and al, 1
    out 0xe9, al             ; 1: NT set by a nested (CALL) switch
    mov ax, [${TSS2}]
    out 0xe9, al             ; 0x28: back link to the caller
    mov eax, cr0
    shr eax, 3
    and al, 1
    out 0xe9, al             ; 1: CR0.TS set by the switch
    clts
    mov ebx, 0x3333
    iretd                    ; NT set: back to the task named by the link
${GDT2_DESC}`));
    runToExit(cpu, machine);
    expect(machine.shutdownReason).toBe('');
    expect(machine.debugcon).toEqual([0x22, 0x38, 1, 0x28, 1, 0x11, 0x5a, 0x28]);
    expect(machine.exitValue).toBe(0x99);
    // IRET left the second task: available again; the first is busy. Task 2's EBX was saved.
    expect(typeOf(machine.read32(GDT2 + 0x3c))).toBe(0x9);
    expect(typeOf(machine.read32(GDT2 + 0x2c))).toBe(0xb);
    expect(machine.read32(TSS2 + 0x34)).toBe(0x3333);
  });

  it('JMPs to a TSS: the old task is no longer busy and no link is made', () => {
    const { cpu, machine } = boot(protectedMode(`
${TASKS('task2')}
    mov word [${TSS2}], 0xbeef
    jmp 0x38:0
task2:
    pushfd
    pop eax
    shr eax, 14
    and al, 1
    out 0xe9, al             ; 0: JMP does not nest
    mov ax, [${TSS2}]
    out 0xe9, al             ; 0xef: link untouched
    mov al, 0x42
    jmp done
${GDT2_DESC}`));
    runToExit(cpu, machine);
    expect(machine.shutdownReason).toBe('');
    expect(machine.debugcon).toEqual([0, 0xef]);
    expect(machine.exitValue).toBe(0x42);
    expect(typeOf(machine.read32(GDT2 + 0x2c))).toBe(0x9);
    expect(typeOf(machine.read32(GDT2 + 0x3c))).toBe(0xb);
    expect(cpu.tr).toBe(0x38);
  });

  it('delivers a double fault through a task gate with its error code on the new stack', () => {
    const { cpu, machine } = boot(protectedMode(`
${TASKS('df_task')}
    ; IDT: only vector 8, a task gate to the TSS at 0x38 (Linux i386's doublefault_tss)
    mov dword [${LAYOUT.idt} + 8 * 8], 0x00380000
    mov dword [${LAYOUT.idt} + 8 * 8 + 4], 0x00008500
    lidt [idt_desc]
    mov ax, 0x99             ; beyond the GDT: #GP, whose IDT entry is not present: #NP, so #DF
faulting:
    mov ds, ax
    mov al, 0x01
    jmp done
df_task:
    pop eax
    out 0xe9, al             ; 0: the #DF error code
    mov eax, [${LAYOUT.tss} + 0x20]
    cmp eax, faulting
    sete al
    out 0xe9, al             ; 1: the old task's EIP is the faulting instruction
    mov ax, [${LAYOUT.tss} + 0x54]
    out 0xe9, al             ; 0x10: its DS was saved before the load faulted
    mov al, 0xdf
    jmp done
${IDT_DESC}${GDT2_DESC}`));
    runToExit(cpu, machine);
    expect(machine.shutdownReason).toBe('');
    expect(machine.debugcon).toEqual([0, 1, 0x10]);
    expect(machine.exitValue).toBe(0xdf);
  });

  it('raises #TS in the new task when its TSS names a system descriptor as DS', () => {
    const { cpu, machine } = boot(protectedMode(`
${TASKS('task2')}
    mov word [${TSS2} + 0x54], 0x28          ; DS = the first TSS's descriptor
    ; #TS handler: an interrupt gate at vector 10
${idtSetup([[10, 'ts_handler']], 0x8e00)}
    jmp 0x38:0
task2:
    mov al, 0xee
    jmp done
ts_handler:
    pop eax
    out 0xe9, al             ; 0x28: the selector at fault
    str ax
    out 0xe9, al             ; 0x38: taken in the new task
    mov al, 0x75
    jmp done
${IDT_DESC}${GDT2_DESC}`));
    runToExit(cpu, machine);
    expect(machine.debugcon).toEqual([0x28, 0x38]);
    expect(machine.exitValue).toBe(0x75);
  });

  it('switches to a task whose EFLAGS has VM set: it runs in virtual-8086 mode', () => {
    const { cpu, machine } = boot(protectedMode(`
${TASKS('0')}
    ; the new task: v86 code at 2000:0000, stack 3000:0FF0, ring 0 stack for its monitor
    mov dword [${TSS2} + 0x24], 0x20002      ; EFLAGS: VM=1, IOPL=0
    mov word [${TSS2} + 0x4c], 0x2000        ; CS
    mov dword [${TSS2} + 0x38], 0x0ff0       ; ESP
    mov word [${TSS2} + 0x50], 0x3000        ; SS
    mov word [${TSS2} + 0x54], 0x3000        ; DS
    mov dword [${TSS2} + 4], 0x8fff0         ; ESP0
    mov word [${TSS2} + 8], 0x10             ; SS0
    mov word [${TSS2} + 0x66], 0x68          ; no I/O bitmap
    mov esi, v86_code
    mov edi, 0x20000
    mov ecx, v86_end - v86_code
    rep movsb
${idtSetup([[13, 'monitor']], 0x8e00)}
    jmp 0x38:0
monitor:
    mov ax, 0x10
    mov ds, ax
    mov eax, [esp + 12]      ; EFLAGS of the interrupted code
    shr eax, 17
    and al, 1
    out 0xe9, al             ; 1: it ran in v86 mode
    mov eax, [esp + 8]
    mov al, ah
    out 0xe9, al             ; 0x20: its CS
    mov ax, [0x30000]
    out 0xe9, al             ; 0x42: it wrote through its DS
    mov eax, esp
    shr eax, 12
    out 0xe9, al             ; 0x8f: the monitor runs on the new task's ring 0 stack
    mov al, 0x86
    jmp done
bits 16
v86_code:
    mov ax, 0x4242
    mov [0], ax
    int 0x21                 ; IOPL 0: #GP to the monitor
v86_end:
bits 32
${IDT_DESC}${GDT2_DESC}`));
    runToExit(cpu, machine);
    expect(machine.shutdownReason).toBe('');
    expect(machine.debugcon).toEqual([1, 0x20, 0x42, 0x8f]);
    expect(machine.exitValue).toBe(0x86);
  });

  it('switches to a 16-bit (286) TSS: its word-sized fields load the new task', () => {
    const { cpu, machine } = boot(protectedMode(`
${TASKS('0')}
    ; turn the descriptor at 0x38 into an available 16-bit TSS (type 1, limit 0x2B)
    mov dword [${GDT2} + 0x38], ((${TSS2} & 0xffff) << 16) | 0x2b
    mov dword [${GDT2} + 0x3c], 0x00008100 | ((${TSS2} >> 16) & 0xff)
    mov word [${TSS2} + 0x0e], task16         ; IP
    mov word [${TSS2} + 0x10], 0x0002         ; FLAGS
    mov word [${TSS2} + 0x18], 0x1616         ; BX
    mov word [${TSS2} + 0x1a], 0xfff0         ; SP
    mov word [${TSS2} + 0x22], 0x10           ; ES
    mov word [${TSS2} + 0x24], 0x08           ; CS
    mov word [${TSS2} + 0x26], 0x10           ; SS
    mov word [${TSS2} + 0x28], 0x10           ; DS
    mov word [${TSS2} + 0x2a], 0              ; LDT
    mov ebx, 0xabcd1234
    jmp 0x38:0
task16:
    mov ax, bx
    out 0xe9, al              ; 0x16: BX from the 16-bit TSS
    mov eax, [${LAYOUT.tss} + 0x34]
    shr eax, 24
    out 0xe9, al              ; 0xab: the old 32-bit task's EBX was saved whole
    str ax
    out 0xe9, al              ; 0x38
    mov al, 0x16
    jmp done
${GDT2_DESC}`));
    runToExit(cpu, machine);
    expect(machine.shutdownReason).toBe('');
    expect(machine.debugcon).toEqual([0x16, 0xab, 0x38]);
    expect(machine.exitValue).toBe(0x16);
    expect(typeOf(machine.read32(GDT2 + 0x3c))).toBe(0x3); // busy 16-bit TSS
  });
});
