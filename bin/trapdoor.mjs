#!/usr/bin/env node
// Entry point of `npx trapdoor`: runs the TypeScript CLI (src/cli/main.ts) from an esbuild
// bundle, built on the first run and reused while its sources are unchanged (see
// bundle.mjs for why a bundle and how staleness is ruled out), so the checkout needs no
// build step.
import { bundle } from './bundle.mjs';

const { main } = await import(await bundle('src/cli/main.ts'));
const code = await main(process.argv.slice(2));
// Exit even if stdin or a timer would keep the event loop alive; stdout is flushed first.
process.stdout.write('', () => process.exit(code));
