import { AsyncLocalStorage } from 'node:async_hooks';
import type { Profile } from './suite-options.js';

/**
 * The profile of the case that is running. The assertions read it (a
 * rejection's code only matters in `strict`) without every case and every
 * extra case of a user having to pass it along; each case runs inside its
 * own scope, so cases of two runs side by side never see each other's.
 */
const current = new AsyncLocalStorage<Profile>();

/** Runs `body` with `profile` as the judging profile. */
export function withProfile<T>(profile: Profile, body: () => Promise<T>): Promise<T> {
  return current.run(profile, body);
}

/** The profile of the running case (`strict` outside any run). */
export function currentProfile(): Profile {
  return current.getStore() ?? 'strict';
}
