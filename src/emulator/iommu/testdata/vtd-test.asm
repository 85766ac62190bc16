; A VT-d test program: a 32-bit Multiboot kernel for the trapdoor CLI with
;   -machine iommu=on -device edu --hda DISK --debugcon stdio --debug-exit
; It sets up a root table, a context entry for the edu device and three levels of page
; tables mapping one page (IOVA 0x400000 -> 0x600000), turns translation on as a driver
; does (RTADDR low then high, SRTP, global context and IOTLB invalidation, TE), and checks:
;   1. edu DMA through the mapping: in from RAM and back out, data arrives at the
;      translated page and nowhere else;
;   2. edu DMA to an unmapped page above 16 MiB: nothing written; FRCD0 holds edu's source
;      id, reason 5 (write not permitted), the page and T = 0; FSTS.PPF; the fault MSI
;      (FEDATA vector 0x41 to FEADDR 0xFEE00000) is taken;
;   3. a repeat from the same source collapses (no second record, no second MSI);
;   4. the IDE bus master (00:01.1, no context entry: reason 2) fills records 1-7 one
;      after the other while this program clears each, until the next record is edu's
;      still-pending record 0: the overflow (FSTS.PFO) drops that fault;
;   5. clearing: F of record 0 (PPF clears), then PFO; a new fault is recorded and
;      signalled again.
; Exit through port 0xF4: 0x10 for success (process status 33), else the failing step.
bits 32
org 0x100000
%include "edu.inc"

VTD      equ 0xfed90000
FRCD     equ VTD + 0x220
LAPIC    equ 0xfee00000
ROOT     equ 0x200000
CTX      equ 0x201000
L3       equ 0x202000
L2       equ 0x203000
L1       equ 0x204000
BUF_IOVA equ 0x400000
BUF_PHYS equ 0x600000
HOLE     equ 0x1800000              ; 24 MiB: not mapped for edu
PRD_IOVA equ 0x300000               ; the IDE's PRD table address: IDE has no context entry
VECTOR   equ 0x41

multiboot_header

%macro check 2                      ; check <condition code>, <step>: fail with <step> unless the condition holds
    j%1 %%ok
    mov al, %2
    jmp fail
%%ok:
%endmacro

start:
    cli
    mov esp, 0x180000
    mov al, 0xff                    ; no 8259 interrupts: only the fault MSI comes in
    out 0x21, al
    out 0xa1, al
    ; IDT: every vector unexpected, except the fault event's.
    mov edi, idt
    mov ecx, 256
.fill:
    mov eax, unexpected
    mov [edi], ax
    mov word [edi + 2], cs
    mov word [edi + 4], 0x8e00
    shr eax, 16
    mov [edi + 6], ax
    add edi, 8
    loop .fill
    mov eax, msi_handler
    mov [idt + VECTOR * 8], ax
    shr eax, 16
    mov [idt + VECTOR * 8 + 6], ax
    lidt [idtr]
    ; The local APIC: software-enabled, TPR 0.
    mov eax, [LAPIC + 0xf0]
    or eax, 0x1ff
    mov [LAPIC + 0xf0], eax
    mov dword [LAPIC + 0x80], 0
    sti

    ; --- step 1: the unit is there (VER 1.0) ---
    cmp dword [VTD + 0x00], 0x10
    check e, 1

    ; --- find edu (1234:11e8) on bus 0 ---
    call find_edu
    check nc, 2
    mov [edu_sid], ebx
    ; The IDE function 00:01.1: its bus-master base (BAR4) and bus mastering on.
    mov eax, 0x80000920
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    in eax, dx
    and eax, 0xfffc
    mov [bm_base], eax
    mov eax, 0x80000904
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    in ax, dx
    or ax, 5
    out dx, ax

    ; --- the tables ---
    mov edi, ROOT
    mov ecx, 5 * 1024
    xor eax, eax
    rep stosd
    mov dword [ROOT], CTX | 1                   ; bus 0
    mov ebx, [edu_sid]
    shl ebx, 4
    mov dword [CTX + ebx], L3 | 1               ; present, translate, level-3 table
    mov dword [CTX + ebx + 8], (1 << 8) | 1     ; domain 1, AW 1 (39 bits, 3 levels)
    mov dword [L3], L2 | 3
    mov dword [L2 + (BUF_IOVA >> 21) * 8], L1 | 3
    mov dword [L1 + ((BUF_IOVA >> 12) & 0x1ff) * 8], BUF_PHYS | 3

    ; --- program the unit as a driver does ---
    mov dword [VTD + 0x3c], VECTOR              ; FEDATA
    mov dword [VTD + 0x40], LAPIC               ; FEADDR
    mov dword [VTD + 0x44], 0                   ; FEUADDR
    mov dword [VTD + 0x38], 0                   ; FECTL: unmasked
    mov dword [VTD + 0x20], ROOT                ; RTADDR low, then high
    mov dword [VTD + 0x24], 0
    mov dword [VTD + 0x18], 1 << 30             ; GCMD.SRTP
.rtps:
    test dword [VTD + 0x1c], 1 << 30
    jz .rtps
    mov dword [VTD + 0x28], 0                   ; CCMD: global, ICC (acts on the high dword)
    mov dword [VTD + 0x2c], (1 << 31) | (1 << 29)
.icc:
    test dword [VTD + 0x2c], 1 << 31
    jnz .icc
    mov dword [VTD + 0xf8], 0                   ; IOTLB: global, IVT
    mov dword [VTD + 0xfc], (1 << 31) | (1 << 28)
.ivt:
    test dword [VTD + 0xfc], 1 << 31
    jnz .ivt
    mov eax, [VTD + 0xfc]
    shr eax, 25
    and eax, 3
    cmp eax, 1                                  ; IAIG: done globally
    check e, 3
    mov dword [VTD + 0x18], 1 << 31             ; GCMD.TE
.tes:
    test dword [VTD + 0x1c], 1 << 31
    jz .tes

    ; --- step 4: DMA through the mapping ---
    mov edi, BUF_PHYS
    xor eax, eax
.pattern:
    mov [edi + eax], al
    inc eax
    cmp eax, 64
    jb .pattern
    mov eax, BUF_IOVA                           ; RAM -> edu buffer
    mov ebx, 0x40000
    mov ecx, 64
    mov edx, 1
    call edu_dma
    mov eax, 0x40000                            ; edu buffer -> RAM, 0x100 further on
    mov ebx, BUF_IOVA + 0x100
    mov ecx, 64
    mov edx, 3
    call edu_dma
    mov esi, BUF_PHYS
    mov edi, BUF_PHYS + 0x100
    mov ecx, 16
    repe cmpsd
    check e, 4
    cmp dword [BUF_IOVA + 0x100], 0             ; nothing at the untranslated address
    check e, 5

    ; --- step 6: DMA to an unmapped page above 16 MiB ---
    mov dword [HOLE], 0xcccccccc
    call edu_fault
    cmp dword [HOLE], 0xcccccccc
    check e, 6
    cmp dword [FRCD + 0], HOLE                  ; the page
    check e, 7
    cmp dword [FRCD + 4], 0
    check e, 7
    mov eax, [FRCD + 8]                         ; source id
    and eax, 0xffff
    cmp eax, [edu_sid]
    check e, 8
    cmp dword [FRCD + 12], 0x80000005           ; F, T = 0 (write), reason 5
    check e, 9
    cmp dword [VTD + 0x34], 2                   ; FSTS: PPF, FRI 0
    check e, 10
    mov ecx, 100000
.msi:
    cmp dword [msi_count], 1
    je .msi_ok
    loop .msi
    mov al, 11
    jmp fail
.msi_ok:

    ; --- step 12: a repeat from the same source is collapsed ---
    call edu_fault
    test dword [FRCD + 16 + 12], 0x80000000
    check z, 12
    cmp dword [msi_count], 1
    check e, 12

    ; --- step 13: another source fills records 1..7, each cleared, then overflows ---
    mov ebx, 1
.fillrec:
    call ide_fault
    mov edi, ebx
    shl edi, 4
    cmp dword [FRCD + edi + 12], 0xc0000002     ; F, T = 1 (a read of its PRD), reason 2
    check e, 13
    cmp dword [FRCD + edi + 8], 0x0009          ; 00:01.1
    check e, 13
    cmp dword [FRCD + edi], PRD_IOVA
    check e, 13
    mov dword [FRCD + edi + 12], 0x80000000     ; clear F (write 1)
    inc ebx
    cmp ebx, 8
    jb .fillrec
    cmp dword [msi_count], 1                    ; record 0 was pending all along: no new events
    check e, 14
    call ide_fault                              ; the next record is 0, still pending: overflow
    test dword [VTD + 0x34], 1                  ; FSTS.PFO
    check nz, 15
    mov eax, [FRCD + 8]
    and eax, 0xffff
    cmp eax, [edu_sid]                          ; record 0 untouched
    check e, 15

    ; --- step 16: clearing ---
    mov dword [FRCD + 12], 0x80000000           ; F of record 0
    mov eax, [VTD + 0x34]
    and eax, 3
    cmp eax, 1                                  ; PPF clear, PFO still set
    check e, 16
    mov dword [VTD + 0x34], 1                   ; clear PFO
    test dword [VTD + 0x34], 3
    check z, 17
    call edu_fault                              ; recorded and signalled again
    test dword [FRCD + 12], 0x80000000
    check nz, 18
    mov ecx, 100000
.msi2:
    cmp dword [msi_count], 2
    je .pass
    loop .msi2
    mov al, 18
    jmp fail

.pass:
    mov esi, pass_text
    call print
    mov al, 0x10
    out 0xf4, al
    cli
    hlt

; edu buffer -> the unmapped page: faults.
edu_fault:
    mov eax, 0x40000
    mov ebx, HOLE
    mov ecx, 64
    mov edx, 3
    jmp edu_dma

; The IDE bus master reads its PRD table at PRD_IOVA for a READ DMA of sector 0: faults.
ide_fault:
    mov edx, [bm_base]
    xor al, al
    out dx, al                      ; stop the engine
    add edx, 2
    mov al, 6
    out dx, al                      ; clear its error and interrupt bits
    add edx, 2
    mov eax, PRD_IOVA
    out dx, eax
    mov dx, 0x1f6
    mov al, 0xe0                    ; master, LBA
    out dx, al
    mov dx, 0x1f2
    mov al, 1
    out dx, al
    xor al, al
    inc dx
    out dx, al
    inc dx
    out dx, al
    inc dx
    out dx, al
    mov dx, 0x1f7
    mov al, 0xc8                    ; READ DMA
    out dx, al
    mov edx, [bm_base]
    mov al, 0x09                    ; start, toward memory
    out dx, al
    ret

print:
    lodsb
    test al, al
    jz .done
    out 0xe9, al
    jmp print
.done:
    ret

; al = the failing step
fail:
    mov bl, al
    mov esi, fail_text
    call print
    mov al, bl
    add al, '@'
    out 0xe9, al
    mov al, 10
    out 0xe9, al
    mov al, bl
    out 0xf4, al
    cli
    hlt

msi_handler:
    inc dword [msi_count]
    mov dword [LAPIC + 0xb0], 0     ; EOI
    iretd

unexpected:
    mov al, 0x3f
    jmp fail

pass_text: db 'VT-D TEST PASS', 10, 0
fail_text: db 'VT-D TEST FAIL at step ', 0
align 8
idtr:
    dw 256 * 8 - 1
    dd idt
edu_sid: dd 0
bm_base: dd 0
msi_count: dd 0
edu_routines
load_end:
align 8
idt: times 256 * 8 db 0
bss_end:
