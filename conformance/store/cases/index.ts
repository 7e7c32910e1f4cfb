import { queryGridCases } from '../query-grid/query-grid-cases.js';
import type { StoreCase } from '../store-case.js';
import { agentIdCases } from './agent-ids.js';
import { badInputCases } from './bad-input.js';
import { closeCases } from './close.js';
import { deletedStaysDeletedCases } from './deleted-stays-deleted.js';
import { durabilityCases } from './durability.js';
import { eventCases } from './events.js';
import { firstSavedTimeCases } from './first-saved-times.js';
import { forkCases } from './fork.js';
import { historyCases, snapshotCases } from './history-snapshots.js';
import { withLevelAndProfile } from './levels-and-profiles.js';
import { lifecycleCases } from './lifecycle.js';
import { lockCases } from './locks.js';
import { observabilityCases } from './observability.js';
import { orderingTrapCases } from './ordering-trap.js';
import { queryCases } from './queries.js';
import { raceCases } from './races.js';
import { replaceListCases } from './replace-lists.js';
import { retentionCases } from './retention.js';
import { roundTripCases } from './round-trip.js';

/** The hand-written cases, one or more per rule of the contract. */
export function handWrittenCases(): StoreCase[] {
  const cases = [
    ...roundTripCases,
    ...orderingTrapCases,
    ...agentIdCases,
    ...replaceListCases,
    ...eventCases,
    ...historyCases,
    ...snapshotCases,
    ...lifecycleCases,
    ...deletedStaysDeletedCases,
    ...queryCases,
    ...firstSavedTimeCases,
    ...observabilityCases,
    ...lockCases,
    ...forkCases,
    ...closeCases,
    ...badInputCases,
    ...raceCases,
    ...durabilityCases,
    ...retentionCases,
  ];
  return cases.map(withLevelAndProfile);
}

/** Every hand-written case and the generated query grid, in run order. */
export function allStoreCases(): StoreCase[] {
  return [...handWrittenCases(), ...queryGridCases().map(withLevelAndProfile)];
}
