/**
 * The emulated side of a differential test: the records a generator ran through a record
 * loop on the host's CPU (record-loop.ts) are run through the same loop in Trapdoor, in
 * flat protected mode, and the records as the loop left them are returned.
 */
import type { Cpu } from '../cpu.ts';
import { boot, protectedMode, runToExit } from './programs.ts';

/** Guest addresses: the record count, then the records. */
const COUNT = 0x1ffffc;
const RECORDS = 0x200000;
const EXIT_OK = 0x55;

/**
 * Run `records` (each `recordSize` bytes) through the loop `label` defined in `loopSource`.
 * Returns the records afterwards, or null if the machine shut down (a fault with no IDT)
 * or the program did not reach its end. `onBoot` may look at the CPU before it runs.
 */
export function runGuestRecords(label: string, loopSource: string, records: readonly Uint8Array[], recordSize: number, onBoot?: (cpu: Cpu) => void): Uint8Array[] | null {
  const { cpu, machine } = boot(protectedMode(`
    mov ebx, ${RECORDS}
    mov ecx, [${COUNT}]
    call ${label}
    mov al, ${EXIT_OK}
    jmp done
${loopSource}`));
  onBoot?.(cpu);
  machine.write32(COUNT, records.length);
  records.forEach((r, i) => machine.load(RECORDS + i * recordSize, r));
  runToExit(cpu, machine);
  if (machine.shutdownReason || machine.exitValue !== EXIT_OK) return null;
  return records.map((_, i) => machine.ram.slice(RECORDS + i * recordSize, RECORDS + (i + 1) * recordSize));
}
