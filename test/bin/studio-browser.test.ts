import { copyFile, mkdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { kvOf } from '../../bin/kv-copy.js';
import { POOL_META_ID } from '../../src/transfer/json-store-layout.js';
import { FIXTURE_LOCATION, REPO_ROOT, tempDir } from './cli-support.js';
import { HOSTILE, migrateFixture, writeHostileAgent, writeKvData, writeLargeAgent } from './studio-data.js';
import {
  chromiumMissing,
  expectCleanPage,
  launchChromium,
  studioOver,
  watchedPage,
  writableStore,
} from './studio-support.js';
import { visit, walkFixture, walkHostile, walkKv, walkLarge } from './studio-walks.js';

/**
 * The studio in a real browser (Debian's Chromium, driven by playwright-core)
 * on an SDK JSONStore directory read in place, on SQLite (the fixture
 * migrated, hostile data, KV records), on SQLite in hybrid mode, and on a
 * generated agent with 100,000 events and 2,000 messages. Screenshots of
 * every page go to .tmp/studio-screenshots/.
 */

const describeBrowser = chromiumMissing ? describe.skip : describe;
const suffix = chromiumMissing ? ` (skipped: ${chromiumMissing})` : '';

let browser: Browser;
let scratch: { dir: string; remove: () => Promise<void> };

beforeAll(async () => {
  scratch = await tempDir('kode-studio-browser-');
  if (!chromiumMissing) browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await scratch?.remove();
});

describeBrowser(`studio in Chromium: a JSONStore directory, read in place${suffix}`, () => {
  it('shows every page of the SDK fixture', async () => {
    const { studio, close } = await studioOver(FIXTURE_LOCATION);
    const { page, problems } = await watchedPage(browser);
    try {
      await walkFixture(page, studio.url, 'json');
      await expectCleanPage(page, problems);
    } finally {
      await page.context().close();
      await close();
    }
  });
});

describeBrowser(`studio in Chromium: SQLite${suffix}`, () => {
  let location: string;
  let forkId: string;

  beforeAll(async () => {
    location = `sqlite:${join(scratch.dir, 'studio.db')}`;
    await migrateFixture(location);
    const seeding = await writableStore(location);
    forkId = await writeHostileAgent(seeding.store);
    await writeKvData(kvOf(seeding)!);
    await seeding.close();
  });

  it('shows the migrated fixture, hostile data as text, and KV records', async () => {
    const { studio, close } = await studioOver(location);
    const { page, problems } = await watchedPage(browser);
    try {
      await walkFixture(page, studio.url, 'sqlite', [POOL_META_ID, HOSTILE.agentId, forkId]);
      await walkHostile(page, studio.url, 'sqlite', forkId);
      await walkKv(page, studio.url, 'sqlite');
      await expectCleanPage(page, problems);
    } finally {
      await page.context().close();
      await close();
    }
  });

  // `KODE_STUDIO_README_SHOT=docs/studio.png npx vitest run test/bin/studio-browser.test.ts -t SQLite`
  // redraws the README's picture: an agent's conversation, from a location named as users name it.
  const readmeShot = process.env.KODE_STUDIO_README_SHOT;
  if (readmeShot) {
    it('draws the README picture', async () => {
      const copy = join(REPO_ROOT, 'data', 'studio-readme.db');
      await mkdir(dirname(copy), { recursive: true });
      await copyFile(location.slice('sqlite:'.length), copy);
      const { studio, close } = await studioOver('sqlite:./data/studio-readme.db');
      const { page } = await watchedPage(browser);
      try {
        await visit(page, studio.url, ['agent', 'agt-01M81Y5YTSB07WSKPHZV3ZCPY1'], { offset: '2' });
        await page.screenshot({ path: resolve(REPO_ROOT, readmeShot) });
      } finally {
        await page.context().close();
        await close();
        await rm(copy, { force: true });
      }
    });
  }
});

describeBrowser(
  `studio in Chromium: SQLite in hybrid mode (events in files), from the environment${suffix}`,
  () => {
    it('shows the migrated fixture', async () => {
      const env = {
        KODE_STORE_TYPE: 'sqlite',
        KODE_SQLITE_PATH: join(scratch.dir, 'hybrid.db'),
        KODE_STORE_PATH: join(scratch.dir, 'hybrid-events'),
        KODE_STORE_EVENTS: 'file',
      };
      // No --to: the destination comes from the environment, as the studio's location does.
      await migrateFixture(undefined, env);
      const { studio, close } = await studioOver(undefined, env);
      const { page, problems } = await watchedPage(browser);
      try {
        await walkFixture(page, studio.url, 'hybrid', [POOL_META_ID]);
        await expectCleanPage(page, problems);
      } finally {
        await page.context().close();
        await close();
      }
    });
  },
);

describeBrowser(`studio in Chromium: an agent with 100,000 events and 2,000 messages${suffix}`, () => {
  let location: string;

  beforeAll(async () => {
    location = `sqlite:${join(scratch.dir, 'large.db')}`;
    const seeding = await writableStore(location);
    await writeLargeAgent(seeding.store);
    await seeding.close();
  });

  it('opens its pages, counts everything, and pages through it', async () => {
    const { studio, close } = await studioOver(location);
    const { page, problems } = await watchedPage(browser);
    try {
      await walkLarge(page, studio.url, 'large');
      await expectCleanPage(page, problems);
    } finally {
      await page.context().close();
      await close();
    }
  });
});
