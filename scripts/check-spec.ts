// SPDX-License-Identifier: Apache-2.0
// Fails the test run early, with a clear message, when the upstream spec is missing.
import { specPath } from '../packages/test-kit/src/spec.ts';

try {
  console.log(`DataStorage spec: ${specPath()}`);
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}
