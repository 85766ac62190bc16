/**
 * A recipe builds one guest image from Debian's packages into its cache folder
 * `~/.cache/trapdoor/images/<name>-<hash>`, where the hash covers everything the output
 * depends on (the recipe's own files, the package versions it resolved, the outputs of
 * the recipes it builds on). A folder with a `.complete` stamp is reused as it is.
 */
import type { FileRole, ImageBoot } from './manifest.ts';

export interface RecipeContext {
  /** The finished cache folder of a recipe this one depends on. */
  outputOf(name: string): string;
  /** The input hash of a recipe this one depends on (so a change there rebuilds this). */
  hashOf(name: string): string;
  /** A scratch folder that is kept between builds (e.g. the kernel tree). */
  workDir(name: string): string;
}

export interface RecipeOutput {
  files: { role: FileRole; path: string }[];
  boot: ImageBoot;
  readyMarker: string;
  markerOn?: 'serial' | 'screen';
}

export interface Recipe {
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly dependsOn: readonly string[];
  /** Install the host tools the recipe needs (idempotent). */
  prepare(): void;
  /** Everything the output depends on, as strings to hash. */
  inputs(ctx: RecipeContext): string[];
  /** Build into `out` (an empty folder). */
  build(out: string, ctx: RecipeContext): void;
  /** What the finished folder holds and how to boot it (paths relative to the folder). */
  output(): RecipeOutput;
}
