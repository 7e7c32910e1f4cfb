import { fail } from '../../runner/assertions.js';
import { defineKvCases } from '../kv-case.js';

/** What the suite needs of the harness itself, checked first so that a harness mistake reads as one. */
export const harnessCases = defineKvCases('harness', [
  {
    id: 'uses-suite-clock',
    title:
      'the store keeps time by the clock the suite hands the harness (create: ({ now }) => createKvStore(backend, { now }))',
    async run({ clockProblem }) {
      const problem = await clockProblem();
      if (problem) fail(problem);
    },
  },
]);
