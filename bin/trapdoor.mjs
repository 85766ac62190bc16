#!/usr/bin/env node
// Entry point of `npx trapdoor`: loads the TypeScript CLI through tsx's loader, so the
// checkout needs no build step. The CLI itself is src/cli/main.ts.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
