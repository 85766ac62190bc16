import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SstRunner } from './sst.ts';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../shared/testdata/sst-286');

describe('SingleStepTests 80286 (real mode), run on the i686 core', () => {
  it('finds the vectors beside the checkout', () => {
    expect(fs.existsSync(DIR), `${DIR} is missing (../shared/testdata/sst-286)`).toBe(true);
  });

  it('passes at least 99.9% of every form, each i686 difference checked, not skipped', { timeout: 120_000 }, () => {
    const runner = new SstRunner(DIR);
    const forms = runner.forms();
    expect(forms.length).toBe(325);
    let passed = 0;
    let failed = 0;
    const failing: string[] = [];
    for (const form of forms) {
      const r = runner.runForm(form);
      passed += r.passed;
      failed += r.failed;
      if (r.failed) failing.push(`${form}: ${r.example}`);
    }
    expect(passed + failed).toBe(65000);
    expect(passed / (passed + failed), failing.join('\n')).toBeGreaterThanOrEqual(0.999);
  });
});
