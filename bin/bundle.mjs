// Node entry points (the CLI, `npm run bench`, `npm run sst`) run from one esbuild bundle
// of their TypeScript sources rather than through a per-module loader. The interpreter's
// hot loop reads many module-level constants (register indices, flag bits); inside one
// bundle they are plain top-level `const`s V8 can fold, through separate ES modules they
// are namespace-object loads: measured 28 vs 16 MIPS on `npm run bench`'s CPU workload.
//
// The bundle goes to <repo>/.build/, one level below the root like src/ and images/, so
// paths modules compute from import.meta.url (images/paths.ts) still point into the repo.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Bundle `entry` (relative to the repo root) and return the file URL to import. */
export async function bundle(entry) {
  const outDir = path.join(ROOT, '.build');
  fs.mkdirSync(outDir, { recursive: true });
  const name = path.basename(entry).replace(/\.ts$/, '');
  const out = path.join(outDir, `${name}.mjs`);
  // Build to a private name and rename: two commands started together never read half a file.
  const tmp = path.join(outDir, `${name}.${process.pid}.tmp.mjs`);
  await build({
    entryPoints: [path.join(ROOT, entry)],
    outfile: tmp,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: 'inline',
    logLevel: 'error',
  });
  fs.renameSync(tmp, out);
  return pathToFileURL(out).href;
}
