; Trapdoor's kernel loader option ROM. SeaBIOS runs it as a boot entry (its PnP header
; carries a bootstrap entry vector); it copies four fw_cfg items into place with DMA,
; each described by an address key, a size key and a data key, then enters the kernel.
;
; Linux (fw_cfg KERNEL_ENTRY = 0): setup code, command line, kernel and initrd, then the
; setup code as the Linux boot protocol asks (Documentation/x86/boot.rst):
; DS=ES=FS=GS=SS = setup segment, CS = +0x20.
;
; Multiboot v1 (KERNEL_ENTRY = the kernel's entry point): the same four items carry the
; boot information block (setup keys), the command line, the kernel image and a module;
; then flat 32-bit protected mode with EAX = 0x2BADB002 and EBX = the information block
; (Multiboot Specification 0.6.96, section 3.2 "Machine state").
;
; linuxboot.ts holds these bytes; a test assembles this file with nasm and compares.
bits 16
org 0

FW_CFG_SEL      equ 0x510
FW_CFG_DATA     equ 0x511
FW_CFG_DMA_HI   equ 0x514
FW_CFG_DMA_LO   equ 0x518
KERNEL_ENTRY    equ 0x10            ; fw_cfg key: multiboot entry point, 0 for Linux
SETUP_ADDR      equ 0x16            ; fw_cfg key: Linux setup / multiboot information block
MULTIBOOT_MAGIC equ 0x2badb002
DESC            equ 0x600           ; scratch DMA descriptor in free low memory
SETUP_SEG       equ 0x1000

rom:
    db 0x55, 0xaa                   ; option ROM signature
    db 1                            ; size in 512-byte blocks
    jmp init                        ; initialisation entry at offset 3
    times 0x1a - ($ - $$) db 0
    dw pnp                          ; offset of the PnP expansion header

pnp:
    db '$PnP'
    db 1                            ; revision
    db 2                            ; length in 16-byte units
    dw 0                            ; next header
    db 0                            ; reserved
    db 0                            ; checksum, patched by the machine
    dd 0                            ; device identifier
    dw manufacturer
    dw product
    db 0, 0, 0                      ; device type code
    db 0x04                         ; device indicators: IPL device
    dw 0                            ; boot connection vector
    dw 0                            ; disconnect vector
    dw boot                         ; bootstrap entry vector
    dw 0                            ; reserved
    dw 0                            ; static resource information

manufacturer: db 'Trapdoor', 0
product:      db 'Linux loader', 0

init:
    retf

; Read the 32-bit little-endian fw_cfg item whose key is in AX; the value lands in EBX.
read32:
    mov dx, FW_CFG_SEL
    out dx, ax
    mov dx, FW_CFG_DATA
    xor ebx, ebx
    mov cx, 4
.byte:
    in al, dx
    movzx eax, al
    shl eax, 24
    shr ebx, 8
    or ebx, eax
    loop .byte
    ret

; Copy one item with DMA: SI = key of its address, DI = key of its size, BP = key of its data.
transfer:
    mov ax, di
    call read32
    test ebx, ebx
    jz .done
    bswap ebx
    mov [DESC + 4], ebx             ; length (big-endian)
    mov ax, si
    call read32
    bswap ebx
    mov dword [DESC + 8], 0         ; address, high half
    mov [DESC + 12], ebx            ; address, low half (big-endian)
    movzx eax, bp
    shl eax, 16
    or eax, 0x0a                    ; select the key, read
    bswap eax
    mov [DESC], eax
    mov dx, FW_CFG_DMA_HI
    xor eax, eax
    out dx, eax
    mov eax, DESC
    bswap eax
    mov dx, FW_CFG_DMA_LO
    out dx, eax                     ; starts the transfer; done when it returns
.done:
    ret

boot:
    cli
    cld
    xor ax, ax
    mov ds, ax
    mov si, 0x16                    ; setup: address, size, data
    mov di, 0x17
    mov bp, 0x18
    call transfer
    mov si, 0x13                    ; command line
    mov di, 0x14
    mov bp, 0x15
    call transfer
    mov si, 0x07                    ; kernel
    mov di, 0x08
    mov bp, 0x11
    call transfer
    mov si, 0x0a                    ; initrd
    mov di, 0x0b
    mov bp, 0x12
    call transfer
    mov ax, KERNEL_ENTRY
    call read32
    test ebx, ebx
    jnz multiboot
    mov ax, SETUP_SEG
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    mov sp, 0xfff0
    jmp SETUP_SEG + 0x20:0

multiboot:
    mov esi, ebx                    ; entry point
    mov ax, SETUP_ADDR
    call read32                     ; EBX = information block, kept for the kernel
    in al, 0x92                     ; fast A20 on, no reset: the kernel may sit at odd MiB
    or al, 0x02
    and al, 0xfe
    out 0x92, al
    xor edi, edi
    mov di, cs
    shl edi, 4                      ; linear base of this ROM (wherever SeaBIOS put it)
    lea eax, [edi + gdt]
    mov word [DESC], gdt_end - gdt - 1
    mov [DESC + 2], eax
    lgdt [DESC]
    add edi, pm32
    mov eax, cr0
    or al, 1                        ; CR0.PE
    mov cr0, eax
    push dword 0x08                 ; flat code selector
    push edi
    o32 retf                        ; into 32-bit code at pm32

bits 32
pm32:
    mov ax, 0x10                    ; flat data selector
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    mov eax, MULTIBOOT_MAGIC
    jmp esi
bits 16

align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff           ; 0x08: code, base 0, 4 GiB, 32-bit
    dq 0x00cf92000000ffff           ; 0x10: data, base 0, 4 GiB
gdt_end:

    times 511 - ($ - $$) db 0
    db 0                            ; checksum byte, patched by the machine
