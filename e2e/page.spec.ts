import { test, expect } from '@playwright/test';
import * as fs from 'node:fs';

const manifestPath = 'public/images/manifest.json';

test('the page is cross-origin isolated so SharedArrayBuffer works', async ({ page }) => {
  await page.goto('/');
  expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
  expect(await page.evaluate(() => typeof SharedArrayBuffer)).toBe('function');
  await expect(page.getByTestId('isolation')).toHaveText('cross-origin isolated');
});

test('the page lists every image of the manifest', async ({ page }) => {
  expect(fs.existsSync(manifestPath), `${manifestPath} is missing: run 'npm run images'`).toBe(true);
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as { images: { name: string; title: string }[] };
  expect(manifest.images.length).toBeGreaterThanOrEqual(5);
  await page.goto('/');
  const list = page.getByTestId('image-list');
  await expect(list).toBeVisible();
  for (const image of manifest.images) {
    await expect(page.getByTestId(`image-${image.name}`)).toContainText(image.title);
  }
  // The default guest is chosen when the page opens.
  await expect(page.getByTestId('image-tiny-linux').getByRole('radio')).toBeChecked();
});
