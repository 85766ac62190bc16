/**
 * The network in the page (issue 24), in Chromium with tiny-linux, on loopback only:
 * (a) through fetch the guest gets a lease and wgets 16 MiB the page's own server serves,
 *     intact; the network panel lists the DHCP exchange and the transfer; the pcap it
 *     downloads reads cleanly in tcpdump;
 * (b) through the tests' own Wisp server on loopback, nc round-trips 1 MiB with a TCP echo
 *     server on loopback;
 * (c) through the tests' WebSocket relay, the page's guest pings a Trapdoor CLI's guest on
 *     the same relay (its lease comes from the page's router across the relay);
 * (d) two pages of one browser context on the BroadcastChannel LAN: the second page's
 *     router steps down, both guests get leases from the first, ping each other and move
 *     a file with nc.
 *
 * Guests run on the wall clock (not ?deterministic=1): an idle deterministic guest's time
 * races ahead of the real world's, and a network peer (fetch, another tab) lives in real
 * time. Markers the guest prints are computed in its shell (`$((40+2))`), so the echo of
 * the typed command never matches them.
 */
import { test, expect, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { startWispServer } from '../src/cli/testing/wisp-server.ts';
import { startRelayServer } from '../src/cli/testing/ws-relay-server.ts';
import { startTrapdoor } from '../src/cli/testing/process.ts';

/**
 * The file the guest fetches, written where the preview server serves files from (`dist/`,
 * made by the webServer's build just before; the server's static handler looks files up on
 * each request). Deterministic bytes, so a failure can be reproduced; removed afterwards.
 */
const SERVED = path.resolve('dist', 'e2e-net');
const BLOB = 'blob-16m.bin';
let blobSha = '';

test.beforeAll(() => {
  fs.mkdirSync(SERVED, { recursive: true });
  const blob = Buffer.alloc(16 << 20);
  // A counter through SHA-256: incompressible, the same every run.
  for (let i = 0, off = 0; off < blob.length; i++, off += 32) crypto.createHash('sha256').update(`trapdoor-${i}`).digest().copy(blob, off);
  fs.writeFileSync(path.join(SERVED, BLOB), blob);
  blobSha = crypto.createHash('sha256').update(blob).digest('hex');
});

test.afterAll(() => {
  fs.rmSync(SERVED, { recursive: true, force: true });
});

function serial(page: Page) {
  return page.getByTestId('serial-text');
}

/** Type a command into COM1's console. */
async function type(page: Page, command: string): Promise<void> {
  await page.getByTestId('serial-terminal').click();
  await page.keyboard.type(command);
  await page.keyboard.press('Enter');
}

/** Choose an uplink in the network panel (before power-on). */
async function chooseUplink(page: Page, kind: string, field?: { testId: string; value: string }): Promise<void> {
  await page.getByTestId('uplink-kind').selectOption(kind);
  if (field) await page.getByTestId(field.testId).fill(field.value);
}

async function bootToShell(page: Page, powerOn = true): Promise<void> {
  await expect(page.getByTestId('image-tiny-linux').getByRole('radio')).toBeChecked();
  if (powerOn) await page.getByTestId('power').click();
  await expect(serial(page)).toContainText('TRAPDOOR GUEST READY', { timeout: 300_000 });
  await expect(serial(page)).toContainText('trapdoor:/# ', { timeout: 60_000 });
}

/** The packet list's lines for a filter. */
async function packets(page: Page, filter: string): Promise<string> {
  await page.getByTestId('packet-filter').fill(filter);
  return (await page.getByTestId('packet-list').textContent()) ?? '';
}

test('through fetch: a lease, a 16 MiB wget from the page\'s own server, the packet list and the pcap', async ({ page, request }, testInfo) => {
  test.setTimeout(480_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // The file is where the page's server serves it (not so when a server of another kind was reused).
  const head = await request.get(`/e2e-net/${BLOB}`, { headers: { range: 'bytes=0-0' } });
  expect(head.status(), `the page's server does not serve ${SERVED}: start it with 'npx vite preview' over a fresh build`).toBeLessThan(300);

  await page.goto('/');
  await chooseUplink(page, 'fetch');
  // Kept with the machine's settings: a reload restores it.
  await page.reload();
  await expect(page.getByTestId('uplink-kind')).toHaveValue('fetch');
  await bootToShell(page);
  await expect(page.getByTestId('net-state')).toContainText(/HTTP on port 80 through the browser's fetch/);

  await type(page, `udhcpc -i eth0 -q && wget -q -O - http://10.0.2.2/e2e-net/${BLOB} | sha256sum && echo WGET-$((40+2))`);
  await expect(serial(page)).toContainText(/WGET-42/, { timeout: 240_000 });
  await expect(serial(page)).toContainText(`${blobSha}  -`);

  // The panel: the DHCP exchange and the transfer in the packet list (the list keeps more
  // than the transfer's frames, so the lease is still there).
  await expect.poll(() => packets(page, 'dhcp'), { timeout: 10_000 }).toMatch(/DHCP Discover[\s\S]*DHCP Offer[\s\S]*DHCP Request[\s\S]*DHCP ACK/);
  // The list shows the newest lines that match: each part of the transfer by its own filter.
  expect(await packets(page, 'http')).toContain(`HTTP: GET /e2e-net/${BLOB} HTTP/1.1`);
  expect(await packets(page, 'port 80 [S.]')).toMatch(/10\.0\.2\.2\.80 > 10\.0\.2\.15\.\d+: Flags \[S\.\]/);
  expect(await packets(page, 'tcp port 80 host 10.0.2.2 length 1460')).toMatch(/Flags \[\.\], seq \d+:\d+, ack \d+, win \d+, length 1460/);
  await expect(page.getByTestId('net-port-ne2k')).toBeVisible();
  const bytesOut = Number(await page.getByTestId('net-port-ne2k').locator('[data-bytes-out]').getAttribute('data-bytes-out'));
  expect(bytesOut).toBeGreaterThan(16 << 20);

  // The capture as pcap: tcpdump reads every record, nothing malformed or cut short.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-pcap').click()]);
  const file = testInfo.outputPath('capture.pcap');
  await download.saveAs(file);
  const out = execFileSync('tcpdump', ['-n', '-r', file], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  expect(out).not.toMatch(/\[\|[a-z]+\]|truncated|malformed|bad-len/i);
  expect(out).toMatch(/BOOTP\/DHCP, Request from/);
  expect(out).toMatch(new RegExp(`HTTP: GET /e2e-net/${BLOB.replace('.', '\\.')} HTTP/1\\.1`));
  expect(out.trim().split('\n').length).toBeGreaterThan(10_000);
  expect(errors).toEqual([]);
});

test('two pages on the BroadcastChannel LAN: one router, two leases, ping and a file through nc', async ({ page }) => {
  test.setTimeout(600_000);
  const errors: string[] = [];
  const channel = `e2e-lan-${Date.now()}`;
  await page.goto('/');
  await chooseUplink(page, 'tab-lan', { testId: 'uplink-channel', value: channel });
  const second = await page.context().newPage();
  for (const p of [page, second]) p.on('pageerror', (e) => errors.push(e.message));
  await second.goto('/');
  // The same browser's storage: the second page opens with the setting the first chose.
  await expect(second.getByTestId('uplink-kind')).toHaveValue('tab-lan');
  await expect(second.getByTestId('uplink-channel')).toHaveValue(channel);

  // The first page's machine is on the LAN before the second powers on: its router's claim is the older one.
  await expect(page.getByTestId('image-tiny-linux').getByRole('radio')).toBeChecked();
  await page.getByTestId('power').click();
  await expect(page.getByTestId('net-state')).toContainText(`On the tab LAN '${channel}'`, { timeout: 60_000 });
  await Promise.all([bootToShell(page, false), bootToShell(second)]);
  await expect(page.getByTestId('net-state')).toContainText(/with 1 other machine; this tab's router serves it/);
  await expect(second.getByTestId('net-state')).toContainText(/another tab's router serves it/);
  await expect(second.getByTestId('net-router')).toContainText(/stepped down/);

  // Both leases come from the first page's router (the second page's never answers).
  await type(page, 'udhcpc -i eth0 -q && echo LEASE-$((40+2))-$(ip -4 -o addr show eth0 | sed -e "s/.*inet //" -e "s/\\/.*//")');
  await expect(serial(page)).toContainText(/LEASE-42-10\.0\.2\.\d+\s/, { timeout: 60_000 });
  await type(second, 'udhcpc -i eth0 -q && echo LEASE-$((40+2))-$(ip -4 -o addr show eth0 | sed -e "s/.*inet //" -e "s/\\/.*//")');
  await expect(serial(second)).toContainText(/LEASE-42-10\.0\.2\.\d+\s/, { timeout: 60_000 });
  // An address is read only once the line has ended (the text may arrive in pieces).
  const ipOf = async (p: Page) => /LEASE-42-(10\.0\.2\.\d+)\s/.exec((await serial(p).textContent()) ?? '')![1];
  const [ipA, ipB] = [await ipOf(page), await ipOf(second)];
  expect(ipA).not.toBe(ipB);
  await expect(page.getByTestId('net-router')).toContainText(new RegExp(`${ipA.replace(/\./g, '\\.')}.*${ipB.replace(/\./g, '\\.')}|${ipB.replace(/\./g, '\\.')}.*${ipA.replace(/\./g, '\\.')}`));

  // Ping both ways across the channel.
  await type(second, `ping -c 2 ${ipA}`);
  await expect(serial(second)).toContainText('2 packets transmitted, 2 packets received', { timeout: 60_000 });
  await type(page, `ping -c 2 ${ipB}`);
  await expect(serial(page)).toContainText('2 packets transmitted, 2 packets received', { timeout: 60_000 });

  // A file from the first guest to the second through nc.
  await type(page, 'dd if=/dev/urandom of=/tmp/f bs=1024 count=512 2>/dev/null; sha256sum /tmp/f; nc -l -p 5000 < /tmp/f & echo LISTEN-$((40+2))');
  await expect(serial(page)).toContainText(/LISTEN-42/, { timeout: 30_000 });
  const sent = /([0-9a-f]{64})\s+\/tmp\/f/.exec((await serial(page).textContent()) ?? '')![1];
  await type(second, `nc ${ipA} 5000 > /tmp/g; sha256sum /tmp/g; echo GOT-$((40+2))`);
  await expect(serial(second)).toContainText(/GOT-42/, { timeout: 120_000 });
  expect(/([0-9a-f]{64})\s+\/tmp\/g/.exec((await serial(second).textContent()) ?? '')![1]).toBe(sent);

  // Each panel lists the other guest's traffic.
  expect(await packets(second, 'icmp')).toMatch(new RegExp(`${ipB.replace(/\./g, '\\.')} > ${ipA.replace(/\./g, '\\.')}: ICMP echo request`));
  expect(await packets(page, 'port 5000 [S.]')).toMatch(/Flags \[S\.\]/);
  await second.close();
  expect(errors).toEqual([]);
});

test('through Wisp: nc round-trips 1 MiB with an echo server on loopback', async ({ page }) => {
  test.setTimeout(480_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const wisp = await startWispServer();
  // Echoes what it gets; once the whole file has gone back, it closes (Wisp carries no
  // half-close, so the guest's nc learns the end from the server's close).
  const SIZE = 1 << 20;
  const echo = net.createServer((socket) => {
    let n = 0;
    socket.on('data', (d) => {
      n += d.length;
      socket.write(d);
      if (n >= SIZE) socket.end();
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const echoPort = (echo.address() as net.AddressInfo).port;
  try {
    await page.goto('/');
    await chooseUplink(page, 'wisp', { testId: 'uplink-url', value: wisp.url });
    await bootToShell(page);
    await type(page, 'udhcpc -i eth0 -q && dd if=/dev/urandom of=/tmp/a bs=1024 count=1024 2>/dev/null && echo MADE-$((40+2))');
    await expect(serial(page)).toContainText(/MADE-42/, { timeout: 60_000 });
    await expect(page.getByTestId('net-state')).toContainText(/Connected to the Wisp server at ws:\/\/127\.0\.0\.1/);
    await type(page, `nc 10.0.2.2 ${echoPort} < /tmp/a > /tmp/b; sha256sum /tmp/a /tmp/b; echo NC-$((40+2))`);
    await expect(serial(page)).toContainText(/NC-42/, { timeout: 240_000 });
    const text = (await serial(page).textContent()) ?? '';
    const m = /([0-9a-f]{64})\s+\/tmp\/a\s+([0-9a-f]{64})\s+\/tmp\/b/.exec(text);
    expect(m, 'sha256sum of both files').not.toBeNull();
    expect(m![2]).toBe(m![1]);
    expect(wisp.stats.bytesIn).toBeGreaterThanOrEqual(SIZE);
    expect(wisp.stats.creditViolations).toBe(0);
    expect(await packets(page, `port ${echoPort} [S.]`)).toMatch(new RegExp(`10\\.0\\.2\\.2\\.${echoPort} > 10\\.0\\.2\\.15\\.\\d+: Flags \\[S\\.\\]`));
    expect(errors).toEqual([]);
  } finally {
    echo.close();
    await wisp.close();
  }
});

test('through a WebSocket relay: the page pings a Trapdoor CLI on the same relay', async ({ page }) => {
  test.setTimeout(480_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const relay = await startRelayServer();
  // The CLI's guest has no router of its own on the relay: its lease comes from the page's.
  const cli = startTrapdoor(['--image', 'tiny-linux', '-nic', `websocket,url=${relay.url}`, '--timeout', '600']);
  try {
    await page.goto('/');
    await chooseUplink(page, 'relay', { testId: 'uplink-url', value: relay.url });
    await bootToShell(page);
    await expect(page.getByTestId('net-state')).toContainText(/On the relay at ws:\/\/127\.0\.0\.1/);
    await cli.waitFor(/TRAPDOOR GUEST READY/, 300_000);
    await type(page, 'udhcpc -i eth0 -q && echo PAGE-$((40+2))');
    await expect(serial(page)).toContainText(/PAGE-42/, { timeout: 60_000 });
    const from = cli.output().length;
    cli.send('udhcpc -i eth0 -q && echo CLI-$((40+2))-$(ip -4 -o addr show eth0 | sed -e "s/.*inet //" -e "s/\\/.*//")\n');
    const m = await cli.waitFor(/CLI-42-(10\.0\.2\.\d+)\s/, 120_000, from);
    const cliIp = m[1];
    await type(page, `ping -c 3 ${cliIp}`);
    await expect(serial(page)).toContainText('3 packets transmitted, 3 packets received', { timeout: 60_000 });
    expect(await packets(page, `host ${cliIp} icmp`)).toMatch(new RegExp(`${cliIp.replace(/\./g, '\\.')} > 10\\.0\\.2\\.\\d+: ICMP echo reply`));
    expect(relay.stats.messagesIn).toBeGreaterThan(10);
    expect(errors).toEqual([]);
  } finally {
    cli.kill();
    await relay.close();
  }
});

test('an uplink that cannot be reached is said in words, and the machine runs on', async ({ page }) => {
  test.setTimeout(120_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // A port nothing listens on (taken and released at once).
  const dead = await new Promise<number>((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  await page.goto('/');
  await chooseUplink(page, 'wisp', { testId: 'uplink-url', value: 'http://not-a-websocket' });
  await expect(page.getByTestId('uplink-problem')).toContainText(/must be a ws:\/\/, wss:\/\/ or wisp:\/\/ URL/);
  await page.getByTestId('uplink-url').fill(`ws://127.0.0.1:${dead}/`);
  await expect(page.getByTestId('uplink-problem')).toHaveCount(0);
  await page.getByTestId('power').click();
  await expect(page.getByTestId('net-state')).toHaveAttribute('data-state', 'error', { timeout: 30_000 });
  await expect(page.getByTestId('net-state')).toContainText(`The Wisp server at ws://127.0.0.1:${dead}/ is not connected`);
  await expect(page.getByTestId('phase')).toContainText('running');
  await page.getByTestId('power').click();

  await chooseUplink(page, 'relay', { testId: 'uplink-url', value: `ws://127.0.0.1:${dead}/` });
  await page.getByTestId('power').click();
  await expect(page.getByTestId('net-state')).toContainText(/Not on the relay at ws:\/\/127\.0\.0\.1:\d+\/: .*trying again soon/, { timeout: 30_000 });
  await expect(page.getByTestId('net-events')).toContainText(/relay/i);
  await expect(page.getByTestId('phase')).toContainText('running');
  expect(errors).toEqual([]);
});
