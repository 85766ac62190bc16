/**
 * testdata/vtd-test.asm under the CLI, as a guest program sees the unit: a Multiboot
 * kernel that programs the VT-d unit and the edu device itself and says how it went
 * through --debug-exit (0x10: passed, process status 33; otherwise the failing step).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assembleFile, nasmAvailable } from '../cpu/testing/nasm.ts';
import { startTrapdoor } from '../../cli/testing/process.ts';
import { PUBLISH_DIR } from '../../../images/paths.ts';

const BIOS = path.join(PUBLISH_DIR, 'firmware', 'bios.bin');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'trapdoor-vtd-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function files(): { kernel: string; disk: string } {
  const kernel = path.join(tmp, 'vtd-test.bin');
  const disk = path.join(tmp, 'disk.img');
  if (!fs.existsSync(kernel)) {
    fs.writeFileSync(kernel, assembleFile(new URL('./testdata/vtd-test.asm', import.meta.url)));
    fs.writeFileSync(disk, new Uint8Array(64 * 1024));
  }
  return { kernel, disk };
}

const run = async (extra: string[]) => {
  const { kernel, disk } = files();
  const stats = path.join(tmp, `stats-${extra.join('_').replace(/[^a-z0-9]/gi, '')}.json`);
  const p = startTrapdoor(['--kernel', kernel, '--hda', disk, '-device', 'edu', '-nic', 'none', '--serial', 'none', '--debugcon', 'stdio', '--debug-exit', '--deterministic', '--timeout', '100', '--stats', stats, ...extra]);
  const code = await p.exit;
  return { code, out: p.output(), stats: JSON.parse(fs.readFileSync(stats, 'utf8')) as { iommu: { vtd: { counters: Record<string, number> } | null } } };
};

describe.skipIf(!nasmAvailable() || !fs.existsSync(BIOS))('the VT-d test program (testdata/vtd-test.asm)', () => {
  it('passes with -machine iommu=on: mapped DMA arrives, the unmapped page faults with the right record and MSI, collapse, overflow and clearing', { timeout: 120_000 }, async () => {
    const { code, out, stats } = await run(['-machine', 'iommu=on']);
    expect(out).toContain('VT-D TEST PASS');
    expect(code).toBe(33);
    const c = stats.iommu.vtd!.counters;
    // edu's recorded fault, its collapsed repeat, seven IDE records, the overflow, the fault after clearing.
    expect(c.faultsRecorded).toBe(9);
    expect(c.faultsCollapsed).toBe(1);
    expect(c.faultsDropped).toBe(1);
    expect(c.faultEvents).toBe(2);
  });

  it('-device intel-iommu is the same unit', { timeout: 120_000 }, async () => {
    const { code } = await run(['-device', 'intel-iommu']);
    expect(code).toBe(33);
  });

  it('fails at its first step without the unit (-machine iommu=off)', { timeout: 120_000 }, async () => {
    const { code, out, stats } = await run(['-machine', 'iommu=off']);
    expect(out).toContain('VT-D TEST FAIL at step A');
    expect(code).toBe((1 << 1) | 1);
    expect(stats.iommu.vtd).toBeNull();
  });
});
