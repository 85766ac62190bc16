// Node entry points (the CLI, `npm run bench`, `npm run sst`) run from one esbuild bundle
// of their TypeScript sources rather than through a per-module loader. The interpreter's
// hot loop reads many module-level constants (register indices, flag bits); inside one
// bundle they are plain top-level `const`s V8 can fold, through separate ES modules they
// are namespace-object loads: measured 28 vs 16 MIPS on `npm run bench`'s CPU workload.
//
// The bundle goes to <repo>/.build/, one level below the root like src/ and images/, so
// paths modules compute from import.meta.url (images/paths.ts) still point into the repo.
//
// A bundle is built once and reused while its sources are unchanged: bundling the CLI
// took about 0.8 s of every `npx trapdoor`. Beside each bundle, <name>.json records the
// build's options and the SHA-256 of every file esbuild read (its metafile inputs, plus
// the package and TypeScript configuration that steer resolution); a run reuses the
// bundle only when every one of those files still has its recorded hash, so a stale
// bundle never runs. A file changed while its bundle was being built leaves no record
// (the next run builds again). Bundles are named by their own hash, so a run importing
// one never reads a file another run is writing.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, version as esbuildVersion } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Files that steer how esbuild resolves and compiles, whether or not it lists them as inputs. */
const CONFIG_FILES = ['package.json', 'tsconfig.json', 'bin/bundle.mjs'];

const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');

/** SHA-256 of a repo-relative file, or null when it cannot be read. */
function hashOf(rel) {
  try {
    return sha256(fs.readFileSync(path.join(ROOT, rel)));
  } catch {
    return null;
  }
}

/** What a record must match besides its inputs: a change of options or esbuild rebuilds. */
function optionsKey(entry) {
  return JSON.stringify({ entry, esbuild: esbuildVersion, node: process.versions.modules, format: 1 });
}

/** The recorded bundle's path when it exists and every recorded input is unchanged, else null. */
function reusable(recordPath, entry, outDir) {
  let record;
  try {
    record = JSON.parse(fs.readFileSync(recordPath, 'utf8'));
  } catch {
    return null;
  }
  if (record?.key !== optionsKey(entry) || typeof record.bundle !== 'string' || typeof record.inputs !== 'object') return null;
  const out = path.join(outDir, path.basename(record.bundle));
  if (!fs.existsSync(out)) return null;
  for (const [rel, hash] of Object.entries(record.inputs)) if (hashOf(rel) !== hash) return null;
  return out;
}

/** Bundle `entry` (relative to the repo root), or reuse its unchanged bundle, and return the file URL to import. */
export async function bundle(entry) {
  const outDir = path.join(ROOT, '.build');
  fs.mkdirSync(outDir, { recursive: true });
  const name = path.basename(entry).replace(/\.ts$/, '');
  const recordPath = path.join(outDir, `${name}.json`);
  if (process.env.TRAPDOOR_REBUILD !== '1') {
    const cached = reusable(recordPath, entry, outDir);
    if (cached !== null) return pathToFileURL(cached).href;
  }
  // Hash the configuration before the build and every input after it: a file whose hash
  // after the build differs from the one it had before (or whose mtime is from during the
  // build) may not be what was bundled, and then no record is written.
  const configBefore = Object.fromEntries(CONFIG_FILES.map((f) => [f, hashOf(f)]));
  const started = Date.now();
  const result = await build({
    entryPoints: [path.join(ROOT, entry)],
    write: false,
    outfile: path.join(outDir, `${name}.mjs`),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: 'inline',
    metafile: true,
    logLevel: 'error',
  });
  const code = result.outputFiles[0].contents;
  const out = path.join(outDir, `${name}-${sha256(code).slice(0, 16)}.mjs`);
  // Write to a private name and rename: two commands started together never read half a file.
  const tmp = path.join(outDir, `${name}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, code);
  fs.renameSync(tmp, out);
  const inputs = { ...configBefore };
  let settled = Object.values(configBefore).every((h) => h !== null);
  for (const input of Object.keys(result.metafile.inputs)) {
    const rel = path.relative(ROOT, path.resolve(ROOT, input));
    inputs[rel] = hashOf(rel);
    // Stat after hashing: a change after the build shows in the mtime even if it came
    // between the two.
    try {
      if (fs.statSync(path.join(ROOT, rel)).mtimeMs >= started - 1000) settled = false;
    } catch {
      settled = false;
    }
  }
  for (const f of CONFIG_FILES) if (hashOf(f) !== configBefore[f]) settled = false;
  const recordTmp = `${recordPath}.${process.pid}.tmp`;
  if (settled) {
    fs.writeFileSync(recordTmp, JSON.stringify({ key: optionsKey(entry), bundle: path.basename(out), inputs }, null, 1));
    fs.renameSync(recordTmp, recordPath);
  } else {
    fs.rmSync(recordPath, { force: true });
  }
  prune(outDir, name, out);
  return pathToFileURL(out).href;
}

/** Remove this entry's older bundles (left a minute, in case another run is still importing one). */
function prune(outDir, name, keep) {
  const mine = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(-[0-9a-f]{16})?\\.mjs$`);
  for (const f of fs.readdirSync(outDir)) {
    const full = path.join(outDir, f);
    if (full === keep || !mine.test(f)) continue;
    try {
      if (Date.now() - fs.statSync(full).mtimeMs > 60_000) fs.rmSync(full, { force: true });
    } catch {
      // already gone
    }
  }
}
