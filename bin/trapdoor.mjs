#!/usr/bin/env node
// Entry point of `npx trapdoor`: loads the TypeScript CLI through tsx's loader, so the
// checkout needs no build step. The CLI itself is src/cli/main.ts.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
const code = await main(process.argv.slice(2));
// Exit even if stdin or a timer would keep the event loop alive; stdout is flushed first.
process.stdout.write('', () => process.exit(code));
