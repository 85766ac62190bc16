// The bundle cache (bundle.mjs): reused while its sources are unchanged, rebuilt the
// moment one of them changes, whatever its mtime says.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { bundle } from './bundle.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dirRel = `.build/bundle-test-${process.pid}`;
const dir = path.join(ROOT, dirRel);
/** Entry names unique to this run: bundles and records are named after their entry. */
const tag = `bundletest${process.pid}`;

/** Write a file and give it an mtime well in the past, so the build's "changed during the build" guard does not refuse to record it. */
function put(rel: string, text: string, mtime = new Date(Date.now() - 60_000)): void {
  fs.writeFileSync(path.join(dir, rel), text);
  fs.utimesSync(path.join(dir, rel), mtime, mtime);
}

const load = async (url: string) => ((await import(url)) as { value: number }).value;

describe('bundle', () => {
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    for (const f of fs.readdirSync(path.join(ROOT, '.build'))) if (f.startsWith(tag)) fs.rmSync(path.join(ROOT, '.build', f), { force: true });
  });

  it('reuses an unchanged bundle and rebuilds when an imported file changes, even with its old mtime', async () => {
    fs.mkdirSync(dir, { recursive: true });
    const old = new Date(Date.now() - 60_000);
    put('dep.ts', 'export const n: number = 1;\n', old);
    put(`${tag}entry.ts`, "import { n } from './dep.ts';\nexport const value = n + 1;\n", old);
    const first = await bundle(`${dirRel}/${tag}entry.ts`);
    expect(await load(first)).toBe(2);
    expect(await bundle(`${dirRel}/${tag}entry.ts`)).toBe(first);
    // Same size, same mtime, different bytes: only a content hash sees it.
    put('dep.ts', 'export const n: number = 5;\n', old);
    const second = await bundle(`${dirRel}/${tag}entry.ts`);
    expect(second).not.toBe(first);
    expect(await load(second)).toBe(6);
    expect(await bundle(`${dirRel}/${tag}entry.ts`)).toBe(second);
  });

  it('records nothing for a file changed during the build, so the next run builds again', async () => {
    fs.mkdirSync(dir, { recursive: true });
    put(`${tag}fresh.ts`, 'export const value = 7;\n', new Date());
    const url = await bundle(`${dirRel}/${tag}fresh.ts`);
    expect(await load(url)).toBe(7);
    expect(fs.existsSync(path.join(ROOT, '.build', `${tag}fresh.json`))).toBe(false);
  });
});
