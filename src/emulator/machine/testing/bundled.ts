/**
 * Full-boot tests run the machine from the same esbuild bundle the CLI uses (bin/bundle.mjs):
 * under vitest's per-module transform the interpreter runs at about half speed, which turns
 * a one-minute Linux boot into several. The code under test is the same source.
 */
import { bundle } from '../../../../bin/bundle.mjs';

type MachineModule = typeof import('../machine.ts');

let loaded: Promise<MachineModule> | undefined;

/** The machine module (createMachine and friends), bundled. */
export function bundledMachineModule(): Promise<MachineModule> {
  loaded ??= bundle('src/emulator/machine/machine.ts').then((url) => import(url) as Promise<MachineModule>);
  return loaded;
}
