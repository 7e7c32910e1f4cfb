import { createKvEnvelopeApi, type KvEnvelope } from '../../../src/kv/kv-envelope.js';
import { check, checkEqual } from '../../runner/assertions.js';
import { defineKvCases } from '../kv-case.js';
import { checkIso } from './helpers.js';

/** Checks the seeds' envelope: type, success, timestamp, requestId; data on success, error on failure. */
function checkEnvelope<T>(response: KvEnvelope<T>, type: string, success: boolean): T {
  checkEqual(response.type, `kvStore.${type}`, 'type');
  checkEqual(response.success, success, `success of ${type} (error: ${response.error})`);
  checkIso(response.timestamp, 'timestamp');
  check(typeof response.requestId === 'string' && response.requestId.length > 0, 'requestId');
  if (success) {
    check(response.data !== undefined && response.error === undefined, 'data and no error on success');
  } else {
    check(typeof response.error === 'string' && response.error.length > 0, 'an error message on failure');
    check(response.data === undefined, 'no data on failure');
  }
  return response.data as T;
}

/** §6 Envelope API: Codebolt's `kvStore` names, arguments and response shapes; it never throws. */
export const envelopeCases = defineKvCases('envelope', [
  {
    id: 'create-instance',
    title: 'createInstance(name, description) answers data.instance',
    async run({ kv }) {
      const api = createKvEnvelopeApi(kv);
      const data = checkEnvelope(
        await api.createInstance('user-sessions', 'Stores sessions'),
        'createInstance',
        true,
      );
      checkEqual(
        [data.instance.name, data.instance.description],
        ['user-sessions', 'Stores sessions'],
        'instance',
      );
    },
  },
  {
    id: 'set-and-get',
    title:
      'set(instanceId, namespace, key, value) answers data.record; get answers data.exists and data.value',
    async run({ kv, instance }) {
      const api = createKvEnvelopeApi(kv);
      const id = await instance();
      const set = checkEnvelope(await api.set(id, 'sessions', 'user-123', { loggedIn: true }), 'set', true);
      checkEqual(
        [set.record.instanceId, set.record.namespace, set.record.key, set.record.value],
        [id, 'sessions', 'user-123', { loggedIn: true }],
        'record',
      );
      const got = checkEnvelope(await api.get(id, 'sessions', 'user-123'), 'get', true);
      checkEqual([got.exists, got.value], [true, { loggedIn: true }], 'get');
      const missing = checkEnvelope(await api.get(id, 'sessions', 'nobody'), 'get', true);
      checkEqual([missing.exists, missing.value], [false, undefined], 'missing key');
    },
  },
  {
    id: 'set-auto-create',
    title: 'set with autoCreateInstance true (5th argument) creates the instance; without it the set fails',
    async run({ kv, unique }) {
      const api = createKvEnvelopeApi(kv);
      const id = unique('auto');
      const failed = await api.set(id, 'cache', 'key1', { data: 'value' });
      checkEnvelope(failed, 'set', false);
      checkEqual(failed.code, 'KODE_NOT_FOUND', 'code');
      // Seed 001's own check of this failure.
      check(failed.error?.includes('not found'), `error says "not found": ${failed.error}`);
      checkEnvelope(await api.set(id, 'cache', 'key1', { data: 'value' }, true), 'set', true);
    },
  },
  {
    id: 'set-options-object',
    title:
      'set also takes the native options object as its 5th argument: { autoCreateInstance: true }, metadata',
    async run({ kv, unique }) {
      const api = createKvEnvelopeApi(kv);
      const id = unique('auto-options');
      const set = checkEnvelope(
        await api.set(
          id,
          'cache',
          'key1',
          { data: 'value' },
          { autoCreateInstance: true, metadata: { by: 'me' } },
        ),
        'set',
        true,
      );
      checkEqual([set.record.value, set.record.metadata], [{ data: 'value' }, { by: 'me' }], 'record');
      checkEqual((await kv.getInstance(id))?.id, id, 'the instance was created');
      const refused = await api.set(unique('never'), 'cache', 'key1', 1, { autoCreateInstance: false });
      checkEnvelope(refused, 'set', false);
      checkEqual(refused.code, 'KODE_NOT_FOUND', 'code without autoCreateInstance');
      const misspelt = await api.set(id, 'cache', 'key1', 1, { autoCreate: true } as never);
      checkEnvelope(misspelt, 'set', false);
      checkEqual(misspelt.code, 'KODE_VALIDATION', 'code of an unknown option');
      const garbage = await api.set(id, 'cache', 'key1', 1, 'yes' as never);
      checkEnvelope(garbage, 'set', false);
      checkEqual(garbage.code, 'KODE_VALIDATION', 'code of a 5th argument that is neither');
    },
  },
  {
    id: 'query',
    title: 'query(dsl) answers data.result.records and data.result.total',
    async run({ kv, instance }) {
      const api = createKvEnvelopeApi(kv);
      const id = await instance();
      await api.set(id, 'sessions', 'a', { createdAt: 5 });
      await api.set(id, 'sessions', 'b', { createdAt: 1 });
      const data = checkEnvelope(
        await api.query({
          from: { instance: id, namespace: 'sessions' },
          where: [{ field: 'value.createdAt', operator: 'gte', value: 3 }],
        }),
        'query',
        true,
      );
      checkEqual([data.result.records.map((r) => r.key), data.result.total], [['a'], 1], 'result');
    },
  },
  {
    id: 'namespaces-and-counts',
    title: 'getNamespaces answers data.namespaces, getRecordCount data.count',
    async run({ kv, instance }) {
      const api = createKvEnvelopeApi(kv);
      const id = await instance();
      await api.set(id, 'b', 'k', 1);
      await api.set(id, 'a', 'k', 1);
      await api.set(id, 'a', 'j', 1);
      checkEqual(
        checkEnvelope(await api.getNamespaces(id), 'getNamespaces', true).namespaces,
        ['a', 'b'],
        'namespaces',
      );
      checkEqual(
        checkEnvelope(await api.getRecordCount(id), 'getRecordCount', true).count,
        3,
        'instance count',
      );
      checkEqual(
        checkEnvelope(await api.getRecordCount(id, 'a'), 'getRecordCount', true).count,
        2,
        'namespace count',
      );
    },
  },
  {
    id: 'deletes',
    title: 'delete answers data.deleted; deleteNamespace data.deletedCount',
    async run({ kv, instance }) {
      const api = createKvEnvelopeApi(kv);
      const id = await instance();
      await api.set(id, 'ns', 'a', 1);
      await api.set(id, 'ns', 'b', 1);
      checkEqual(checkEnvelope(await api.delete(id, 'ns', 'a'), 'delete', true).deleted, true, 'deleted');
      checkEqual(
        checkEnvelope(await api.delete(id, 'ns', 'a'), 'delete', true).deleted,
        false,
        'deleted again',
      );
      checkEqual(
        checkEnvelope(await api.deleteNamespace(id, 'ns'), 'deleteNamespace', true).deletedCount,
        1,
        'deletedCount',
      );
    },
  },
  {
    id: 'instances',
    title:
      'getInstance, listInstances, updateInstance and deleteInstance answer data.instance / instances / deleted',
    async run({ kv }) {
      const api = createKvEnvelopeApi(kv);
      const created = checkEnvelope(await api.createInstance('n', 'd'), 'createInstance', true).instance;
      checkEqual(
        checkEnvelope(await api.getInstance(created.id), 'getInstance', true).instance,
        created,
        'getInstance',
      );
      const listed = checkEnvelope(await api.listInstances(), 'listInstances', true).instances;
      check(
        listed.some((i) => i.id === created.id),
        'listInstances includes it',
      );
      const updated = checkEnvelope(
        await api.updateInstance(created.id, { name: 'renamed' }),
        'updateInstance',
        true,
      );
      checkEqual(updated.instance.name, 'renamed', 'name');
      checkEqual(
        checkEnvelope(await api.deleteInstance(created.id), 'deleteInstance', true).deleted,
        true,
        'deleted',
      );
      const gone = await api.getInstance(created.id);
      checkEnvelope(gone, 'getInstance', false);
      checkEqual(gone.code, 'KODE_NOT_FOUND', 'code of a missing instance');
      check(gone.error?.includes('not found'), `error says "not found": ${gone.error}`);
    },
  },
  {
    id: 'never-throws',
    title: 'bad arguments come back as success: false with an error, never as a throw or rejection',
    async run({ kv, instance }) {
      const api = createKvEnvelopeApi(kv);
      const id = await instance();
      const failures = [
        ['query', await api.query(null as never)],
        [
          'query',
          await api.query({ from: { instance: id }, where: [{ field: 'x', operator: 'eq', value: 1 }] }),
        ],
        ['set', await api.set(id, 'ns', 'k', () => 1)],
        ['set', await api.set(id, '', 'k', 1)],
        ['get', await api.get(undefined as never, 'ns', 'k')],
        ['createInstance', await api.createInstance(undefined as never)],
        ['updateInstance', await api.updateInstance(id, null as never)],
      ] as const;
      for (const [type, response] of failures) checkEnvelope(response as KvEnvelope<unknown>, type, false);
      checkEqual(
        failures.map(([, r]) => r.code),
        [
          'KODE_QUERY',
          'KODE_QUERY',
          'KODE_VALIDATION',
          'KODE_VALIDATION',
          'KODE_VALIDATION',
          'KODE_VALIDATION',
          'KODE_VALIDATION',
        ],
        'codes',
      );
    },
  },
  {
    id: 'request-ids-unique',
    title: 'every response carries its own requestId',
    async run({ kv, instance }) {
      const api = createKvEnvelopeApi(kv);
      const id = await instance();
      const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => api.get(id, 'ns', `k${i}`)));
      checkEqual(new Set(responses.map((r) => r.requestId)).size, 20, 'distinct requestIds');
    },
  },
]);
