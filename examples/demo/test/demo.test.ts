// SPDX-License-Identifier: Apache-2.0
/*
 * `npm start`: the demo runs end to end, labels counts as counts and seqs as seqs, says why its
 * invalid record was rejected, and leaves its spool and dead letters in the directory it prints,
 * where the auditor's tool reads them.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupTempDirs, nodeBinary, REPO_ROOT, run, tempDir } from '@kubernaut/test-kit';
import { afterAll, describe, expect, it } from 'vitest';

afterAll(() => cleanupTempDirs());

describe('the demo (npm start)', () => {
  it('exits 0, explains its dead letter and keeps it where it says', async () => {
    const demoDir = join(tempDir(), 'demo');
    // What `npm start` runs: its plain-JavaScript entry, which loads scripts/start.ts.
    const r = await run(nodeBinary(), [join(REPO_ROOT, 'scripts/start.mjs')], {
      env: { DEMO_REMEDIATIONS: '3', DEMO_DIR: demoDir },
      timeoutMs: 120_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('OK: nothing lost, every chain verified.');
    // The verifier's report: a count is labelled as a count, a seq as a seq.
    expect(r.stdout).toContain('rejected (dead letters): 1');
    expect(r.stdout).toMatch(/^ {2}rejected seqs: +22 \(1 record, dead-lettered\)$/m);
    expect(r.stdout).not.toMatch(/^ +rejected: +\d+$/m);
    // Why the invalid record was rejected.
    expect(r.stdout).toMatch(/why: event_category: invalid_enum \(event_category must be one of /);
    // The spool and dead letters are kept, and the command printed to read them works.
    const deadLetters = join(demoDir, 'spool', 'dead-letter.jsonl');
    expect(r.stdout).toContain(`dead letters: ${deadLetters}`);
    expect(r.stdout).toContain(`npx kubernaut-audit dead-letters list ${deadLetters}`);
    expect(existsSync(deadLetters)).toBe(true);
    const list = await run(
      nodeBinary(),
      [
        join(REPO_ROOT, 'packages/audit-verifier/bin/kubernaut-audit.js'),
        'dead-letters',
        'list',
        deadLetters,
      ],
      {},
    );
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^1 dead letter\(s\) in /);
    expect(list.stdout).toContain('invalid_enum');
  });
});
