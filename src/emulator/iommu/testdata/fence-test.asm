; A VMM-fence test program: a 32-bit Multiboot kernel for a machine with QEMU's edu device
; on its default, direct-assigned path (the page with "edu" ticked in the machine settings,
; or the CLI's -device edu). A direct-assigned bus master reaches guest memory only through
; the VMM's fence (docs/iommu.md), which maps exactly the guest's RAM. The program programs
; edu itself (the guest's VT-d unit, if there is one, stays with translation off: identity)
; and checks:
;   1. edu is on the PCI bus (1234:11e8);
;   2. DMA inside RAM: a pattern in RAM goes into edu's buffer and back out 0x100 further
;      on; the data arrives;
;   3. a DMA write beyond the top of RAM (from the Multiboot memory information), within
;      edu's 28-bit reach: the fence refuses it (nothing is there to see it from inside;
;      the fence's log and edu's DMA fault counter show it);
;   4. the VGA's text memory at 0xB8000 holds a row of text the CPU writes there (the VGA
;      BIOS set text mode up);
;   5. a DMA write into that text memory (the legacy VGA/ROM hole, device memory rather
;      than RAM): the fence refuses it, the text stays as it was;
;   6. a DMA read of the BIOS at 0xF0000 into edu's buffer: the fence refuses it, the
;      buffer keeps what it held (copied back into RAM to compare).
; It reports on COM1 and exits through port 0xF4 (the CLI's --debug-exit: 0x10 for success,
; process status 33; otherwise the failing step), then halts with interrupts off (in the
; page, where port 0xF4 is not wired, that halt stops the machine).
bits 32
org 0x100000
%include "edu.inc"

COM1     equ 0x3f8
BUF      equ 0x600000              ; a RAM page for the in-RAM DMA
EDU_BUF  equ 0x40000               ; edu's buffer as its DMA engine addresses it
VGA_TEXT equ 0xb8000
BIOS     equ 0xf0000
EDU_REACH equ 0x10000000           ; edu's 28-bit DMA mask

multiboot_header

%macro check 3                      ; check <condition code>, <step>, <message>: fail unless the condition holds
    j%1 %%ok
    mov al, %2
    mov esi, %3
    jmp fail
%%ok:
%endmacro

start:
    cli
    mov esp, 0x180000
    mov [mbinfo], ebx
    mov al, 0xff                    ; no 8259 interrupts: this program polls
    out 0x21, al
    out 0xa1, al
    mov esi, banner
    call print

    ; --- the top of RAM, from the Multiboot information (mem_upper: KiB above 1 MiB) ---
    mov ebx, [mbinfo]
    test dword [ebx], 1
    check nz, 1, no_meminfo
    mov eax, [ebx + 8]
    shl eax, 10
    add eax, 0x100000
    and eax, 0xfffff000
    mov [ram_top], eax

    ; --- step 1: find edu (1234:11e8) on bus 0 ---
    call find_edu
    check nc, 1, no_edu
    mov esi, found_text
    call print
    mov eax, [edu_bar]
    call print_hex
    mov esi, ram_text
    call print
    mov eax, [ram_top]
    call print_hex
    call newline

    ; --- step 2: DMA inside RAM ---
    mov edi, BUF
    xor eax, eax
.pattern:
    lea edx, [eax * 2 + eax + 1]     ; byte i = 3i + 1
    mov [edi + eax], dl
    inc eax
    cmp eax, 64
    jb .pattern
    mov eax, BUF                    ; RAM -> edu buffer
    mov ebx, EDU_BUF
    mov ecx, 64
    mov edx, 1
    call edu_dma
    mov eax, EDU_BUF                ; edu buffer -> RAM, 0x100 further on
    mov ebx, BUF + 0x100
    mov ecx, 64
    mov edx, 3
    call edu_dma
    mov esi, BUF
    mov edi, BUF + 0x100
    mov ecx, 16
    repe cmpsd
    check e, 2, dma_lost
    mov esi, step2_text
    call print

    ; --- step 3: a DMA write beyond the top of RAM ---
    mov eax, [ram_top]
    cmp eax, EDU_REACH
    jb .beyond
    mov esi, step3_skip
    call print
    jmp .vga
.beyond:
    mov eax, EDU_BUF
    mov ebx, [ram_top]
    mov ecx, 64
    mov edx, 3
    call edu_dma
    mov esi, step3_text
    call print
    mov eax, [ram_top]
    call print_hex
    mov esi, step3_tail
    call print

    ; --- step 4: a row of text in the VGA's text memory; step 5: a DMA write over it ---
.vga:
    mov esi, vga_row                ; 32 characters, white on blue, on the screen's first row
    mov edi, VGA_TEXT
    mov ecx, 32
    mov ah, 0x1f
.row:
    lodsb
    stosw
    loop .row
    mov al, 4
    call check_row
    mov eax, EDU_BUF
    mov ebx, VGA_TEXT
    mov ecx, 64
    mov edx, 3
    call edu_dma
    mov al, 5
    call check_row
    mov esi, step4_text
    call print

    ; --- step 6: a DMA read of the BIOS into edu's buffer ---
    mov eax, BIOS
    mov ebx, EDU_BUF
    mov ecx, 64
    mov edx, 1
    call edu_dma
    mov eax, EDU_BUF                ; the buffer back into RAM, 0x200 on
    mov ebx, BUF + 0x200
    mov ecx, 64
    mov edx, 3
    call edu_dma
    mov esi, BUF
    mov edi, BUF + 0x200
    mov ecx, 16
    repe cmpsd
    check e, 6, bios_read
    mov esi, step5_text
    call print

    mov esi, pass_text
    call print
    mov al, 0x10
    out 0xf4, al
    cli
    hlt

; Does the screen's first row hold vga_row, white on blue? Fails with step al if not
; (step 4: the CPU's own write did not stick; step 5: a DMA changed it).
check_row:
    mov esi, vga_row
    mov edi, VGA_TEXT
    mov ecx, 32
    mov bl, al
.next:
    lodsb
    mov ah, 0x1f
    cmp ax, [edi]
    jne .changed
    add edi, 2
    loop .next
    ret
.changed:
    mov al, bl
    mov esi, no_vga
    cmp al, 4
    je fail
    mov esi, vga_written
    jmp fail

; One byte in al to COM1, once its transmit holding register is empty (LSR bit 5).
putc:
    push edx
    push eax
    mov dx, COM1 + 5
.busy:
    in al, dx
    test al, 0x20
    jz .busy
    pop eax
    mov dx, COM1
    out dx, al
    pop edx
    ret

print:
    lodsb
    test al, al
    jz .done
    call putc
    jmp print
.done:
    ret

newline:
    mov al, 10
    jmp putc

; eax as 0x%08x
print_hex:
    push ecx
    push ebx
    mov ebx, eax
    mov al, '0'
    call putc
    mov al, 'x'
    call putc
    mov ecx, 8
.digit:
    rol ebx, 4
    mov al, bl
    and al, 0xf
    add al, '0'
    cmp al, '9'
    jbe .out
    add al, 'a' - '9' - 1
.out:
    call putc
    loop .digit
    pop ebx
    pop ecx
    ret

; al = the failing step, esi = why
fail:
    mov bl, al
    push esi
    mov esi, fail_text
    call print
    mov al, bl
    add al, '0'
    call putc
    mov al, ':'
    call putc
    mov al, ' '
    call putc
    pop esi
    call print
    call newline
    mov al, bl
    out 0xf4, al
    cli
    hlt

banner:      db 'FENCE TEST: edu DMA against the VMM fence', 10, 0
found_text:  db 'edu found, BAR0 at ', 0
ram_text:    db ', RAM ends at ', 0
step2_text:  db 'DMA into RAM: 64 bytes arrived at 0x00600100', 10, 0
step3_skip:  db 'DMA beyond RAM: skipped (RAM fills all edu', 39, 's 28-bit DMA reach)', 10, 0
step3_text:  db 'DMA write beyond RAM to ', 0
step3_tail:  db ' sent (the VMM fence', 39, 's log shows it)', 10, 0
step4_text:  db 'DMA write to VGA memory at 0x000b8000: refused, nothing written', 10, 0
step5_text:  db 'DMA read of the BIOS at 0x000f0000: refused, nothing read', 10, 0
pass_text:   db 'FENCE TEST PASS', 10, 0
fail_text:   db 'FENCE TEST FAIL at step ', 0
no_meminfo:  db 'no memory information from the boot loader', 0
no_edu:      db 'no edu device (turn on edu in the machine settings, or -device edu)', 0
dma_lost:    db 'the data did not arrive', 0
no_vga:      db 'VGA text memory does not keep what the CPU writes (no VGA BIOS set up text mode?)', 0
vga_written: db 'the DMA wrote into VGA memory', 0
bios_read:   db 'the DMA read the BIOS into the buffer', 0
vga_row:     db ' VMM fence test: this row stays '
align 4
mbinfo:  dd 0
ram_top: dd 0
edu_routines
load_end:
bss_end:
