import { cp } from 'node:fs/promises';
import { defineConfig } from 'tsup';

// One bundle per public entry point, in both module formats: the KODE SDK is
// CommonJS, most new applications are ESM. Drivers stay external so that an
// application shares its single copy of each with the SDK.
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    sqlite: 'adapters/sqlite/index.ts',
    postgres: 'adapters/postgres/index.ts',
    mongo: 'adapters/mongo/index.ts',
    conformance: 'conformance/index.ts',
    cli: 'bin/kode-store.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  splitting: true,
  shims: true,
  external: ['better-sqlite3', 'pg', 'mongodb', 'vitest'],
  // Lowering class fields for CommonJS renames classes (`_class8`), and ESM renames a class that
  // refers to itself (`_MemoryStore`); error names and stack traces must show the real ones.
  keepNames: true,
  // The studio's interface is hand-written static files: shipped as they are,
  // beside the command line, where bin/studio/studio-assets.ts looks for them.
  onSuccess: () => cp('bin/studio/studio-ui', 'dist/studio-ui', { recursive: true }),
});
