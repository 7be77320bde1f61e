// SPDX-License-Identifier: Apache-2.0
/*
 * `npm start`'s entry (scripts/start.mjs) under a Node.js that cannot run the repository's
 * TypeScript: one line saying what is needed and how to run it instead, exit code 1, before
 * anything else runs. (Under the project's Node 24 it runs the demo: test/demo.test.ts.)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodeBinary, REPO_ROOT, run } from '@kubernaut/test-kit';
import { describe, expect, it } from 'vitest';

const ENTRY = join(REPO_ROOT, 'scripts/start.mjs');
/** The machine's own Node.js, older than the project's (Node 20 on the CI image). */
const SYSTEM_NODE = '/usr/bin/node';
const systemVersion = existsSync(SYSTEM_NODE)
  ? execFileSync(SYSTEM_NODE, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim()
  : undefined;
const [major = 0, minor = 0] = (systemVersion ?? '0.0').split('.').map(Number);
const tooOld = systemVersion !== undefined && (major < 22 || (major === 22 && minor < 18));

describe('npm start entry', () => {
  it('npm start runs scripts/start.mjs', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts.start).toBe('node scripts/start.mjs');
  });

  it('under a Node.js with type stripping turned off: one clear line and exit code 1', async () => {
    // The project's own Node without type stripping stands for any Node that lacks it, on every
    // machine (the case below needs an old system Node).
    const r = await run(nodeBinary(), ['--no-experimental-strip-types', ENTRY], {
      timeoutMs: 30_000,
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^npm start: the demo needs Node\.js >= 22\.18 with TypeScript type stripping; this is v\d+\.\d+\.\d+ \(.+\)\. Run `npm start`, which uses the project's own Node\.\n$/,
    );
  });

  it.skipIf(!tooOld)(
    `under ${SYSTEM_NODE} (Node ${systemVersion}): one clear line and exit code 1`,
    async () => {
      const r = await run(SYSTEM_NODE, [ENTRY], { timeoutMs: 30_000 });
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        `npm start: the demo needs Node.js >= 22.18 with TypeScript type stripping; this is v${systemVersion} (${SYSTEM_NODE}). Run \`npm start\`, which uses the project's own Node.\n`,
      );
    },
  );
});
