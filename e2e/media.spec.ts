/**
 * A user's own files: the tiny-linux ISO dropped onto the page boots from the ATAPI
 * CD-ROM; files that cannot be used are refused in plain words, and the page stays up.
 */
import { test, expect, type Page } from '@playwright/test';

/** Drop files onto the page the way a file manager does: a drop event carrying File objects. */
async function dropFiles(page: Page, files: { name: string; url?: string; bytes?: number[] }[]): Promise<void> {
  const dataTransfer = await page.evaluateHandle(async (list) => {
    const dt = new DataTransfer();
    for (const f of list) {
      const bytes = f.url ? await (await fetch(f.url)).arrayBuffer() : new Uint8Array(f.bytes ?? []);
      dt.items.add(new File([bytes], f.name));
    }
    return dt;
  }, files);
  await page.dispatchEvent('body', 'dragenter', { dataTransfer });
  await expect(page.getByTestId('dropzone')).toHaveClass(/active/);
  await page.dispatchEvent('body', 'drop', { dataTransfer });
}

test('dropping the tiny-linux ISO onto the page boots it from the CD-ROM', async ({ page }, testInfo) => {
  test.setTimeout(360_000);
  await page.goto('/');
  await expect(page.getByTestId('image-list')).toBeVisible();
  await dropFiles(page, [{ name: 'tiny-linux.iso', url: '/images/tiny-linux-iso/tiny-linux.iso' }]);
  await expect(page.getByTestId('chosen-files').getByRole('combobox')).toHaveValue('cdrom');
  await expect(page.getByTestId('phase')).toContainText('running: tiny-linux.iso', { timeout: 30_000 });
  await expect(page.getByTestId('screen-text')).toContainText('Booting from DVD/CD', { timeout: 60_000 });
  await expect(page.getByTestId('serial-text')).toContainText('TRAPDOOR GUEST READY', { timeout: 300_000 });
  await expect(page.getByTestId('serial-text')).toContainText('ata2.00: ATAPI');
  // The IDE controller did the work: its counters moved.
  expect(Number(await page.getByTestId('stat-ide-portReads').getAttribute('data-value'))).toBeGreaterThan(1000);
  await page.getByTestId('screen').screenshot({ path: testInfo.outputPath('screen-iso.png') });
});

test('a picked 1.44 MB image boots from the floppy, and the keyboard starts memtest86+', async ({ page }) => {
  test.setTimeout(180_000);
  await page.goto('/');
  await expect(page.getByTestId('image-list')).toBeVisible();
  await page.getByTestId('file-input').setInputFiles('public/images/memtest-floppy/memtest.img');
  await expect(page.getByTestId('chosen-files').getByRole('combobox')).toHaveValue('fda');
  await expect(page.getByTestId('screen-text')).toContainText('Memtest86+', { timeout: 60_000 });
  await expect(page.getByTestId('screen-text')).toContainText('<Enter> to start testing');
  // memtest polls the 8042 itself: Enter on the captured screen starts the tests.
  await page.getByTestId('screen').click();
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('screen-text')).toContainText('Status: Testing', { timeout: 60_000 });
});

test('files that cannot be used are refused in plain words', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByTestId('image-list')).toBeVisible();

  // 1000 bytes are no disk: not a whole number of sectors.
  await dropFiles(page, [{ name: 'notes.img', bytes: Array.from({ length: 1000 }, (_, i) => i & 0xff) }]);
  const alert = page.getByTestId('notice-error').last();
  await expect(alert).toContainText('notes.img (1000 bytes) is not a whole number of 512-byte sectors');
  await expect(page.getByTestId('phase')).toHaveText('off');

  // A qcow2 image is named as such, with the command that converts it.
  const qcow = [0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3, ...new Array(504).fill(0)];
  await page.getByTestId('file-input').setInputFiles({ name: 'disk.qcow2', mimeType: 'application/octet-stream', buffer: Buffer.from(qcow) });
  await expect(page.getByTestId('notice-error').last()).toContainText('disk.qcow2 is a qcow2 image');
  await expect(page.getByTestId('notice-error').last()).toContainText('qemu-img convert -O raw');

  // A kernel that is not one.
  await dropFiles(page, [{ name: 'bzImage', bytes: new Array(4096).fill(0x90) }]);
  await expect(page.getByTestId('notice-error').last()).toContainText('bzImage is neither a Linux bzImage nor a Multiboot kernel');

  // The page is still all there.
  await expect(page.getByTestId('image-list')).toBeVisible();
  await expect(page.getByTestId('power')).toHaveText('Power on');
});

test('a kernel that triple-faults is reported, and the page stays up', async ({ page }) => {
  test.setTimeout(120_000);
  // A Multiboot kernel (a.out-kludge header, loaded at 1 MiB) that loads an empty IDT and
  // executes INT3: #GP, then #DF, then a triple fault, which resets the PC.
  const k = new Uint8Array(0x40);
  const v = new DataView(k.buffer);
  const flags = 0x00010000;
  [0x1badb002, flags, (-(0x1badb002 + flags)) >>> 0, 0x100000, 0x100000, 0, 0, 0x100020].forEach((x, i) => v.setUint32(i * 4, x, true));
  k.set([0x0f, 0x01, 0x1d, 0x30, 0x00, 0x10, 0x00, 0xcc, 0xeb, 0xfe], 0x20); // lidt [0x100030]; int3; jmp $
  await page.goto('/');
  await expect(page.getByTestId('image-list')).toBeVisible();
  await dropFiles(page, [{ name: 'crash.bin', bytes: Array.from(k) }]);
  await expect(page.getByTestId('chosen-files').getByRole('combobox')).toHaveValue('kernel');
  const alert = page.getByTestId('notice-error').last();
  await expect(alert).toContainText('The guest crashed and the machine reset itself: triple fault', { timeout: 60_000 });
  await expect(alert).toContainText(/triple fault: .* at [0-9a-f]{4}:0010002[0-9a-f]/);
  await expect(page.getByTestId('phase')).toContainText(/reset \d+×/);
  await page.getByTestId('power').click();
  await expect(page.getByTestId('phase')).toHaveText('off');
  await expect(page.getByTestId('image-list')).toBeVisible();
});

test('a guest whose files are missing on the server is reported with what to do', async ({ page }) => {
  await page.route('**/images/tiny-linux/bzImage', (route) => route.fulfill({ status: 404, body: 'not here' }));
  await page.goto('/');
  await expect(page.getByTestId('image-tiny-linux').getByRole('radio')).toBeChecked();
  await page.getByTestId('power').click();
  await expect(page.getByTestId('notice-error').last()).toContainText("Could not download tiny-linux/bzImage: the server answered 404");
  await expect(page.getByTestId('notice-error').last()).toContainText("npm run images");
  await expect(page.getByTestId('phase')).toHaveText('off');
  await expect(page.getByTestId('image-list')).toBeVisible();
});

