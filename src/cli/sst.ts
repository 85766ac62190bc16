/**
 * `npm run sst -- DIR [FORM...]`: run the SingleStepTests vectors in DIR (every *.json.gz,
 * or the forms named) and end with "N passed, M failed", listing each failing form
 * with one example.
 */
import * as fs from 'node:fs';
import { SstRunner } from '../emulator/cpu/sst.ts';

const [dir, ...only] = process.argv.slice(2);
if (!dir || !fs.existsSync(dir)) {
  process.stderr.write(`sst: usage: npm run sst -- DIR [FORM...]  (DIR: a folder of SingleStepTests *.json.gz)\n`);
  process.exit(2);
}
const runner = new SstRunner(dir);
const forms = only.length ? only : runner.forms();
let passed = 0;
let failed = 0;
let i686 = 0;
const failing: string[] = [];
const started = Date.now();
for (const form of forms) {
  const r = runner.runForm(form);
  passed += r.passed;
  failed += r.failed;
  i686 += r.i686;
  if (r.failed > 0) failing.push(`  ${form}: ${r.failed} failed, e.g. ${r.example}`);
}
if (failing.length) process.stdout.write(`failing forms (${failing.length}):\n${failing.join('\n')}\n`);
process.stdout.write(`${forms.length} forms in ${((Date.now() - started) / 1000).toFixed(1)} s; ${i686} tests checked against i686 behaviour where it differs from the 286 by design\n`);
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exit(failed > 0 && passed / (passed + failed) < 0.999 ? 1 : 0);
