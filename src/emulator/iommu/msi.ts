/**
 * An MSI as the local APIC takes it (SDM vol.3 §10.11): the address names the destination
 * (0xFEE in bits 31:20, destination id 19:12, RH 3, DM 2), the data the vector (7:0),
 * delivery mode (10:8), level (14) and trigger mode (15). The machine hands the decoded
 * message to LocalApic.deliver, the same entry the I/O APIC's messages use.
 */

/** LocalApic.deliver's shape: (vector, delivery mode, level-triggered, destination, logical). */
export type ApicMessageSink = (vector: number, mode: number, level: boolean, dest: number, logical: boolean) => void;

/** Decode and deliver; returns false (nothing sent) for an address outside 0xFEExxxxx. */
export function deliverMsi(address: number, data: number, sink: ApicMessageSink): boolean {
  if ((address >>> 20) !== 0xfee) return false;
  const dest = (address >>> 12) & 0xff;
  const logical = (address & 0x4) !== 0;
  sink(data & 0xff, (data >>> 8) & 7, (data & 0x8000) !== 0, dest, logical);
  return true;
}
