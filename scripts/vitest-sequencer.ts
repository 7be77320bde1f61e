// SPDX-License-Identifier: Apache-2.0
/*
 * The suite's order of test files: Vitest's (failed first, then by the last run's durations,
 * then the larger files first), except that the files known to run for minutes start first in
 * their group. On a fresh clone Vitest knows no durations and orders by size, which put the
 * schemathesis run (a small file, ≈ 2 min) among the last: two minutes of one worker alone at
 * the end of the run.
 */
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** The longest files, longest first (seconds on 2 cores, in a full run). */
const LONG = [
  'test/peers/schemathesis.test.ts', // ≈ 130 s: schemathesis's generation (Python)
  'examples/demo/test/hostile.test.ts', // ≈ 110 s: ≈ 20 runs of `npm start`
];

const rank = (spec: TestSpecification): number => {
  const i = LONG.findIndex((f) => spec.moduleId.endsWith(f));
  return i === -1 ? LONG.length : i;
};

export default class LongFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    // Stable: within a group (sequence.groupOrder), the long files first, the rest as Vitest had them.
    return sorted.sort(
      (a, b) =>
        a.project.config.sequence.groupOrder - b.project.config.sequence.groupOrder ||
        rank(a) - rank(b),
    );
  }
}
