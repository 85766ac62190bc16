/**
 * Issue 23's VMM fence in the page: with the "edu device" machine setting on, a small
 * Multiboot kernel picked by the user (src/emulator/iommu/testdata/fence-test.asm, built
 * here with nasm as the CLI's test builds it) makes the direct-assigned edu DMA into RAM
 * (the data arrives: the program says so on COM1) and then beyond the top of RAM, into the
 * VGA's text memory and from the BIOS. The VMM's fence refuses those three: the IOMMU
 * panel lists them in the fence's log in words (device, read or write, address, what lies
 * there), edu's card counts three DMA faults, and the guest's own VT-d unit recorded none.
 */
import { test, expect } from '@playwright/test';
import { assembleFile, nasmAvailable } from '../src/emulator/cpu/testing/nasm.ts';

const SOURCE = new URL('../src/emulator/iommu/testdata/fence-test.asm', import.meta.url);

test('a direct-assigned edu DMAs into RAM; outside RAM the VMM fence refuses it, and the page shows it', async ({ page }, testInfo) => {
  test.skip(!nasmAvailable(), 'nasm is not installed (scripts/setup.sh installs it)');
  test.setTimeout(120_000);
  const kernel = Buffer.from(assembleFile(SOURCE));
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));

  await page.goto('/?deterministic=1');
  await expect(page.getByTestId('image-list')).toBeVisible();
  // The machine settings: edu on (off by default), the guest's VT-d as it comes (on).
  await expect(page.getByTestId('option-edu')).not.toBeChecked();
  await expect(page.getByTestId('option-iommu')).toBeChecked();
  await page.getByTestId('option-edu').check();
  await page.getByTestId('file-input').setInputFiles({ name: 'fence-test.bin', mimeType: 'application/octet-stream', buffer: kernel });
  await expect(page.getByTestId('chosen-files').getByRole('combobox')).toHaveValue('kernel');
  await expect(page.getByTestId('option-edu')).toBeDisabled();

  // The program on COM1: DMA inside RAM arrived; the fence's refusals left VGA memory and edu's buffer alone.
  const serial = page.getByTestId('serial-text');
  await expect(serial).toContainText('FENCE TEST PASS', { timeout: 90_000 });
  await expect(serial).toContainText('DMA into RAM: 64 bytes arrived at 0x00600100');
  await expect(serial).toContainText('DMA write beyond RAM to 0x08000000 sent');
  await expect(serial).toContainText('DMA write to VGA memory at 0x000b8000: refused, nothing written');
  await expect(serial).toContainText('DMA read of the BIOS at 0x000f0000: refused, nothing read');
  // Its final cli; hlt stops the machine (port 0xF4, the CLI's --debug-exit, is not wired here).
  await expect(page.getByTestId('phase')).toContainText('stopped: fence-test.bin');

  // The machine view: edu on the PCI bus, the guest's unit with translation off and no fault.
  await expect(page.getByTestId('pci-00:04.0')).toContainText(/edu.*1234:11e8/);
  await expect(page.getByTestId('iommu-status')).toContainText(/translation off.* 0 faults/);
  // The VMM fence's log, in words.
  const fence = page.getByTestId('fence-faults');
  await expect(page.getByTestId('fence-status')).toHaveText('3 pages allowed, 3 refused.', { timeout: 10_000 });
  await expect(fence.getByRole('listitem')).toHaveText([
    /^[\d.]+ ms: edu wrote 0x08000000: beyond guest RAM$/,
    /^[\d.]+ ms: edu wrote 0x000b8000: legacy VGA\/ROM hole$/,
    /^[\d.]+ ms: edu read 0x000f0000: legacy VGA\/ROM hole$/,
  ]);
  // edu's card: three DMA faults counted by the bus, and the bytes of the transfers that went through.
  await expect.poll(async () => Number(await page.getByTestId('stat-edu-dmaFaults').getAttribute('data-value')), { timeout: 10_000 }).toBe(3);
  expect(Number(await page.getByTestId('stat-edu-dmaBytesWritten').getAttribute('data-value'))).toBe(128);
  expect(Number(await page.getByTestId('stat-edu-dmaBytesRead').getAttribute('data-value'))).toBe(64);

  await page.getByTestId('iommu').screenshot({ path: testInfo.outputPath('iommu-panel.png') });
  await page.locator('.controls').screenshot({ path: testInfo.outputPath('controls.png') });

  // Power off: the settings can be changed again.
  await page.getByTestId('power').click();
  await expect(page.getByTestId('phase')).toHaveText('off');
  await expect(page.getByTestId('option-edu')).toBeEnabled();
  expect(errors).toEqual([]);
});
