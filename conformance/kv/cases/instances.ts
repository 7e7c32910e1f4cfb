import { check, checkEqual, checkRejects } from '../../runner/assertions.js';
import { defineKvCases } from '../kv-case.js';
import { checkIso } from './helpers.js';

/** §6 Instances: create, get, list, update, delete (cascading), autoCreateInstance. */
export const instanceCases = defineKvCases('instances', [
  {
    id: 'create-returns-the-instance',
    title: 'createInstance returns {id, name, description, createdAt, updatedAt} with equal ISO times',
    async run({ kv }) {
      const created = await kv.createInstance({ name: 'sessions', description: 'Stores sessions' });
      checkEqual(
        Object.keys(created),
        ['id', 'name', 'description', 'createdAt', 'updatedAt'],
        'instance fields',
      );
      check(typeof created.id === 'string' && created.id.length > 0, 'the id is a non-empty string');
      checkEqual(
        [created.name, created.description],
        ['sessions', 'Stores sessions'],
        'name and description',
      );
      checkIso(created.createdAt, 'createdAt');
      checkEqual(created.updatedAt, created.createdAt, 'updatedAt of a new instance');
    },
  },
  {
    id: 'description-defaults-to-empty',
    title: 'an instance created without a description has the empty string',
    async run({ kv }) {
      checkEqual((await kv.createInstance({ name: 'n' })).description, '', 'description');
    },
  },
  {
    id: 'generated-ids-are-unique',
    title: 'instances created without an id get distinct ids',
    async run({ kv }) {
      const ids = new Set<string>();
      for (let i = 0; i < 5; i++) ids.add((await kv.createInstance({ name: 'same name' })).id);
      checkEqual(ids.size, 5, 'distinct ids');
    },
  },
  {
    id: 'explicit-id',
    title: 'createInstance uses an id it is given, and getInstance finds it',
    async run({ kv, unique }) {
      const id = unique('explicit');
      const created = await kv.createInstance({ name: 'n', id });
      checkEqual(created.id, id, 'id');
      checkEqual(await kv.getInstance(id), created, 'getInstance');
    },
  },
  {
    id: 'duplicate-id-conflicts',
    title: 'creating an instance with a taken id fails with ConflictError and changes nothing',
    async run({ kv, unique }) {
      const id = unique('dup');
      const first = await kv.createInstance({ name: 'first', id });
      await checkRejects(() => kv.createInstance({ name: 'second', id }), 'KODE_CONFLICT', 'second create');
      checkEqual(await kv.getInstance(id), first, 'the first instance');
    },
  },
  {
    id: 'get-unknown-is-undefined',
    title: 'getInstance of an unknown id is undefined',
    async run({ kv, unique }) {
      checkEqual(await kv.getInstance(unique('nobody')), undefined, 'getInstance');
    },
  },
  {
    id: 'list-oldest-first',
    title: 'listInstances holds every instance, oldest first',
    async run({ kv, unique, clock }) {
      const ids: string[] = [];
      for (const label of ['c', 'a', 'b']) {
        ids.push((await kv.createInstance({ name: label, id: unique(label) })).id);
        clock.advance(3);
      }
      const listed = (await kv.listInstances()).map((i) => i.id).filter((id) => ids.includes(id));
      checkEqual(listed, ids, 'our instances in creation order');
    },
  },
  {
    id: 'update-name',
    title: 'updateInstance renames, keeps description and createdAt, and moves updatedAt forward',
    async run({ kv }) {
      const created = await kv.createInstance({ name: 'old', description: 'keep me' });
      const updated = await kv.updateInstance(created.id, { name: 'new' });
      checkEqual(
        [updated.name, updated.description, updated.createdAt],
        ['new', 'keep me', created.createdAt],
        'updated',
      );
      check(Date.parse(updated.updatedAt) > Date.parse(created.updatedAt), 'updatedAt moved forward');
      checkEqual(await kv.getInstance(created.id), updated, 'stored instance');
    },
  },
  {
    id: 'update-description',
    title: 'updateInstance changes the description alone',
    async run({ kv }) {
      const created = await kv.createInstance({ name: 'n', description: 'a' });
      const updated = await kv.updateInstance(created.id, { description: '' });
      checkEqual([updated.name, updated.description], ['n', ''], 'name and description');
    },
  },
  {
    id: 'update-unknown-not-found',
    title: 'updating an unknown instance fails with NotFoundError',
    async run({ kv, unique }) {
      await checkRejects(() => kv.updateInstance(unique('ghost'), { name: 'x' }), 'KODE_NOT_FOUND', 'update');
    },
  },
  {
    id: 'update-refuses-unknown-fields',
    title:
      'updateInstance refuses fields other than name and description (ValidationError), changing nothing',
    async run({ kv }) {
      const created = await kv.createInstance({ name: 'n' });
      await checkRejects(
        () => kv.updateInstance(created.id, { id: 'other' } as never),
        'KODE_VALIDATION',
        'update with id',
      );
      checkEqual(await kv.getInstance(created.id), created, 'instance');
    },
  },
  {
    id: 'names-are-validated',
    title: 'an instance name must be a non-empty string without NUL (ValidationError)',
    async run({ kv }) {
      await checkRejects(() => kv.createInstance({ name: '' }), 'KODE_VALIDATION', 'empty name');
      await checkRejects(() => kv.createInstance({ name: 5 as never }), 'KODE_VALIDATION', 'number name');
      await checkRejects(() => kv.createInstance({ name: 'a\u0000b' }), 'KODE_VALIDATION', 'NUL in name');
      await checkRejects(() => kv.createInstance({ name: 'n', id: '' }), 'KODE_VALIDATION', 'empty id');
    },
  },
  {
    id: 'delete-reports-existence',
    title: 'deleteInstance returns true for an instance it deleted, false for an unknown one',
    async run({ kv, instance }) {
      const id = await instance();
      checkEqual(await kv.deleteInstance(id), true, 'first delete');
      checkEqual(await kv.deleteInstance(id), false, 'second delete');
      checkEqual(await kv.getInstance(id), undefined, 'getInstance after delete');
    },
  },
  {
    id: 'delete-cascades',
    title: 'deleting an instance deletes all its records; an instance created again with its id is empty',
    async run({ kv, instance }) {
      const id = await instance();
      await kv.set(id, 'a', 'k1', 1);
      await kv.set(id, 'b', 'k2', 2);
      await kv.deleteInstance(id);
      await checkRejects(() => kv.get(id, 'a', 'k1'), 'KODE_NOT_FOUND', 'get in a deleted instance');
      await kv.createInstance({ name: 'again', id });
      checkEqual(await kv.getRecordCount(id), 0, 'records of the new instance');
      checkEqual(await kv.getNamespaces(id), [], 'namespaces of the new instance');
      checkEqual((await kv.get(id, 'a', 'k1')).exists, false, 'old key');
    },
  },
  {
    id: 'delete-leaves-other-instances',
    title: 'deleting an instance leaves other instances and their records alone',
    async run({ kv, instance }) {
      const doomed = await instance('doomed');
      const kept = await instance('kept');
      await kv.set(doomed, 'ns', 'k', 'gone');
      await kv.set(kept, 'ns', 'k', 'stays');
      await kv.deleteInstance(doomed);
      checkEqual((await kv.get(kept, 'ns', 'k')).value, 'stays', 'record of the other instance');
    },
  },
  {
    id: 'set-needs-the-instance',
    title:
      'set into an unknown instance fails with a NotFoundError saying "not found" (seed 001) and creates nothing',
    async run({ kv, unique }) {
      const id = unique('missing');
      const error = await checkRejects(() => kv.set(id, 'ns', 'k', 1), 'KODE_NOT_FOUND', 'set');
      check(error.message.includes('not found'), `the message says "not found": ${error.message}`);
      check(error.message.includes('autoCreateInstance'), `the message names the option: ${error.message}`);
      checkEqual(await kv.getInstance(id), undefined, 'instance after the failed set');
    },
  },
  {
    id: 'auto-create',
    title: 'set with autoCreateInstance creates the instance (named after its id) and stores the record',
    async run({ kv, unique }) {
      const id = unique('auto');
      await kv.set(id, 'ns', 'k', { v: 1 }, { autoCreateInstance: true });
      const created = await kv.getInstance(id);
      checkEqual([created?.id, created?.name], [id, id], 'auto-created instance');
      checkEqual((await kv.get(id, 'ns', 'k')).value, { v: 1 }, 'record');
    },
  },
  {
    id: 'auto-create-keeps-existing',
    title: 'autoCreateInstance on an existing instance keeps its name and description',
    async run({ kv }) {
      const created = await kv.createInstance({ name: 'mine', description: 'desc' });
      await kv.set(created.id, 'ns', 'k', 1, { autoCreateInstance: true });
      checkEqual(await kv.getInstance(created.id), created, 'instance');
    },
  },
  {
    id: 'reads-need-the-instance',
    title:
      'get, getMany, delete, deleteNamespace, getNamespaces, getRecordCount and query of an unknown instance fail with NotFoundError',
    async run({ kv, unique }) {
      const id = unique('absent');
      await checkRejects(() => kv.get(id, 'ns', 'k'), 'KODE_NOT_FOUND', 'get');
      await checkRejects(() => kv.getMany(id, 'ns', ['k']), 'KODE_NOT_FOUND', 'getMany');
      await checkRejects(() => kv.delete(id, 'ns', 'k'), 'KODE_NOT_FOUND', 'delete');
      await checkRejects(() => kv.deleteNamespace(id, 'ns'), 'KODE_NOT_FOUND', 'deleteNamespace');
      await checkRejects(() => kv.getNamespaces(id), 'KODE_NOT_FOUND', 'getNamespaces');
      await checkRejects(() => kv.getRecordCount(id), 'KODE_NOT_FOUND', 'getRecordCount');
      await checkRejects(() => kv.query({ from: { instance: id } }), 'KODE_NOT_FOUND', 'query');
      await checkRejects(() => kv.increment(id, 'ns', 'k'), 'KODE_NOT_FOUND', 'increment');
      const error = await checkRejects(() => kv.get(id, 'ns', 'k'), 'KODE_NOT_FOUND', 'get');
      check(error.message.includes(`${JSON.stringify(id)} not found`), `the message: ${error.message}`);
    },
  },
]);
