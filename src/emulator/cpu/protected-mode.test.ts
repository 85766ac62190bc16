/**
 * Mode transitions and exceptions, as guest programs assembled with nasm: real mode to
 * protected mode with paging, page faults (CR2 and error code, accessed/dirty bits),
 * #GP with error codes through an IDT, a ring 3 task entered by IRET and returning
 * through an interrupt gate with a stack switch, and virtual-8086 mode entered by IRET
 * with VM=1 whose INT traps to the monitor (SDM vol.3 ch.4-6 and §20.2).
 */
import { describe, expect, it } from 'vitest';
import { boot, IDT_DESC, idtSetup, LAYOUT, protectedMode, runToExit } from './testing/programs.ts';
import { nasmAvailable } from './testing/nasm.ts';
import * as C from './constants.ts';

/** An IDT whose handlers report through port 0xE9 (testing/programs.ts). */
const IDT_SETUP = (vectors: [number, string][]) => idtSetup(vectors);

describe.skipIf(!nasmAvailable())('protected mode, paging and exceptions', () => {
  it('switches to protected mode with paging and runs 32-bit code', () => {
    const { cpu, machine } = boot(protectedMode(`
    mov eax, 0x12345678
    mov [0x300000], eax
    mov ebx, [0x300000]
    cmp ebx, eax
    jne .bad
    mov al, 1
    jmp done
.bad:
    mov al, 2
    jmp done`));
    runToExit(cpu, machine);
    expect(machine.shutdownReason).toBe('');
    expect(machine.exitValue).toBe(1);
    expect(cpu.cr0 & (C.CR0_PE | C.CR0_PG)).toBe(C.CR0_PE | C.CR0_PG);
    expect(cpu.cs32).toBe(true);
    // The page walk set accessed and dirty bits in the PTE of 0x300000 (SDM vol.3 §4.8).
    const pte = machine.read32(LAYOUT.pageTables + (0x300000 >>> 12) * 4);
    expect(pte & (C.PTE_A | C.PTE_D)).toBe(C.PTE_A | C.PTE_D);
  });

  it('raises #PF with CR2 and the error code, and never sets A/D on a not-present entry', () => {
    const { cpu, machine } = boot(protectedMode(`
${IDT_SETUP([[14, 'pf_handler']])}
    ; make the page at 0x400000 not present, and 0x401000 read-only
    and dword [${LAYOUT.pageTables} + (0x400000 >> 12) * 4], ~1
    and dword [${LAYOUT.pageTables} + (0x401000 >> 12) * 4], ~2
    mov eax, cr0
    or eax, 0x10000          ; CR0.WP: supervisor writes honour read-only pages
    mov cr0, eax
    mov eax, cr3
    mov cr3, eax             ; flush the TLB
    mov dword [0x400010], 7  ; #PF, not present, write
    mov dword [0x401020], 7  ; #PF, protection, write
    mov al, 0x55
    jmp done
pf_handler:
    pop eax                  ; error code
    out 0xe9, al
    mov eax, cr2
    shr eax, 4
    out 0xe9, al             ; low byte of CR2 >> 4 identifies the access
    ; fix the mapping the fault was about and retry the faulting instruction
    mov eax, cr2
    shr eax, 12
    or dword [${LAYOUT.pageTables} + eax * 4], 3
    mov eax, cr2
    invlpg [eax]
    iretd
${IDT_DESC}`));
    runToExit(cpu, machine);
    expect(machine.shutdownReason).toBe('');
    expect(machine.exitValue).toBe(0x55);
    // error codes: 0b010 (write, not present), 0b011 (write, protection); CR2 low bytes 0x01, 0x02
    expect(machine.debugcon).toEqual([0x02, 0x01, 0x03, 0x02]);
    expect(machine.read32(0x400010)).toBe(7);
    expect(machine.read32(0x401020)).toBe(7);
  });

  it('has CLFLUSH (CPUID.1:EDX bit 19, a 64-byte line): it faults as a byte read would and changes nothing', () => {
    const { cpu, machine } = boot(protectedMode(`
${IDT_SETUP([[14, 'pf_handler']])}
    mov eax, 1
    cpuid
    shr edx, 19
    and dl, 1
    mov al, dl
    out 0xe9, al             ; CLFSH
    mov al, bh
    out 0xe9, al             ; line size in 8-byte units
    mov dword [0x300000], 0x11223344
    clflush [0x300000]       ; a present page: no fault, nothing written
    mov eax, [0x300000]
    cmp eax, 0x11223344
    jne .bad
    and dword [${LAYOUT.pageTables} + (0x400000 >> 12) * 4], ~1
    mov eax, cr3
    mov cr3, eax
    clflush [0x400040]       ; not present: #PF as a read (error code 0)
    mov al, 0x55
    jmp done
.bad:
    mov al, 0xee
    jmp done
pf_handler:
    pop eax
    out 0xe9, al
    mov eax, cr2
    shr eax, 12
    or dword [${LAYOUT.pageTables} + eax * 4], 1
    mov eax, cr2
    invlpg [eax]
    iretd
${IDT_DESC}`));
    runToExit(cpu, machine);
    expect(machine.shutdownReason).toBe('');
    expect(machine.exitValue).toBe(0x55);
    expect(machine.debugcon).toEqual([1, 8, 0]);
  });

  it('raises #GP with a selector error code for a bad segment load, and #DE for a divide by zero', () => {
    const { cpu, machine } = boot(protectedMode(`
${IDT_SETUP([[13, 'gp_handler'], [0, 'de_handler']])}
    mov ax, 0x38             ; beyond the GDT limit
    mov ds, ax
    xor edx, edx
    xor ecx, ecx
    mov eax, 5
    div ecx
    mov al, 0x66
    jmp done
gp_handler:
    pop eax
    out 0xe9, al             ; error code: the selector 0x38
    add dword [esp], 3       ; skip the 3-byte mov ds, ax (8e d8 plus... mov ds,ax is 2 bytes)
    sub dword [esp], 1
    iretd
de_handler:
    mov al, 0xde
    out 0xe9, al
    add dword [esp], 2       ; skip div ecx
    iretd
${IDT_DESC}`));
    runToExit(cpu, machine);
    expect(machine.shutdownReason).toBe('');
    expect(machine.debugcon).toEqual([0x38, 0xde]);
    expect(machine.exitValue).toBe(0x66);
  });

  it('reads and writes the MSRs Linux touches, and raises #GP for one it does not have or a read-only one', () => {
    const { cpu, machine } = boot(protectedMode(`
${IDT_SETUP([[13, 'gp_handler']])}
    mov ecx, 0x17            ; IA32_PLATFORM_ID: platform 0
    mov eax, -1
    mov edx, -1
    rdmsr
    or eax, edx
    out 0xe9, al
    mov ecx, 0x174           ; SYSENTER_CS keeps what is written
    mov eax, 0x10
    xor edx, edx
    wrmsr
    xor eax, eax
    rdmsr
    out 0xe9, al
    mov ecx, 0x8b            ; IA32_BIOS_SIGN_ID takes a write (software clears it before CPUID)
    wrmsr
    mov ecx, 0x17            ; read-only: #GP
    wrmsr
    mov ecx, 0x1234          ; not an MSR of this CPU: #GP
    rdmsr
    mov al, 0x77
    jmp done
gp_handler:
    pop eax
    mov al, 0x0d
    out 0xe9, al
    add dword [esp], 2       ; skip the 2-byte rdmsr/wrmsr
    iretd
${IDT_DESC}`));
    runToExit(cpu, machine);
    expect(machine.shutdownReason).toBe('');
    expect(machine.debugcon).toEqual([0x00, 0x10, 0x0d, 0x0d]);
    expect(machine.exitValue).toBe(0x77);
  });

  it('enters ring 3 with IRET and comes back through an interrupt gate on the TSS stack', () => {
    const { cpu, machine } = boot(protectedMode(`
${IDT_SETUP([[0x80, 'syscall'], [13, 'gp_handler']])}
    ; TSS: ring 0 stack for the privilege change
    mov dword [${LAYOUT.tss} + 4], 0x8fff0   ; ESP0
    mov word [${LAYOUT.tss} + 8], 0x10       ; SS0
    mov word [${LAYOUT.tss} + 0x66], 0x68    ; I/O map base beyond the limit: no bitmap
    mov ax, 0x28
    ltr ax
    push dword 0x23          ; user SS
    push dword 0x70000       ; user ESP
    pushfd
    push dword 0x1b          ; user CS
    push dword user_code
    iretd
user_code:
    mov eax, 0x1234
    int 0x80                 ; the gate's DPL is 3: allowed from ring 3
    mov ax, cs
    and al, 3
    out 0xe9, al             ; CPL 3 > IOPL 0 and no I/O bitmap: #GP
gp_handler:
    mov al, 0x47
    out 0xe9, al
    mov al, 0x77
    jmp done
syscall:
    ; back at CPL 0 on the TSS stack: the frame holds user SS:ESP
    mov ebx, [esp + 16]      ; user SS
    mov al, bl
    out 0xe9, al
    mov eax, esp
    shr eax, 12
    out 0xe9, al             ; 0x8f: on the ring 0 stack from the TSS
    iretd
${IDT_DESC}`));
    runToExit(cpu, machine);
    expect(machine.shutdownReason).toBe('');
    // INT 0x80 arrives at CPL 0 with the user SS (0x23) in the frame, on the TSS's ring 0
    // stack (page 0x8f); back in ring 3 the OUT faults (#GP, 0x47).
    expect(machine.debugcon).toEqual([0x23, 0x8f, 0x47]);
    expect(machine.exitValue).toBe(0x77);
  });

  it('runs virtual-8086 code entered by IRET with VM=1; INT with IOPL<3 traps to the monitor with #GP', () => {
    const { cpu, machine } = boot(protectedMode(`
${IDT_SETUP([[13, 'monitor']])}
    mov dword [${LAYOUT.tss} + 4], 0x8fff0
    mov word [${LAYOUT.tss} + 8], 0x10
    mov ax, 0x28
    ltr ax
    ; v86 code at 0x2000:0x0000 (linear 0x20000)
    mov esi, v86_code
    mov edi, 0x20000
    mov ecx, v86_end - v86_code
    rep movsb
    push dword 0             ; GS
    push dword 0             ; FS
    push dword 0x3000        ; DS
    push dword 0             ; ES
    push dword 0x3000        ; SS
    push dword 0x0ff0        ; SP
    push dword 0x20002       ; EFLAGS: VM=1, IOPL=0
    push dword 0x2000        ; CS
    push dword 0             ; IP
    iretd
monitor:
    ; Entering from v86 mode nulled DS, ES, FS and GS (SDM vol.3 §6.12.1): reload DS.
    mov ax, 0x10
    mov ds, ax
    ; #GP from v86: the frame has error code, EIP, CS, EFLAGS (VM set), ESP, SS, ES, DS, FS, GS
    mov eax, [esp + 12]      ; EFLAGS
    shr eax, 17
    and al, 1
    out 0xe9, al             ; 1: came from v86 mode
    mov eax, [esp + 8]       ; CS of the v86 code
    mov al, ah
    out 0xe9, al             ; 0x20
    ; the v86 code stored AX to DS:0 before the INT
    mov ax, [0x30000]
    out 0xe9, al
    mov al, 0x86
    jmp done
bits 16
v86_code:
    mov ax, 0x4242
    mov [0], ax
    int 0x21
v86_end:
bits 32
${IDT_DESC}`));
    runToExit(cpu, machine);
    expect(machine.shutdownReason).toBe('');
    expect(machine.debugcon).toEqual([1, 0x20, 0x42]);
    expect(machine.exitValue).toBe(0x86);
  });

  it('moves the stack by the size it started with, and writes the stack only where the SDM says', () => {
    // A copy of the standard GDT with 0x38: a 16-bit data segment (B=0, limit 0xFFFF) and
    // 0x40: a flat read-only data segment.
    const GDT2 = 0x83000;
    const { cpu, machine } = boot(protectedMode(`
${IDT_SETUP([[14, 'pf_handler']])}
    mov esi, gdt
    mov edi, ${GDT2}
    mov ecx, (gdt_end - gdt) / 4
    rep movsd
    mov dword [${GDT2} + 0x38], 0x0000ffff
    mov dword [${GDT2} + 0x3c], 0x00009200
    mov dword [${GDT2} + 0x40], 0x0000ffff
    mov dword [${GDT2} + 0x44], 0x00cf9000
    lgdt [gdt2_desc]
    mov ebx, ${LAYOUT.stack}
    ; POP SS from a 16-bit stack to a 32-bit segment adds to SP alone (0xFFFC + 4 wraps to 0):
    ; the new SS's size applies from the next instruction.
    mov ax, 0x38
    mov ss, ax
    mov esp, 0x20000
    push dword 0x10          ; SP 0xFFFC, ESP 0x2FFFC
    pop ss
    mov [0x5000], esp        ; 0x20000 (0x30000 if the new SS's size were used)
    ; ENTER with a 32-bit operand on a 16-bit stack: FrameTemp is ESP, upper half included.
    mov ax, 0x38
    mov ss, ax
    mov esp, 0x10000
    mov ebp, 0x12345678
    enter 8, 0               ; SP 0xFFFC after the push, ESP 0x1FFFC
    mov [0x5004], ebp        ; 0x1FFFC
    mov [0x5008], esp        ; 0x1FFF4
    mov ax, 0x10
    mov ss, ax
    mov esp, ebx
    ; PUSH of a segment register with a 32-bit operand writes 16 bits and moves ESP by 4.
    mov dword [esp - 4], 0xdeadbeef
    push ds
    pop dword [0x500c]       ; 0xDEAD0010
    ; ARPL writes its destination only when it raises the RPL: an unchanged selector in a
    ; read-only segment is no fault.
    mov word [0x5010], 0x0013
    mov ax, 0x40
    mov ds, ax
    mov cx, 0x0001
    arpl [0x5010], cx        ; RPL 3 >= 1: ZF=0, no write
    setz [es:0x5012]
    mov ax, 0x10
    mov ds, ax
    ; ENTER faults when a write at its final stack pointer would, before it pushes anything:
    ; the page below is not present, the pushes themselves would land in a present page.
    and dword [${LAYOUT.pageTables} + (0x400000 >> 12) * 4], ~1
    mov eax, cr3
    mov cr3, eax
    mov esp, 0x401040
    enter 0x50, 0            ; final ESP 0x400FEC: #PF, ESP still 0x401040
    mov esp, ebx             ; (the handler mapped the page and the ENTER ran again)
    mov al, 0x77
    jmp done
pf_handler:
    pop eax
    mov [0x5014], eax        ; error code
    mov eax, cr2
    mov [0x5018], eax
    lea eax, [esp + 12]      ; ESP before the fault's frame
    mov [0x501c], eax
    or dword [${LAYOUT.pageTables} + (0x400000 >> 12) * 4], 1
    invlpg [0x400000]
    iretd
gdt2_desc:
    dw 0x47
    dd ${GDT2}
${IDT_DESC}`));
    runToExit(cpu, machine);
    expect(machine.shutdownReason).toBe('');
    expect(machine.exitValue).toBe(0x77);
    const at = (a: number) => machine.read32(a) >>> 0;
    expect(at(0x5000).toString(16)).toBe('20000');
    expect([at(0x5004), at(0x5008)].map((v) => v.toString(16))).toEqual(['1fffc', '1fff4']);
    expect(at(0x500c).toString(16)).toBe('dead0010');
    expect(machine.read32(0x5010) & 0xffffff).toBe(0x0013);
    expect([at(0x5014), at(0x5018), at(0x501c)].map((v) => v.toString(16))).toEqual(['2', '400fec', '401040']);
    expect(cpu.r32[C.ESP] >>> 0).toBe(LAYOUT.stack);
  });

  it('blocks NMIs from the delivery of one until IRET, then takes the one that waited', () => {
    // Port 0x99 raises NMI (a stand-in for the platform's NMI pin).
    const { cpu, machine } = boot(protectedMode(`
${IDT_SETUP([[2, 'nmi_handler']])}
    xor ecx, ecx
    out 0x99, al             ; NMI: taken after this instruction
    mov al, cl
    out 0xe9, al             ; 2: the NMI raised inside the handler came after its IRET
    mov al, 0x42
    jmp done
nmi_handler:
    inc ecx
    cmp ecx, 1
    jne .out
    out 0x99, al             ; another NMI while the first is being handled: it must wait
    mov al, cl
    out 0xe9, al             ; 1: not taken here
.out:
    iretd
${IDT_DESC}`));
    const out8 = machine.out8.bind(machine);
    machine.out8 = (port: number, v: number) => (port === 0x99 ? cpu.nmi() : out8(port, v));
    runToExit(cpu, machine);
    expect(machine.shutdownReason).toBe('');
    expect(machine.exitValue).toBe(0x42);
    expect(machine.debugcon).toEqual([1, 2]);
  });

  it('pushes RF = 1 for a fault, and RF lasts one instruction after the IRET that restores it', () => {
    const { cpu, machine } = boot(protectedMode(`
${IDT_SETUP([[13, 'gp_handler'], [0x30, 'int_handler']])}
    mov ax, 0x38             ; beyond the GDT limit: #GP
    mov ds, ax
    nop                      ; runs with RF = 1, which then clears
    int 0x30                 ; a software interrupt pushes RF as it is: 0
    mov al, 0x43
    jmp done
gp_handler:
    mov eax, [esp + 12]      ; EFLAGS image under the error code, EIP and CS
    shr eax, 16
    and al, 1
    out 0xe9, al             ; RF of the fault: 1
    add dword [esp + 4], 2   ; past the 2-byte mov ds, ax
    add esp, 4
    iretd
int_handler:
    mov eax, [esp + 8]
    shr eax, 16
    and al, 1
    out 0xe9, al             ; RF of the software interrupt: 0
    iretd
${IDT_DESC}`));
    runToExit(cpu, machine);
    expect(machine.shutdownReason).toBe('');
    expect(machine.exitValue).toBe(0x43);
    expect(machine.debugcon).toEqual([1, 0]);
  });

  it('resets with a triple fault report when no IDT can deliver an exception', () => {
    const { cpu, machine } = boot(protectedMode(`
    lidt [bad_idt]
    mov eax, [0xffffff00]    ; not mapped: #PF, then no IDT entry: #DF, then triple fault
    jmp done
bad_idt:
    dw 0
    dd 0`));
    runToExit(cpu, machine, 100_000);
    expect(machine.shutdownReason).toMatch(/^triple fault: .*at 0008:/);
    expect(cpu.halted).toBe(true);
  });
});
