import { defineConfig } from '@playwright/test';

/**
 * Browser tests run in Debian's Chromium (Playwright may not download its own browser
 * here). The preview server serves the production build with the isolation headers.
 */
const chromium = process.env.TRAPDOOR_CHROMIUM ?? '/usr/bin/chromium';
/** Another checkout's preview may hold the default port: TRAPDOOR_E2E_PORT picks another. */
const port = Number(process.env.TRAPDOOR_E2E_PORT ?? 4173);

export default defineConfig({
  testDir: 'e2e',
  timeout: 120_000,
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    browserName: 'chromium',
    launchOptions: {
      executablePath: chromium,
      args: [
        '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ],
    },
  },
  webServer: {
    command: `npx vite build && npx vite preview --strictPort --port ${port}`,
    url: `http://127.0.0.1:${port}`,
    reuseExistingServer: !process.env.CI,
    timeout: 180_000,
  },
});
