/**
 * The live switch under a real guest (issue 22), deterministic mode: tiny-linux boots,
 * takes a DHCP lease and pings the user network's router through the NE2000, and mounts its
 * own ISO from the ATAPI CD-ROM and checksums every file on it, while COM1 (its console),
 * the NE2000 and the IDE controller move between the direct path and the device-model
 * worker every 20 ms of virtual time. The guest must notice nothing: the serial output
 * (kernel log with its timestamps, ping's round-trip times, the checksums) is byte for byte
 * the one of the same run without switching, the NIC drops nothing, no I/O error is logged.
 */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundledMachineModule } from './testing/bundled.ts';
import { PUBLISH_DIR } from '../../../images/paths.ts';
import { INITRD } from '../../../images/tiny-linux/recipe.ts';
import { defaultMac } from '../net/ethernet.ts';
import { bundle } from '../../../bin/bundle.mjs';
import { nodeDeviceModelConnector } from '../../worker/device-model-spawn.ts';
import { createHash } from 'node:crypto';

const read = (f: string) => new Uint8Array(fs.readFileSync(path.join(PUBLISH_DIR, f)));
const SWITCHED = ['com1', 'ne2k', 'ide'];
const PERIOD_NS = 20e6;
const COMMAND = 'udhcpc -i eth0 -q && ping -c 4 10.0.2.2; mkdir -p /mnt && mount -t iso9660 -o ro /dev/sr0 /mnt && sha256sum /mnt/*/*; dmesg | grep -ci error; echo END-$((6*7))\n';

async function run(switching: boolean) {
  const { createMachine } = await bundledMachineModule();
  const { MemoryBlockDevice } = await import('../devices/block-device.ts');
  const deviceModel = nodeDeviceModelConnector(await bundle('src/worker/device-model-node.ts'));
  let serial = '';
  const m = createMachine(
    {
      memoryMiB: 128, bios: read('firmware/bios.bin'), vgaBios: read('firmware/vgabios-stdvga.bin'), deterministic: true,
      kernel: read('tiny-linux/bzImage'), initrd: read(`tiny-linux/${INITRD}`), append: 'console=ttyS0', boot: 'c',
      cdrom: new MemoryBlockDevice(read('tiny-linux-iso/tiny-linux.iso'), true),
      network: { netdevs: [{ kind: 'user', id: 'user.0', restrict: true, hostfwd: [] }], nics: [{ model: 'ne2k_pci', mac: defaultMac(0), netdev: 'user.0' }] },
    },
    { serial: (i, b) => { if (i === 0) serial += String.fromCharCode(b); } },
    { deviceModel },
  );
  let emulated = false;
  let next = PERIOD_NS;
  let switches = 0;
  const turn = (instructions: number) => {
    m.run(instructions);
    if (switching && m.bus.clock.now() >= next) {
      emulated = !emulated;
      // Applied by the next run() before its first instruction: an instruction boundary.
      for (const name of SWITCHED) m.paths.request(name, emulated ? 'emulated' : 'direct');
      switches++;
      next += PERIOD_NS;
    }
  };
  const runUntil = (done: () => boolean, virtualSeconds: number) => {
    const limit = m.bus.clock.now() + virtualSeconds * 1e9;
    while (!done() && m.bus.clock.now() < limit && !m.stopped && m.paths.failure === null) turn(200_000);
  };
  runUntil(() => serial.includes('trapdoor:/# '), 120);
  let pending = Array.from(COMMAND, (ch) => ch.charCodeAt(0));
  const limit = m.bus.clock.now() + 120e9;
  while (!/END-42\r?\n/.test(serial) && m.bus.clock.now() < limit && m.paths.failure === null) {
    if (pending.length) pending = pending.slice(m.serialInput(pending));
    turn(200_000);
  }
  const stats = Object.fromEntries(m.bus.stats.snapshot().devices.filter((d) => SWITCHED.includes(d.name)).map((d) => [d.name, d]));
  const failure = m.paths.failure;
  const nic = m.network.nics[0].nic;
  m.paths.close();
  return { serial, switches, stats, failure, drops: nic.counters };
}

describe.skipIf(!fs.existsSync(path.join(PUBLISH_DIR, 'tiny-linux', 'bzImage')))('tiny-linux with COM1 and the NE2000 switching paths', () => {
  it('gives the same serial output, byte for byte, switched every 20 ms of virtual time as never switched', { timeout: 900_000 }, async () => {
    const plain = await run(false);
    const switched = await run(true);
    expect(plain.serial).toMatch(/4 packets transmitted, 4 packets received/);
    expect(plain.serial).toContain('END-42');
    // The CD's files read intact: the kernel on it is the one the image was built with.
    const kernelSum = createHash('sha256').update(fs.readFileSync(path.join(PUBLISH_DIR, 'tiny-linux', 'bzImage'))).digest('hex');
    expect(plain.serial).toContain(`${kernelSum}  /mnt/boot/bzImage`);
    expect(plain.serial).toMatch(/\n0\r?\nEND-42/);
    expect(switched.failure).toBeNull();
    expect(switched.switches).toBeGreaterThan(50);
    expect(switched.serial).toBe(plain.serial);
    for (const name of SWITCHED) {
      expect(plain.stats[name].traps).toBe(0);
      expect(switched.stats[name].traps).toBeGreaterThan(0);
      expect(switched.stats[name].directAccesses).toBeGreaterThan(0);
      // The last switch asked for may still be waiting for the next run().
      expect(switched.stats[name].pathSwitches).toBeGreaterThanOrEqual(switched.switches - 1);
    }
    expect(switched.drops.dropRingFull + switched.drops.dropStopped + switched.drops.dropMalformed).toBe(0);
  });

  it('a device model that throws pauses the machine, which resumes once the device is switched to direct', { timeout: 300_000 }, async () => {
    const { createMachine } = await bundledMachineModule();
    const deviceModel = nodeDeviceModelConnector(await bundle('src/worker/device-model-node.ts'));
    let serial = '';
    const m = createMachine(
      {
        memoryMiB: 128, bios: read('firmware/bios.bin'), vgaBios: read('firmware/vgabios-stdvga.bin'), deterministic: true,
        kernel: read('tiny-linux/bzImage'), initrd: read(`tiny-linux/${INITRD}`), append: 'console=ttyS0', boot: 'c',
      },
      { serial: (i, b) => { if (i === 0) serial += String.fromCharCode(b); } },
      { deviceModel },
    );
    m.paths.request('com1', 'emulated');
    const limit = m.bus.clock.now() + 120e9;
    while (!serial.includes('trapdoor:/# ') && m.bus.clock.now() < limit && m.paths.failure === null) m.run(200_000);
    expect(m.paths.pathOf('com1')).toBe('emulated');
    m.paths.sabotage('com1', 'throw');
    m.serialInput(Array.from('echo\n', (c) => c.charCodeAt(0)));
    for (let i = 0; i < 100 && m.paths.failure === null; i++) m.run(200_000);
    expect(m.paths.failure).toMatch(/^the device model of com1 threw: com1: sabotaged for a test on a port (read|write) .* at offset 0x[0-7]; the machine is paused \(switch com1 to direct to resume\)$/);
    const at = m.cpu.instructionCount;
    expect(m.run(200_000)).toBe(0);
    expect(m.cpu.instructionCount).toBe(at);
    m.paths.request('com1', 'direct');
    expect(m.run(200_000)).toBeGreaterThan(0);
    expect(m.paths.failure).toBeNull();
    expect(m.paths.pathOf('com1')).toBe('direct');
    m.paths.close();
  });
});
