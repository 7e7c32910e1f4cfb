import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { type OpenedLocation, openLocation } from '../../bin/open-location.js';
import { type RunningStudio, startStudio } from '../../bin/studio/studio-server.js';
import { studioSourceOf } from '../../bin/studio/studio-source.js';
import { REPO_ROOT } from './cli-support.js';

/**
 * What the studio tests share: the Chromium they drive (or why they skip),
 * and a studio over an opened location. The data is in studio-data.ts.
 */

// ---- the browser -------------------------------------------------------------

/** Debian's `chromium` package, unless KODE_TEST_CHROMIUM names another binary. */
export const CHROMIUM_PATH = process.env.KODE_TEST_CHROMIUM ?? '/usr/bin/chromium';

/** CI (`CI=true`, as .ci/run runs) and `KODE_TEST_REQUIRE=...,chromium` turn a missing browser into a failure. */
const chromiumRequired =
  ['true', '1'].includes((process.env.CI ?? '').toLowerCase()) ||
  (process.env.KODE_TEST_REQUIRE ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .includes('chromium');

/** Why the browser tests cannot run here (null when they can). */
export const chromiumMissing: string | null = existsSync(CHROMIUM_PATH)
  ? null
  : `no Chromium at ${CHROMIUM_PATH} (apt-get install chromium, or set KODE_TEST_CHROMIUM)`;

if (chromiumMissing) {
  if (chromiumRequired)
    throw new Error(
      `the studio's browser tests are required (CI or KODE_TEST_REQUIRE), but there is ${chromiumMissing}.`,
    );
  console.warn(`\n!!! SKIPPING THE STUDIO BROWSER TESTS: ${chromiumMissing}. !!!\n`);
}

/**
 * Headless Chromium. The background-networking switches keep it from
 * calling home: on a closed network those connections are refused and slow
 * the browser down.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Screenshots of every page the tests open, for people to look at (gitignored). */
export const SCREENSHOT_DIR = join(REPO_ROOT, '.tmp', 'studio-screenshots');

export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

/**
 * A page that records what would be wrong even when the page looks right:
 * script errors, console errors (a Content-Security-Policy or Trusted Types
 * violation is one), and whether hostile data ran (`window.__studioPwned`).
 */
export async function watchedPage(browser: Browser): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // A refused request (a KV query the DSL rejects: 400) is shown on the page, and the walks check it there.
    if (message.type() !== 'error' || /status of 400 \(Bad Request\)/.test(message.text())) return;
    problems.push(`console error: ${message.text()}`);
  });
  return { page, problems };
}

/** Fails when hostile data ran or the page reported an error. */
export async function expectCleanPage(page: Page, problems: string[]): Promise<void> {
  expect(
    await page.evaluate(() => (globalThis as { __studioPwned?: unknown }).__studioPwned),
  ).toBeUndefined();
  expect(problems).toEqual([]);
}

// ---- the studio ------------------------------------------------------------------

/** A studio over `location` opened read-only (as the command opens it), on a free port. */
export async function studioOver(
  location: string | undefined,
  env: Record<string, string | undefined> = {},
): Promise<{ studio: RunningStudio; opened: OpenedLocation; close: () => Promise<void> }> {
  const opened = await openLocation(location, { env, readOnly: true });
  try {
    const studio = await startStudio({ source: studioSourceOf(opened), port: 0 });
    return {
      studio,
      opened,
      close: async () => {
        await studio.close();
        await opened.close();
      },
    };
  } catch (error) {
    await opened.close();
    throw error;
  }
}

/** A writable store at `location`, for seeding. */
export async function writableStore(location: string, env: Record<string, string | undefined> = {}) {
  const opened = await openLocation(location, { env, readOnly: false });
  if (opened.kind !== 'store') throw new Error(`${location} is not writable`);
  return opened;
}
