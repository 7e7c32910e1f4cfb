import { afterAll, expect, it } from 'vitest';
import { PostgresStore } from '../../adapters/postgres/index.js';
import { createExtendedStore } from '../../src/config/create-extended-store.js';
import { storeConfigFromEnv } from '../../src/config/store-config.js';
import { describePostgres, dropSchema, requirePostgresUrl, uniqueSchemaName } from '../helpers/postgres.js';

/** createExtendedStore() hands every PostgreSQL setting it reads on to the store it opens. */
describePostgres('createExtendedStore on PostgreSQL', () => {
  const schema = uniqueSchemaName('create');
  afterAll(() => dropSchema(schema));

  it('passes schema and preparedStatements from a config object and from the environment', async () => {
    const fromConfig = await createExtendedStore({
      type: 'postgres',
      connection: requirePostgresUrl(),
      schema,
      preparedStatements: false,
    });
    expect(fromConfig).toBeInstanceOf(PostgresStore);
    expect(fromConfig).toMatchObject({ schema, preparedStatements: false });
    await fromConfig.close();

    const fromEnv = await createExtendedStore(
      storeConfigFromEnv({
        KODE_STORE_TYPE: 'postgres',
        DATABASE_URL: requirePostgresUrl(),
        KODE_POSTGRES_SCHEMA: schema,
        KODE_POSTGRES_PREPARED_STATEMENTS: 'false',
      }),
    );
    expect(fromEnv).toMatchObject({ schema, preparedStatements: false });
    await fromEnv.close();

    const byDefault = await createExtendedStore({
      type: 'postgres',
      connection: requirePostgresUrl(),
      schema,
    });
    expect(byDefault).toMatchObject({ preparedStatements: true });
    await byDefault.close();
  });
});
