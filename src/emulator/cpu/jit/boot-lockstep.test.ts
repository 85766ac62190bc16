/**
 * The tiny-linux boot (SeaBIOS, the kernel, its initramfs) twice in deterministic mode,
 * interpreted and with translated blocks, side by side: after every million instructions
 * both machines must be in the same CPU state, and they must reach the ready marker
 * with the same serial output, instruction count and RAM. Translation is exact or this
 * fails at the first million where it is not.
 */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundledMachineModule } from '../../machine/testing/bundled.ts';
import { PUBLISH_DIR } from '../../../../images/paths.ts';
import { INITRD } from '../../../../images/tiny-linux/recipe.ts';

const read = (f: string) => new Uint8Array(fs.readFileSync(path.join(PUBLISH_DIR, f)));

describe('translated blocks on a whole boot', () => {
  it('boots tiny-linux in lockstep with the interpreter', { timeout: 600_000 }, async () => {
    expect(fs.existsSync(path.join(PUBLISH_DIR, 'tiny-linux', 'bzImage')), "tiny-linux is missing: run 'npm run images'").toBe(true);
    const { createMachine } = await bundledMachineModule();
    const machines = [false, true].map((blocks) => {
      const out = { serial: '' };
      const m = createMachine(
        {
          memoryMiB: 128, bios: read('firmware/bios.bin'), vgaBios: read('firmware/vgabios-stdvga.bin'), deterministic: true,
          kernel: read('tiny-linux/bzImage'), initrd: read(`tiny-linux/${INITRD}`), append: 'console=tty0 console=ttyS0', boot: 'c',
          blockCache: false,
        },
        { serial: (i, b) => { if (i === 0) out.serial += String.fromCharCode(b); } },
      );
      // Low thresholds translate hundreds of blocks and promote hundreds to regions (the
      // defaults keep only the hottest).
      if (blocks) m.cpu.enableBlockCache(2000, undefined, 1000);
      return { m, out };
    });
    const [interp, translated] = machines;
    let million = 0;
    while (!interp.out.serial.includes('TRAPDOOR GUEST READY') && million < 400 && !interp.m.stopped) {
      interp.m.run(1_000_000);
      translated.m.run(1_000_000);
      million++;
      const a = interp.m.cpu.saveState();
      const b = translated.m.cpu.saveState();
      if (JSON.stringify(a) !== JSON.stringify(b)) expect(b, `CPU state after ${million} M instructions`).toEqual(a);
    }
    expect(interp.out.serial).toContain('TRAPDOOR GUEST READY');
    expect(translated.out.serial).toBe(interp.out.serial);
    expect(translated.m.cpu.instructionCount).toBe(interp.m.cpu.instructionCount);
    expect(Buffer.compare(translated.m.bus.memory.ram, interp.m.bus.memory.ram)).toBe(0);
    const stats = translated.m.cpu.blocks!.stats;
    // Hundreds of regions (each covering the basic blocks its entry reaches in its page).
    expect(stats.translated).toBeGreaterThan(300);
    expect(stats.promoted).toBeGreaterThan(100);
    // Most of the boot ran translated.
    expect(stats.executed / translated.m.cpu.instructionCount).toBeGreaterThan(0.5);
  });
});
