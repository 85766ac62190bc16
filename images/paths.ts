import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where `npm run images` publishes the guests and manifest.json: public/images, served by the page. */
export const PUBLISH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'public', 'images');
