#!/usr/bin/env node
// `node bin/run.mjs src/cli/bench.ts args...`: run a TypeScript entry point from its bundle (see bundle.mjs).
import { bundle } from './bundle.mjs';

const [entry, ...rest] = process.argv.slice(2);
if (!entry) {
  process.stderr.write('usage: node bin/run.mjs ENTRY.ts [args...]\n');
  process.exit(2);
}
process.argv = [process.argv[0], entry, ...rest];
await import(await bundle(entry));
