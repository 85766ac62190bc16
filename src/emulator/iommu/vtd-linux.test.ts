/**
 * tiny-linux (a 6.1 kernel with CONFIG_INTEL_IOMMU=y) on the PC with -machine iommu=on:
 * SeaBIOS links the DMAR, Linux finds the unit, turns translation on, puts the PIIX3's IDE
 * behind it, and reads its ISO through translated bus-master DMA with no fault recorded.
 *
 * Linux 6.1 writes its page tables back with CLFLUSH whatever ECAP.C says (a new domain's
 * coherency is unknown until a device is attached to it), so the guest needs a CPU with
 * CLFLUSH: the test runs once the CPU has it (CPUID.1:EDX bit 19) and says so otherwise.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { boot, runToExit } from '../cpu/testing/programs.ts';
import { nasmAvailable } from '../cpu/testing/nasm.ts';
import { startTrapdoor } from '../../cli/testing/process.ts';
import { PUBLISH_DIR } from '../../../images/paths.ts';

/** CPUID.1:EDX.CLFSH on this emulator's CPU, asked of the CPU itself. */
function cpuHasClflush(): boolean {
  if (!nasmAvailable()) return false;
  const { cpu, machine } = boot(`
bits 16
org 0x7c00
    mov eax, 1
    cpuid
    shr edx, 19
    and dl, 1
    mov al, dl
    out 0xf4, al
    hlt
`);
  runToExit(cpu, machine, 1000);
  return machine.exitValue === 1;
}

const ISO = path.join(PUBLISH_DIR, 'tiny-linux-iso', 'tiny-linux.iso');
const TINY = path.join(PUBLISH_DIR, 'tiny-linux');
const ready = fs.existsSync(ISO) && fs.existsSync(path.join(TINY, 'bzImage'));
const clflush = cpuHasClflush();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'trapdoor-vtd-linux-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe.skipIf(!ready)('tiny-linux with the VT-d unit', () => {
  it.skipIf(!clflush)('finds the DMAR and the unit, groups its devices and reads its ISO through translated DMA with no fault', { timeout: 300_000 }, async () => {
    const stats = path.join(tmp, 'stats.json');
    const p = startTrapdoor([
      '--image', 'tiny-linux-iso', '-machine', 'iommu=on', '-nic', 'none', '--deterministic', '--timeout', '240', '--stats', stats,
      '--until', 'TRAPDOOR GUEST READY',
      '--send', 'dmesg | grep -e DMAR -e Directed; echo GROUPS=$(ls /sys/kernel/iommu_groups | wc -l); echo GROUPS-$((1+1))-END\\n',
      '--until', 'GROUPS-2-END',
      '--send', 'mkdir -p /mnt/cd && mount -t iso9660 -o ro /dev/sr0 /mnt/cd && sha256sum /mnt/cd/boot/bzImage /mnt/cd/boot/initramfs.cpio; echo SUMS-$((2+2))-END\\n',
      '--until', 'SUMS-4-END',
    ]);
    const code = await p.exit;
    const out = p.output();
    expect(code, out.slice(-3000)).toBe(0);
    expect(out).toContain('DMAR: Host address width 39');
    expect(out).toMatch(/DMAR: DRHD base: 0x0*fed90000 flags: 0x1/);
    expect(out).toContain('Intel(R) Virtualization Technology for Directed I/O');
    expect(out).toMatch(/pci 0000:00:01\.1: Adding to iommu group \d+/);
    // /sys/kernel/iommu_groups has the groups (host bridge, PIIX3 functions, VGA).
    expect(Number(/GROUPS=(\d+)\s/.exec(out)?.[1] ?? 0)).toBeGreaterThanOrEqual(3);
    expect(out).toContain(`${sha256(path.join(TINY, 'bzImage'))}  /mnt/cd/boot/bzImage`);
    expect(out).toContain(`${sha256(path.join(TINY, 'initramfs.cpio'))}  /mnt/cd/boot/initramfs.cpio`);
    const s = JSON.parse(fs.readFileSync(stats, 'utf8')) as { iommu: { vtd: { translation: boolean; counters: Record<string, number> } }; devices: { name: string; dmaBytesWritten: number; dmaFaults: number }[] };
    expect(s.iommu.vtd.translation).toBe(true);
    expect(s.iommu.vtd.counters.translations).toBeGreaterThan(100);
    expect(s.iommu.vtd.counters.faults).toBe(0);
    const ide = s.devices.find((d) => d.name === 'ide')!;
    expect(ide.dmaBytesWritten).toBeGreaterThan(1 << 20);
    expect(ide.dmaFaults).toBe(0);
  });
});
