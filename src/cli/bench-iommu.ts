/**
 * The IOMMU's cost for `npm run bench` (issue 23): tiny-linux in deterministic mode reads
 * its whole ISO from the CD by bus-master IDE DMA (`dd` of /dev/sr0), once with the VT-d
 * unit off and once on (Linux turns translation on, so every DMA page is walked or found in
 * the IOTLB). Host seconds and MB/s of host time; with translation on, the unit's counters
 * (translated requests, IOTLB hits and misses, faults).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PUBLISH_DIR } from '../../images/paths.ts';
import { INITRD } from '../../images/tiny-linux/recipe.ts';
import { createMachine } from '../emulator/machine/machine.ts';
import { MemoryBlockDevice } from '../emulator/devices/block-device.ts';

const read = (f: string) => new Uint8Array(fs.readFileSync(path.join(PUBLISH_DIR, f)));

export interface IsoReadRun {
  iommu: boolean;
  seconds: number;
  mbPerSecond: number;
  /** With the unit on: whether Linux turned translation on, and its counters. */
  translation: boolean;
  counters: { translations: number; iotlbHits: number; iotlbMisses: number; faults: number } | null;
}

export function benchIsoRead(iommu: boolean): IsoReadRun {
  let serial = '';
  const iso = read('tiny-linux-iso/tiny-linux.iso');
  const m = createMachine(
    {
      memoryMiB: 128, bios: read('firmware/bios.bin'), vgaBios: read('firmware/vgabios-stdvga.bin'), deterministic: true,
      kernel: read('tiny-linux/bzImage'), initrd: read(`tiny-linux/${INITRD}`), append: 'console=ttyS0', boot: 'c',
      cdrom: new MemoryBlockDevice(iso, true), iommu,
    },
    { serial: (i, b) => { if (i === 0) serial += String.fromCharCode(b); } },
  );
  const until = (re: RegExp, virtualSeconds: number) => {
    const limit = m.bus.clock.now() + virtualSeconds * 1e9;
    while (!re.test(serial) && m.bus.clock.now() < limit && !m.stopped) m.run(500_000);
    if (!re.test(serial)) throw new Error(`no /${re.source}/ (${m.stopped ?? 'virtual time ran out'})`);
  };
  until(/trapdoor:\/# /, 120);
  let pending = Array.from('dd if=/dev/sr0 of=/dev/null bs=64k; echo DD-$((40+2))\n', (c) => c.charCodeAt(0));
  const t0 = performance.now();
  const limit = m.bus.clock.now() + 120e9;
  while (!/DD-42\r?\n/.test(serial) && m.bus.clock.now() < limit && !m.stopped) {
    if (pending.length) pending = pending.slice(m.serialInput(pending));
    m.run(500_000);
  }
  if (!/DD-42\r?\n/.test(serial)) throw new Error(`dd of the CD did not finish (${m.stopped ?? 'virtual time ran out'})`);
  const seconds = (performance.now() - t0) / 1000;
  const d = m.iommu?.describe();
  return { iommu, seconds, mbPerSecond: iso.length / 1e6 / seconds, translation: d?.translation ?? false, counters: d ? d.counters : null };
}
