import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkManifest, MANIFEST_NAME, type ImageManifest } from './manifest.ts';

/** Read and check public/images/manifest.json (or any folder's). Throws an Error in plain words. */
export function readManifest(dir: string): ImageManifest {
  const file = path.join(dir, MANIFEST_NAME);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`no images manifest at ${path.relative(process.cwd(), file) || file}`, { cause: e });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`the images manifest is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  return checkManifest(data);
}
