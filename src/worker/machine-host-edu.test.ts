/**
 * The page's machine options for issue 23, through the worker's protocol as the page sends
 * them: `edu` adds QEMU's edu device on its direct path, `iommu: false` leaves the guest's
 * VT-d unit out. The Multiboot program testdata/fence-test.asm (the one e2e/iommu.spec.ts
 * drops onto the page) makes edu DMA into RAM and outside it; the machine view's IOMMU part
 * carries the VMM fence's refusals.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MachineHost } from './machine-host.ts';
import type { FromWorker, IommuView, MediumFile } from './protocol.ts';
import { assembleFile, nasmAvailable } from '../emulator/cpu/testing/nasm.ts';
import { PUBLISH_DIR } from '../../images/paths.ts';

const BIOS = path.join(PUBLISH_DIR, 'firmware', 'bios.bin');
const VGA_BIOS = path.join(PUBLISH_DIR, 'firmware', 'vgabios-stdvga.bin');

const medium = (name: string, b: Uint8Array): MediumFile => ({ name, bytes: b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer });

async function boot(options: { edu?: boolean; iommu?: boolean }): Promise<{ serial: string; view: IommuView; stopped: string; functions: string[] }> {
  const messages: FromWorker[] = [];
  const host = new MachineHost((m) => messages.push(m));
  const until = async (what: string, test: (m: FromWorker) => boolean, ms = 30_000): Promise<FromWorker> => {
    const end = Date.now() + ms;
    for (let seen = 0; Date.now() < end; ) {
      for (; seen < messages.length; seen++) if (test(messages[seen])) return messages[seen];
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`no ${what} within ${ms} ms; got ${messages.map((m) => m.type).join(' ')}`);
  };
  const kernel = assembleFile(new URL('../emulator/iommu/testdata/fence-test.asm', import.meta.url));
  host.handle({ type: 'boot', request: { label: 'fence-test.bin', bios: medium('bios.bin', fs.readFileSync(BIOS)), vgaBios: medium('vgabios-stdvga.bin', fs.readFileSync(VGA_BIOS)), kernel: medium('fence-test.bin', kernel), deterministic: true, ...options } });
  // The program ends with cli; hlt (port 0xF4 is not wired in the page): the machine stops.
  const stopped = await until('the guest stopping the machine', (m) => m.type === 'error' && /guest stopped the machine/.test(m.message));
  const serial = messages.flatMap((m) => (m.type === 'serial-out' && m.index === 0 ? [Buffer.from(m.data).toString('latin1')] : [])).join('');
  host.handle({ type: 'describe' });
  const view = await until('machine view', (m) => m.type === 'machine');
  if (view.type !== 'machine' || !view.iommu || stopped.type !== 'error') throw new Error('unreachable');
  host.handle({ type: 'power-off' });
  return { serial, view: view.iommu, stopped: stopped.message, functions: view.functions.map((f) => `${f.bdf} ${f.name}`) };
}

describe.skipIf(!nasmAvailable() || !fs.existsSync(BIOS) || !fs.existsSync(VGA_BIOS))('MachineHost with the edu device (issue 23)', () => {
  it('boots a Multiboot kernel with edu direct-assigned: its DMA into RAM arrives, the fence refuses the rest', { timeout: 60_000 }, async () => {
    const { serial, view, stopped, functions } = await boot({ edu: true });
    expect(functions).toContain('00:04.0 edu');
    expect(serial).toContain('DMA into RAM: 64 bytes arrived');
    expect(serial).toContain('FENCE TEST PASS');
    expect(stopped).toContain('halted with interrupts disabled');
    expect(view.fence.faults.map((f) => [f.device, f.addr, f.write, f.reason])).toEqual([
      ['edu', 0x08000000, true, 'beyond guest RAM'],
      ['edu', 0xb8000, true, 'legacy VGA/ROM hole'],
      ['edu', 0xf0000, false, 'legacy VGA/ROM hole'],
    ]);
    expect(view.vtd).not.toBeNull();
    expect(view.vtd!.faults).toEqual([]);
  });

  it('leaves edu out unless asked, and the VT-d unit out with iommu: false', { timeout: 60_000 }, async () => {
    const { serial, view, functions } = await boot({ iommu: false });
    expect(functions.some((f) => f.endsWith(' edu'))).toBe(false);
    expect(serial).toContain('FENCE TEST FAIL at step 1: no edu device');
    expect(view.vtd).toBeNull();
    expect(view.fence.counters).toEqual({ allowed: 0, refused: 0 });
  });
});
