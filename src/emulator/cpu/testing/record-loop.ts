/**
 * The loop both sides of a differential test run (the generators in scripts/ on the host's
 * own CPU, the vector tests in Trapdoor): ECX records from EBX on, each handed to the
 * routine its first dword names. The routines are the forms' own (x87-forms.ts,
 * int-forms.ts); each takes its record in EBX and returns with RET, EBX intact.
 */
export function recordLoop(label: string, routines: readonly { label: string; source: string }[], recordSize: number): string {
  const table = routines.map((r) => `    dd ${r.label}`).join('\n');
  return `
${label}:
    test ecx, ecx
    jz .end
    mov eax, [ebx]
    push ecx
    call [${label}_table + eax * 4]
    pop ecx
    add ebx, ${recordSize}
    dec ecx
    jmp ${label}
.end:
    ret
${routines.map((r) => r.source).join('')}
align 4
${label}_table:
${table}
`;
}
