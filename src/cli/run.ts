/**
 * Runs a MachineConfig headless. The PC itself (src/emulator/machine) is being built
 * (issues 3 and 4); until it exists the command line validates everything it was given
 * and says plainly that it cannot run a guest yet.
 */
import type { CliOptions } from './args.ts';
import type { MachineConfig } from '../emulator/machine/config.ts';

export async function runHeadless(config: MachineConfig, _o: CliOptions): Promise<number> {
  const media = [config.kernel && 'kernel', config.initrd && 'initrd', config.cdrom && 'cdrom', config.hda && 'hda', config.fda && 'fda']
    .filter(Boolean).join(', ');
  process.stderr.write(
    `trapdoor: configuration is valid (${config.memoryMiB} MiB, BIOS ${config.bios.length / 1024} KiB` +
      (media ? `, ${media}` : '') + `, boot order ${config.boot}), but the x86 machine is not built yet: nothing can run a guest\n`,
  );
  return 1;
}
