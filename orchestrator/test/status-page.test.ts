import { existsSync } from 'node:fs';
import { waitFor } from '@aiva/shared/testing';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ProcessStatusView } from '../src/registry/index.js';
import {
  api,
  keepAlive,
  PRODUCTS_SDL,
  REVIEWS_BREAKING_SDL,
  type RunningRegistry,
  registerOk,
  registrationOf,
  startRegistry,
  startSubgraph,
  type TestProject,
  testConfig,
  writeProject,
} from './fixtures/registry-harness.js';

// The status page in a real browser (Debian's chromium, headless): it renders /v1/status every 2 s.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const WAIT = 15_000;

function describeBrowser(name: string, fn: () => void): void {
  if (existsSync(CHROMIUM)) {
    describe(name, fn);
    return;
  }
  const reason = `no chromium at ${CHROMIUM} (Debian package \`chromium\`, or set CHROMIUM_PATH)`;
  if (process.env.CI === 'true') {
    describe(name, () => {
      it('needs chromium', () => {
        throw new Error(`[${name}] ${reason}. In CI it is required.`);
      });
    });
    return;
  }
  console.warn(`[${name}] skipped: ${reason}`);
  describe.skip(name, fn);
}

describeBrowser('status page', () => {
  let project: TestProject;
  let browser: Browser;
  const cleanups: Array<() => Promise<void> | void> = [];

  beforeAll(async () => {
    project = writeProject();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  afterAll(async () => {
    await browser?.close();
    project.remove();
  });

  async function open(r: RunningRegistry): Promise<{ page: Page; problems: string[] }> {
    const context = await browser.newContext();
    cleanups.push(() => context.close());
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    const response = await page.goto(`${r.url}/`);
    expect(response?.status()).toBe(200);
    return { page, problems };
  }

  const textOf = (page: Page, selector: string) =>
    page
      .locator(selector)
      .first()
      .textContent({ timeout: 500 })
      .catch(() => null);

  it('shows an instance appear, its health change when /ready fails, and a failed composition', async () => {
    const processes: ProcessStatusView[] = [
      {
        service: 'users',
        slot: 'users#1',
        pid: null,
        state: 'crash-loop',
        restarts: 5,
        startedAt: new Date().toISOString(),
        lastExit: { code: 1, signal: null, at: new Date().toISOString() },
        reason: 'exited 5 times within 10 s of starting: not restarting',
      },
    ];
    const r = await startRegistry(testConfig(project, { SUPERGRAPH_MODE: 'live' }), {
      supervisor: { status: () => processes },
    });
    cleanups.push(() => r.close());
    const { page, problems } = await open(r);
    await waitFor(
      async () => (await textOf(page, '#summary'))?.includes('Store: memory'),
      WAIT,
      'the summary',
    );
    expect(await page.title()).toBe('AIVA orchestrator');

    const products = await startSubgraph('products', PRODUCTS_SDL);
    cleanups.push(() => products.close());
    const id = await registerOk(r.url, registrationOf(products, { slot: 'products#1' }));
    cleanups.push(keepAlive(r.url, id, 'products'));
    const row = `tr[data-instance="${id}"]`;
    await waitFor(
      async () => (await textOf(page, `${row} .health`)) === 'healthy',
      WAIT,
      'the instance, healthy',
    );
    expect(await textOf(page, row)).toContain(products.url);

    products.setReady(false);
    await waitFor(
      async () => (await textOf(page, `${row} .health`))?.startsWith('unhealthy'),
      WAIT,
      'the instance shown unhealthy',
    );
    expect(await textOf(page, `${row} .health .reason`)).toBe('ready answered 503');

    const reviews = await startSubgraph('reviews', REVIEWS_BREAKING_SDL);
    cleanups.push(() => reviews.close());
    const breaking = await registerOk(r.url, registrationOf(reviews));
    cleanups.push(keepAlive(r.url, breaking, 'reviews'));
    await waitFor(
      async () => (await textOf(page, '#last-composition.failed'))?.includes('Product.name'),
      WAIT,
      'the failed composition and its error',
    );
    await waitFor(
      async () => (await textOf(page, `tr[data-instance="${breaking}"] .schema`)) === 'mismatch',
      WAIT,
      'the breaking instance flagged',
    );
    const servedHash = (await api.status(r.url)).composition.served?.hash.slice(0, 12);
    expect(await textOf(page, '#served')).toContain(servedHash);

    expect(await textOf(page, 'tr[data-slot="users#1"] .state')).toBe('crash-loop');
    expect(await textOf(page, 'tr[data-slot="users#1"]')).toContain('not restarting');
    expect(problems).toEqual([]);
  });

  it('sends a strict content security policy with the page', async () => {
    const r = await startRegistry(testConfig(project));
    cleanups.push(() => r.close());
    const response = await fetch(`${r.url}/`);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(await response.text()).not.toMatch(/<script>|style=/);
  });
});
