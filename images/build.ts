/**
 * `npm run images [-- NAME...]`: build (or take from the cache) every guest image and
 * publish it into public/images with manifest.json.
 *
 * Each recipe's output lives in ~/.cache/trapdoor/images/<name>-<hash>; the hash covers
 * the recipe's inputs, so editing a recipe or a new Debian package version builds anew,
 * and a warm cache makes this a matter of seconds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CACHE_ROOT, copy, hashInputs, log, sha256File } from './lib.ts';
import type { ImageEntry, ImageManifest } from './manifest.ts';
import { MANIFEST_NAME } from './manifest.ts';
import { PUBLISH_DIR } from './paths.ts';
import type { Recipe, RecipeContext } from './recipe.ts';
import { firmware } from './firmware.ts';
import { tinyLinux } from './tiny-linux/recipe.ts';
import { tinyLinuxIso } from './tiny-linux-iso.ts';
import { debian686 } from './debian-686.ts';
import { memtest, memtestFloppy } from './memtest.ts';
import { ipxe } from './ipxe.ts';

export const RECIPES: readonly Recipe[] = [firmware, tinyLinux, tinyLinuxIso, debian686, memtest, memtestFloppy, ipxe];
const COMPLETE = '.complete';

function byName(name: string): Recipe {
  const r = RECIPES.find((x) => x.name === name);
  if (!r) throw new Error(`no recipe named '${name}'; recipes: ${RECIPES.map((x) => x.name).join(', ')}`);
  return r;
}

/** The recipes named plus everything they depend on, dependencies first. */
function withDependencies(names: string[]): Recipe[] {
  const order: Recipe[] = [];
  const visit = (r: Recipe) => {
    if (order.includes(r)) return;
    r.dependsOn.forEach((d) => visit(byName(d)));
    order.push(r);
  };
  names.forEach((n) => visit(byName(n)));
  return order;
}

async function main(argv: string[]): Promise<number> {
  const names = argv.filter((a) => !a.startsWith('-'));
  const wanted = withDependencies(names.length > 0 ? names : RECIPES.map((r) => r.name));
  fs.mkdirSync(CACHE_ROOT, { recursive: true });
  const hashes = new Map<string, string>();
  const ctx: RecipeContext = {
    outputOf: (name) => path.join(CACHE_ROOT, `${name}-${hashes.get(name)}`),
    hashOf: (name) => hashes.get(name) ?? '',
    workDir: (name) => {
      const dir = path.join(CACHE_ROOT, '..', 'work', name);
      fs.mkdirSync(dir, { recursive: true });
      return dir;
    },
  };

  for (const recipe of wanted) {
    const started = Date.now();
    recipe.prepare();
    const hash = hashInputs(recipe.inputs(ctx));
    hashes.set(recipe.name, hash);
    const dir = ctx.outputOf(recipe.name);
    if (fs.existsSync(path.join(dir, COMPLETE))) {
      log(`${recipe.name}: cached (${path.basename(dir)})`);
      continue;
    }
    log(`${recipe.name}: building into ${path.basename(dir)}`);
    const tmp = `${dir}.partial`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
    recipe.build(tmp, ctx);
    for (const f of recipe.output().files) {
      if (!fs.existsSync(path.join(tmp, f.path))) throw new Error(`${recipe.name}: the build made no ${f.path}`);
    }
    fs.writeFileSync(path.join(tmp, COMPLETE), new Date().toISOString() + '\n');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
    log(`${recipe.name}: built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }

  // Publish every image whose current build is complete (also ones not asked for this time).
  const images: ImageEntry[] = [];
  fs.mkdirSync(PUBLISH_DIR, { recursive: true });
  for (const recipe of RECIPES) {
    if (!hashes.has(recipe.name)) {
      try {
        if (recipe.dependsOn.every((d) => hashes.has(d))) hashes.set(recipe.name, hashInputs(recipe.inputs(ctx)));
      } catch {
        continue;
      }
    }
    const dir = ctx.outputOf(recipe.name);
    if (!hashes.has(recipe.name) || !fs.existsSync(path.join(dir, COMPLETE))) continue;
    const out = recipe.output();
    const target = path.join(PUBLISH_DIR, recipe.name);
    fs.rmSync(target, { recursive: true, force: true });
    const files = out.files.map((f) => {
      const src = path.join(dir, f.path);
      copy(src, path.join(target, f.path));
      return { role: f.role, path: `${recipe.name}/${f.path}`, size: fs.statSync(src).size, sha256: sha256File(src) };
    });
    const prefix = (p: string | undefined) => (p === undefined ? undefined : `${recipe.name}/${p}`);
    const boot = { ...out.boot, kernel: prefix(out.boot.kernel), initrd: prefix(out.boot.initrd), cdrom: prefix(out.boot.cdrom), fda: prefix(out.boot.fda), hda: prefix(out.boot.hda), tftp: prefix(out.boot.tftp) };
    for (const k of Object.keys(boot) as (keyof typeof boot)[]) if (boot[k] === undefined) delete boot[k];
    images.push({ name: recipe.name, title: recipe.title, description: recipe.description, files, boot, readyMarker: out.readyMarker, ...(out.markerOn ? { markerOn: out.markerOn } : {}) });
  }
  const manifest: ImageManifest = { version: 1, generated: new Date().toISOString(), images };
  fs.writeFileSync(path.join(PUBLISH_DIR, MANIFEST_NAME), JSON.stringify(manifest, null, 2) + '\n');
  log(`published ${images.map((i) => i.name).join(', ')} into public/images`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`images: ${e.message}\n`);
    process.exit(1);
  },
);
