// SPDX-License-Identifier: Apache-2.0
/*
 * The benchmark's burst program runs as JavaScript (bench/lib/compile.ts), so that its peak RSS
 * is an application's and not that of a process carrying Node's type stripper. Checked here:
 * the compiled program and everything it loads run with type stripping switched off.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { compileForChild } from '../../bench/lib/compile.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'bench-compile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function node(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('bench: compileForChild', () => {
  it('compiles the burst and the files it refers to into bench/build, as .mjs', () => {
    const out = compileForChild(join(ROOT, 'bench/scenarios/big-burst.ts'));
    expect(out).toBe(join(ROOT, 'bench/build/scenarios/big-burst.mjs'));
    for (const f of ['scenarios/big-burst', 'lib/records', 'lib/sink', 'lib/sink-process']) {
      const js = readFileSync(join(ROOT, 'bench/build', `${f}.mjs`), 'utf8');
      expect(js, f).not.toMatch(/['"]\.\.?\/[^'"\n]+\.ts['"]/);
      expect(js, f).not.toMatch(/\bimport type\b|: number\b/);
    }
  });

  it('refuses a file outside the benchmark', () => {
    expect(() => compileForChild(join(ROOT, 'package.json'))).toThrow(/not a \.ts file/);
  });

  it('the compiled burst runs without type stripping and delivers every record', () => {
    const templates = join(dir, 'templates.json');
    const made = node(['--conditions=@kubernaut/source', 'bench/lib/make-templates.ts', templates]);
    expect(made.status, made.stderr).toBe(0);
    const out = compileForChild(join(ROOT, 'bench/scenarios/big-burst.ts'));
    for (const baseline of [true, false]) {
      const result = join(dir, `result-${baseline}.json`);
      const run = node(
        [
          '--no-experimental-strip-types',
          out,
          '--records',
          '1500',
          '--outage',
          '0',
          '--dir',
          join(dir, `spool-${baseline}`),
          '--result-file',
          result,
          ...(baseline ? ['--baseline'] : []),
        ],
        { BENCH_TEMPLATES: templates },
      );
      expect(run.status, run.stderr).toBe(0);
      const r = JSON.parse(readFileSync(result, 'utf8')) as { distinct: number; records: number };
      expect(r).toMatchObject({ records: 1500, distinct: 1500 });
    }
  });
});
