import type { KvCase } from '../kv-case.js';
import { gridCases } from '../query-grid/kv-grid-cases.js';
import { conditionalCases } from './conditional.js';
import { cursorCases } from './cursor.js';
import { dataStoreCases } from './datastore.js';
import { envelopeCases } from './envelope.js';
import { harnessCases } from './harness.js';
import { incrementCases } from './increment.js';
import { instanceCases } from './instances.js';
import { isolationCases } from './isolation.js';
import { metadataCases } from './metadata.js';
import { nameCases } from './names.js';
import { namespaceCases } from './namespaces.js';
import { queryCases } from './query.js';
import { queryErrorCases } from './query-errors.js';
import { raceCases } from './races.js';
import { recordCases } from './records.js';
import { ttlCases } from './ttl.js';
import { valueCases } from './values.js';

/** The hand-written cases, one or more per rule of SPEC §6. */
export function handWrittenKvCases(): KvCase[] {
  return [
    ...harnessCases,
    ...instanceCases,
    ...recordCases,
    ...valueCases,
    ...nameCases,
    ...namespaceCases,
    ...metadataCases,
    ...conditionalCases,
    ...incrementCases,
    ...ttlCases,
    ...queryCases,
    ...queryErrorCases,
    ...cursorCases,
    ...dataStoreCases,
    ...envelopeCases,
    ...isolationCases,
    ...raceCases,
  ];
}

/** Every case of the KV suite: the hand-written ones, then the generated query grid. */
export function allKvCases(): KvCase[] {
  return [...handWrittenKvCases(), ...gridCases()];
}
