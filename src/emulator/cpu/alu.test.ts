import { describe, expect, it } from 'vitest';
import { mul32, MUL_HIGH } from './alu.ts';
import { boot, protectedMode, runToExit } from './testing/programs.ts';
import { nasmAvailable } from './testing/nasm.ts';

describe('mul32', () => {
  it('matches 64-bit products for signed and unsigned operands, edge cases included', () => {
    const values = [0, 1, -1, 0x7fffffff, -0x80000000, 0xffff, 0x10000, 12345678, -987654321];
    let seed = 42;
    for (let i = 0; i < 2000; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) | 0;
      values.push(seed);
    }
    for (let i = 0; i < values.length; i++) {
      const a = values[i];
      const b = values[(i * 7 + 3) % values.length];
      for (const signed of [false, true]) {
        const want = signed ? BigInt(a | 0) * BigInt(b | 0) : BigInt(a >>> 0) * BigInt(b >>> 0);
        const lo = mul32(a, b, signed);
        expect([lo, MUL_HIGH[0]]).toEqual([Number(BigInt.asIntN(32, want)), Number(BigInt.asIntN(32, want >> 32n))]);
      }
    }
  });
});

describe.skipIf(!nasmAvailable())('DIV r/m32', () => {
  it('gives the exact quotient and remainder, including quotients just below an integer', () => {
    // (EDX:EAX, divisor) pairs: the first ones have q * d - 1 dividends that a rounded
    // double quotient gets wrong; then random ones with small high halves (the fast path).
    const cases: [bigint, number][] = [];
    for (const [q, d] of [[0xfffffn, 0xffffffff], [0xfffffff0n, 0x1fffff], [0xfffffffdn, 0x1ffff7], [0x7fffffffn, 0x3fffff], [20n, 999_999_000]] as [bigint, number][]) {
      cases.push([q * BigInt(d) - 1n, d], [q * BigInt(d), d], [q * BigInt(d) + BigInt(d) - 1n, d]);
    }
    let seed = 7;
    const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) | 0) >>> 0;
    while (cases.length < 200) {
      const d = (rnd() | 1) >>> 0;
      const high = BigInt(rnd() % Math.min(d, 0x100000));
      cases.push([(high << 32n) | BigInt(rnd()), d]);
    }
    const table = cases.map(([n, d]) => `dd ${Number(n & 0xffffffffn)}, ${Number(n >> 32n)}, ${d}`).join('\n');
    const { cpu, machine } = boot(protectedMode(`
    mov esi, table
    mov edi, 0x300000
    mov ebx, ${cases.length}
.next:
    mov eax, [esi]
    mov edx, [esi + 4]
    div dword [esi + 8]
    mov [edi], eax
    mov [edi + 4], edx
    add esi, 12
    add edi, 8
    dec ebx
    jnz .next
    mov al, 0
    jmp done`, `table:\n${table}`));
    runToExit(cpu, machine);
    const got = cases.map((_, i) => [machine.read32(0x300000 + i * 8) >>> 0, machine.read32(0x300004 + i * 8) >>> 0]);
    expect(got).toEqual(cases.map(([n, d]) => [Number(n / BigInt(d)), Number(n % BigInt(d))]));
  });
});
