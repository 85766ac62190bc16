/**
 * testdata/fence-test.asm under the CLI: a Multiboot kernel that makes a direct-assigned
 * edu DMA into RAM (the data arrives), beyond RAM, into the VGA's text memory and from the
 * BIOS; the VMM's fence refuses the last three, which land in the fence's own log and on
 * edu's DMA fault counter, not in the guest's VT-d records. The same program runs in the
 * page (e2e/iommu.spec.ts). On the emulated path the fence does not apply (the device
 * model's DMA is the VMM's own access), so the write into VGA memory lands and the
 * program says so: the checks it makes can fail.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assembleFile, nasmAvailable } from '../cpu/testing/nasm.ts';
import { startTrapdoor } from '../../cli/testing/process.ts';
import { PUBLISH_DIR } from '../../../images/paths.ts';

const BIOS = path.join(PUBLISH_DIR, 'firmware', 'bios.bin');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'trapdoor-fence-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function kernel(): string {
  const file = path.join(tmp, 'fence-test.bin');
  if (!fs.existsSync(file)) fs.writeFileSync(file, assembleFile(new URL('./testdata/fence-test.asm', import.meta.url)));
  return file;
}

interface Stats {
  iommu: {
    vtd: { translation: boolean; records: unknown[]; counters: Record<string, number> } | null;
    vmmFence: { counters: { allowed: number; refused: number }; faults: { device: string; addr: number; write: boolean; reason: string }[] };
  };
  devices: { name: string; dmaFaults: number; dmaBytesWritten: number }[];
}

const run = async (extra: string[]) => {
  const stats = path.join(tmp, `stats-${extra.join('_').replace(/[^a-z0-9]/gi, '')}.json`);
  const p = startTrapdoor(['--kernel', kernel(), '-device', 'edu', '-nic', 'none', '--debug-exit', '--deterministic', '--timeout', '60', '--stats', stats, ...extra]);
  const code = await p.exit;
  return { code, out: p.output(), stats: JSON.parse(fs.readFileSync(stats, 'utf8')) as Stats };
};

describe.skipIf(!nasmAvailable() || !fs.existsSync(BIOS))('the VMM fence test program (testdata/fence-test.asm)', () => {
  for (const iommu of ['on', 'off']) {
    it(`passes with edu direct-assigned (-machine iommu=${iommu}): RAM reached, beyond RAM, VGA memory and the BIOS refused`, { timeout: 60_000 }, async () => {
      const { code, out, stats } = await run(['-machine', `iommu=${iommu}`]);
      expect(out).toContain('DMA into RAM: 64 bytes arrived at 0x00600100');
      expect(out).toContain('DMA write beyond RAM to 0x08000000 sent');
      expect(out).toContain('FENCE TEST PASS');
      expect(code).toBe(33);
      const fence = stats.iommu.vmmFence;
      expect(fence.faults).toEqual([
        { atNs: expect.any(Number), device: 'edu', addr: 0x08000000, write: true, reason: 'beyond guest RAM' },
        { atNs: expect.any(Number), device: 'edu', addr: 0xb8000, write: true, reason: 'legacy VGA/ROM hole' },
        { atNs: expect.any(Number), device: 'edu', addr: 0xf0000, write: false, reason: 'legacy VGA/ROM hole' },
      ]);
      // The three transfers inside RAM (in, out, and the buffer copied back) passed the fence.
      expect(fence.counters).toEqual({ allowed: 3, refused: 3 });
      const edu = stats.devices.find((d) => d.name === 'edu')!;
      expect(edu.dmaFaults).toBe(3);
      // The guest's own unit (translation off) recorded nothing: the fence's log is the host's.
      if (iommu === 'on') {
        expect(stats.iommu.vtd!.translation).toBe(false);
        expect(stats.iommu.vtd!.records).toEqual([]);
      } else {
        expect(stats.iommu.vtd).toBeNull();
      }
    });
  }

  it('fails at step 5 with edu on the emulated path, where no fence stands in the way', { timeout: 60_000 }, async () => {
    const { code, out, stats } = await run(['--device-path', 'edu=emulated']);
    expect(out).toContain('FENCE TEST FAIL at step 5: the DMA wrote into VGA memory');
    expect(code).toBe((5 << 1) | 1);
    expect(stats.iommu.vmmFence.counters.refused).toBe(0);
  });
});
