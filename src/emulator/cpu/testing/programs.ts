/**
 * Guest programs for the CPU's own tests and benchmark, as nasm source. `protectedMode`
 * wraps a 32-bit body in the steps a real OS takes from real mode: GDT, CR0.PE, a far
 * jump into 32-bit code, flat segments, identity-mapped 4 KiB paging of the first
 * 16 MiB, CR0.PG. The body ends by writing a status to port 0xF4 and halting.
 */
import { Cpu } from '../cpu.ts';
import { CS } from '../constants.ts';
import { FlatTestMachine } from '../flat-machine.ts';
import { X87 } from '../fpu/x87.ts';
import { assemble } from './nasm.ts';

export const LOAD_ADDRESS = 0x7c00;

/** Memory layout the prologue builds (physical = linear below 16 MiB). */
export const LAYOUT = { pageDirectory: 0x100000, pageTables: 0x101000, stack: 0x9fff0, idt: 0x80000, tss: 0x81000 };

export function protectedMode(body: string, extraData = ''): string {
  return `
bits 16
org ${LOAD_ADDRESS}
    cli
    lgdt [gdt_desc]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    jmp 0x08:pm_start
bits 32
pm_start:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    mov esp, ${LAYOUT.stack}
    ; identity map 16 MiB with user-writable 4 KiB pages
    mov edi, ${LAYOUT.pageTables}
    mov eax, 0x007
    mov ecx, 4096
.pt: stosd
    add eax, 0x1000
    loop .pt
    mov edi, ${LAYOUT.pageDirectory}
    mov eax, ${LAYOUT.pageTables} | 7
    mov ecx, 4
.pd: stosd
    add eax, 0x1000
    loop .pd
    mov eax, ${LAYOUT.pageDirectory}
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    jmp body
done:
    out 0xf4, al
    hlt
    jmp done
align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff   ; 0x08 ring 0 code, flat 32-bit
    dq 0x00cf92000000ffff   ; 0x10 ring 0 data
    dq 0x00cffa000000ffff   ; 0x18 ring 3 code
    dq 0x00cff2000000ffff   ; 0x20 ring 3 data
    dq 0x0000890000000067 | ((${LAYOUT.tss} & 0xffffff) << 16) ; 0x28 32-bit TSS
    dq 0x000f9a000000ffff   ; 0x30 ring 0 code, 16-bit
gdt_end:
gdt_desc:
    dw gdt_end - gdt - 1
    dd gdt
body:
${body}
${extraData}
`;
}

/** A CPU in a flat machine with `source` assembled at 0000:7C00, in real mode. */
export function boot(source: string, mebibytes = 32): { cpu: Cpu; machine: FlatTestMachine } {
  const machine = new FlatTestMachine(mebibytes);
  machine.load(LOAD_ADDRESS, assemble(source));
  const cpu = new Cpu(machine);
  cpu.fpu = new X87(cpu);
  startAtLoadAddress(cpu);
  return { cpu, machine };
}

/** Point a CPU fresh from reset at 0000:7C00 in real mode, where boot() loads programs. */
export function startAtLoadAddress(cpu: Cpu): void {
  cpu.sreg[CS] = 0;
  cpu.setSegCache(CS, 0, 0xffff, 0x9b);
  cpu.updateModeCaches();
  cpu.eip = LOAD_ADDRESS;
}

/** Run until the program writes port 0xF4 and halts (or `limit` instructions). */
export function runToExit(cpu: Cpu, machine: FlatTestMachine, limit = 50_000_000): number {
  let total = 0;
  while (machine.exitValue < 0 && !machine.shutdownReason && total < limit) {
    const n = cpu.run(100_000);
    total += n;
    if (cpu.halted && machine.exitValue < 0) break;
  }
  return total;
}

/**
 * nasm lines that point IDT entries (at LAYOUT.idt) at handlers in the flat code segment
 * 0x08 and load the IDT: 32-bit interrupt gates, DPL 3 by default so INT n from ring 3 may
 * use them (`access` 0x8e00 makes them DPL 0). Pair with IDT_DESC among the program's data.
 */
export function idtSetup(vectors: [number, string][], access = 0xee00): string {
  return `${vectors.map(([v, handler]) => `
    mov eax, ${handler}
    mov word [${LAYOUT.idt} + ${v} * 8], ax
    mov word [${LAYOUT.idt} + ${v} * 8 + 2], 0x08
    mov word [${LAYOUT.idt} + ${v} * 8 + 4], 0x${access.toString(16)}
    shr eax, 16
    mov word [${LAYOUT.idt} + ${v} * 8 + 6], ax`).join('')}
    lidt [idt_desc]
`;
}

/** The IDT descriptor idtSetup() loads: 256 gates at LAYOUT.idt. */
export const IDT_DESC = `
idt_desc:
    dw 256 * 8 - 1
    dd ${LAYOUT.idt}
`;
