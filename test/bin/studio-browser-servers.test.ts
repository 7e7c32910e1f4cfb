import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { kvOf } from '../../bin/kv-copy.js';
import { POOL_META_ID } from '../../src/transfer/json-store-layout.js';
import { mongodbUrl, mongoSkipReason, useTestDatabase } from '../helpers/mongo.js';
import { postgresSkipReason, postgresUrl, useTestSchema } from '../helpers/postgres.js';
import { HOSTILE, migrateFixture, writeHostileAgent, writeKvData } from './studio-data.js';
import {
  chromiumMissing,
  expectCleanPage,
  launchChromium,
  studioOver,
  watchedPage,
  writableStore,
} from './studio-support.js';
import { walkFixture, walkHostile, walkKv } from './studio-walks.js';

/**
 * The studio in Chromium on the database servers: the SDK fixture migrated
 * into PostgreSQL and MongoDB (with hostile data and KV records), every page
 * walked as on SQLite.
 */

/** `describe` when the server and Chromium are both here; otherwise skipped with the reason in its name. */
function describeWith(name: string, serverMissing: string | null, body: () => void): void {
  const reason = serverMissing ?? chromiumMissing;
  if (reason) describe.skip(`${name} (skipped: ${reason})`, body);
  else describe(name, body);
}

let browser: Browser | undefined;

beforeAll(async () => {
  if (!chromiumMissing && (postgresUrl || mongodbUrl)) browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
});

async function walkAll(location: string, label: string): Promise<void> {
  await migrateFixture(location);
  const seeding = await writableStore(location);
  const forkId = await writeHostileAgent(seeding.store);
  await writeKvData(kvOf(seeding)!);
  await seeding.close();
  const { studio, close } = await studioOver(location);
  const { page, problems } = await watchedPage(browser!);
  try {
    await walkFixture(page, studio.url, label, [POOL_META_ID, HOSTILE.agentId, forkId]);
    await walkHostile(page, studio.url, label, forkId);
    await walkKv(page, studio.url, label);
    await expectCleanPage(page, problems);
  } finally {
    await page.context().close();
    await close();
  }
}

describeWith('studio in Chromium: PostgreSQL', postgresSkipReason, () => {
  const place = useTestSchema('studio');

  it('shows the migrated fixture, hostile data as text, and KV records', async () => {
    const url = new URL(place.url);
    url.searchParams.set('schema', place.schema);
    await walkAll(url.toString(), 'postgres');
  });
});

describeWith('studio in Chromium: MongoDB', mongoSkipReason, () => {
  const place = useTestDatabase('studio');

  it('shows the migrated fixture, hostile data as text, and KV records', async () => {
    const url = new URL(place.url);
    url.pathname = `/${place.dbName}`;
    await walkAll(url.toString(), 'mongodb');
  });
});
