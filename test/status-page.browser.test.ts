/**
 * The status page in a real headless Chromium (Debian's chromium through playwright-core): the page lists the
 * daemon's certificates, "renew now" asks for the token, starts a job and shows it finished; without JavaScript the
 * table is still there. A screenshot is kept in test/artifacts/ (ignored by git).
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../src/daemon/daemon.js';
import { type ObserveWorld, startDaemon, startWorld, TOKEN } from './fixtures/observe-daemon.js';
import { requireBinaries } from './harness/index.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(import.meta.dirname, 'artifacts');

let world: ObserveWorld;
let daemon: Daemon;
let browser: Browser;
let base: string;

beforeAll(async () => {
  requireBinaries(CHROMIUM);
  world = await startWorld();
  ({ daemon } = await startDaemon(world, [
    { name: 'shop', seedDays: 90 },
    { name: 'api', seedDays: 5 },
    { name: 'new-site' },
  ]));
  const { port } = await daemon.listen('127.0.0.1:0');
  base = `http://127.0.0.1:${port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  await daemon?.stop({ graceMs: 1000 });
  await world?.close();
});

describe('status page in Chromium', () => {
  it('lists the certificates; "renew now" with the token starts a job the page shows finished', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      await page.goto(`${base}/`);
      await expect.poll(() => page.locator('tr[data-cert]').count()).toBe(3);
      const names = await page.locator('tr[data-cert] strong.name').allTextContents();
      expect(names).toEqual(['api', 'new-site', 'shop']);
      expect(await page.locator('tr[data-cert="shop"]').textContent()).toContain('shop.certkeeper.test');

      const button = page.locator('tr[data-cert="shop"] button.renew');
      expect(await button.isVisible()).toBe(true);
      await button.click();
      await page.locator('#token-dialog').waitFor({ state: 'visible' });
      await page.fill('#token-input', TOKEN);
      await page.click('#token-dialog button[value="ok"]');
      const out = page.locator('tr[data-cert="shop"] output.job');
      // The test CA refuses every order, so the job finishes as failed — finished either way.
      await expect
        .poll(async () => out.getAttribute('data-state'), { timeout: 30_000 })
        .toMatch(/^(succeeded|failed)$/);
      expect(await out.textContent()).toMatch(/^job (succeeded|failed) — /);
      const jobs = daemon.queue.list().filter((j) => j.source === 'api');
      expect(jobs).toHaveLength(1);
      expect(jobs[0]!.names).toEqual(['shop']);
      expect(jobs[0]!.force).toBe(true);
      expect(['succeeded', 'failed']).toContain(jobs[0]!.state);
      // The token lives in this tab's sessionStorage only.
      expect(await page.evaluate(() => sessionStorage.getItem('certkeeper.apiToken'))).toBe(TOKEN);
      expect(await page.evaluate(() => localStorage.length)).toBe(0);
      expect(errors).toEqual([]);
      await fs.mkdir(ARTIFACTS, { recursive: true });
      await page.reload();
      await page.screenshot({ path: join(ARTIFACTS, 'status-page.png'), fullPage: true });
      expect((await fs.stat(join(ARTIFACTS, 'status-page.png'))).size).toBeGreaterThan(10_000);
      // After the reload the failed attempt is on the page, from the server.
      expect(await page.locator('tr[data-cert="shop"]').textContent()).toContain('failure');
    } finally {
      await context.close();
    }
  });

  it('without an API token set, "renew now" asks for none and still runs the job', async () => {
    const open = await startDaemon(world, [{ name: 'solo', seedDays: 90 }], {}, { token: undefined });
    const context = await browser.newContext();
    try {
      const { port } = await open.daemon.listen('127.0.0.1:0');
      const page = await context.newPage();
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.click('tr[data-cert="solo"] button.renew');
      const out = page.locator('tr[data-cert="solo"] output.job');
      await expect
        .poll(async () => out.getAttribute('data-state'), { timeout: 30_000 })
        .toMatch(/^(succeeded|failed)$/);
      expect(await page.locator('#token-dialog').isVisible()).toBe(false);
      expect(open.daemon.queue.list().filter((j) => j.source === 'api')).toHaveLength(1);
    } finally {
      await context.close();
      await open.daemon.stop({ graceMs: 1000 });
    }
  });

  it('without JavaScript the table is still there (and no button that cannot work)', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    try {
      const page = await context.newPage();
      await page.goto(`${base}/`);
      expect(await page.locator('tr[data-cert]').count()).toBe(3);
      const shop = (await page.locator('tr[data-cert="shop"]').textContent()) ?? '';
      expect(shop).toContain('shop.certkeeper.test');
      expect(shop).toMatch(/\b8[89]\b/); // days left
      expect(await page.locator('tr[data-cert="new-site"]').textContent()).toContain('no certificate');
      expect(await page.locator('button.renew').first().isVisible()).toBe(false);
      expect(await page.locator('noscript').count()).toBe(1);
      await page.screenshot({ path: join(ARTIFACTS, 'status-page-no-js.png'), fullPage: true });
    } finally {
      await context.close();
    }
  });
});
