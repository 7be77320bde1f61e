// SPDX-License-Identifier: Apache-2.0
/*
 * `npm start` on a machine and in a world that do not cooperate: two runs at once, Ctrl-C and
 * SIGTERM midway, settings the demo cannot use, a directory it cannot write, another working
 * directory, more events than one query page. Each run is a real `node scripts/start.ts` child
 * process; the signal tests run it in a process group of its own, as a terminal would.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cleanupTempDirs, nodeBinary, REPO_ROOT, run, tempDir } from '@kubernaut/test-kit';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

const START = join(REPO_ROOT, 'scripts/start.ts');
const OK_LINE = 'OK: nothing lost, every chain verified.';

const baseEnv = (extra: Record<string, string>): Record<string, string> => ({
  PATH: process.env.PATH ?? '',
  HOME: process.env.HOME ?? '/tmp',
  ...extra,
});

/** `npm start` as a process-group leader (as a terminal's foreground job is). */
function startGroup(env: Record<string, string>): {
  child: ChildProcess;
  output: () => string;
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
} {
  const child = spawn(nodeBinary(), [START], {
    cwd: REPO_ROOT,
    env: baseEnv(env),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  groups.push(child.pid as number);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d));
  child.stderr?.on('data', (d: Buffer) => (out += d));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once('close', (code, signal) => done({ code, signal })),
  );
  return { child, output: () => out, closed };
}

/** Resolves when the child's stdout has printed `text`; rejects if it ends first. */
function printed(child: ChildProcess, text: string): Promise<void> {
  return new Promise((done, fail) => {
    let seen = '';
    const onData = (d: Buffer) => {
      seen += d;
      if (seen.includes(text)) {
        child.stdout?.off('data', onData);
        done();
      }
    };
    child.stdout?.on('data', onData);
    child.once('close', () => fail(new Error(`ended before printing ${JSON.stringify(text)}`)));
  });
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Bounded poll: nothing else tells when the last process of a group is gone. */
async function groupGone(pgid: number, timeoutMs = 5_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (groupAlive(pgid)) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

const groups: number[] = [];
afterEach(() => {
  // Whatever a failing test left running.
  for (const pgid of groups.splice(0)) {
    if (groupAlive(pgid)) process.kill(-pgid, 'SIGKILL');
  }
});
afterAll(() => cleanupTempDirs());

describe('npm start in a hostile world', () => {
  it('two runs at the same time both succeed, and the directory holds one complete run', async () => {
    const parent = tempDir();
    const demoDir = join(parent, 'demo');
    const env = { DEMO_REMEDIATIONS: '10', DEMO_DIR: demoDir };
    // The second starts while the first starts its DataStorage.
    const a = startGroup(env);
    await printed(a.child, 'starting the reference DataStorage');
    const b = await run(nodeBinary(), [START], { env, timeoutMs: 110_000 });
    const first = await a.closed;
    expect(first.code, a.output()).toBe(0);
    expect(b.code, b.stdout + b.stderr).toBe(0);
    expect(a.output()).toContain(OK_LINE);
    expect(b.stdout).toContain(OK_LINE);
    expect(existsSync(join(demoDir, 'spool', 'dead-letter.jsonl'))).toBe(true);
    // No per-run directory or token file is left beside it.
    expect(readdirSync(parent)).toEqual(['demo']);
    expect(readdirSync(join(demoDir))).toEqual(['spool']);
  }, 130_000);

  for (const [how, signal, code] of [
    ['SIGTERM to npm start', 'SIGTERM', 143],
    ['Ctrl-C (SIGINT to the foreground process group)', 'SIGINT', 130],
  ] as const) {
    it(`${how} midway: exits promptly, non-zero, leaves nothing running, the next run works`, async () => {
      const parent = tempDir();
      const demoDir = join(parent, 'demo');
      const tmp = tempDir();
      const env = { DEMO_REMEDIATIONS: '30', DEMO_DIR: demoDir, TMPDIR: tmp };
      const demo = startGroup(env);
      await printed(demo.child, 'emitted 6/30 remediations');
      const sentAt = Date.now();
      const pgid = demo.child.pid as number;
      if (signal === 'SIGINT') process.kill(-pgid, signal);
      else demo.child.kill(signal);
      const { code: exitCode, signal: exitSignal } = await demo.closed;
      expect(Date.now() - sentAt).toBeLessThan(5_000);
      // Non-zero: killed by the signal, or the shell's 128 + signal number.
      expect(
        exitSignal === signal || exitCode === code,
        `code ${exitCode}, signal ${exitSignal}`,
      ).toBe(true);
      expect(await groupGone(pgid), `processes left:\n${demo.output()}`).toBe(true);
      expect(demo.output()).not.toContain(OK_LINE);
      // No token (nor a half-made run directory) left behind.
      expect(readdirSync(tmp).filter((f) => f.startsWith('kubernaut'))).toEqual([]);
      expect(readdirSync(parent).filter((f) => f !== 'demo')).toEqual([]);

      const next = await run(nodeBinary(), [START], {
        env: { ...env, DEMO_REMEDIATIONS: '2' },
        timeoutMs: 60_000,
      });
      expect(next.code, next.stdout + next.stderr).toBe(0);
      expect(next.stdout).toContain(OK_LINE);
    }, 90_000);
  }

  it('its output closed midway (`npm start | head`): stops tidily, as SIGPIPE would, nothing left', async () => {
    const parent = tempDir();
    const tmp = tempDir();
    const demo = startGroup({
      DEMO_REMEDIATIONS: '30',
      DEMO_DIR: join(parent, 'demo'),
      TMPDIR: tmp,
    });
    await printed(demo.child, 'emitted 6/30 remediations');
    // The reader goes away, as `head` does once it has its lines: the demo's next line fails.
    demo.child.stdout?.destroy();
    const { code } = await demo.closed;
    const pgid = demo.child.pid as number;
    expect(code, demo.output()).toBe(141);
    expect(demo.output()).toContain('its output is closed: the demo stops here');
    expect(demo.output()).not.toMatch(/EPIPE\n\s+at |Unhandled 'error' event/);
    expect(await groupGone(pgid), `processes left:\n${demo.output()}`).toBe(true);
    // No token, no run directory left behind.
    expect(readdirSync(tmp).filter((f) => f.startsWith('kubernaut'))).toEqual([]);
    expect(readdirSync(parent)).toEqual([]);
  }, 60_000);

  it('SIGTERM to the npm process (as `timeout 60 npm start` sends): the demo stops too', async () => {
    const demoDir = join(tempDir(), 'demo');
    // npm runs the script under `sh -c`; the SIGTERM it forwards ends that shell only.
    const npm = spawn('npm', ['start'], {
      cwd: REPO_ROOT,
      env: baseEnv({ DEMO_REMEDIATIONS: '100', DEMO_DIR: demoDir }),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pgid = npm.pid as number;
    groups.push(pgid);
    let out = '';
    npm.stdout.on('data', (d: Buffer) => (out += d));
    npm.stderr.on('data', (d: Buffer) => (out += d));
    const closed = new Promise<number | null>((done) => npm.once('close', (code) => done(code)));
    await printed(npm, 'emitted 6/100 remediations');
    const sentAt = Date.now();
    npm.kill('SIGTERM');
    const code = await closed; // also waits for whatever holds its stdout: the demo
    expect(Date.now() - sentAt).toBeLessThan(5_000);
    expect(code).not.toBe(0);
    expect(await groupGone(pgid), `processes left:\n${out}`).toBe(true);
    expect(out).not.toContain('emitted 100/100');
  }, 60_000);

  it('npm start killed (SIGKILL) midway: the demo does not run on without it', async () => {
    const demoDir = join(tempDir(), 'demo');
    const demo = startGroup({ DEMO_REMEDIATIONS: '100', DEMO_DIR: demoDir });
    await printed(demo.child, 'emitted 6/100 remediations');
    const pgid = demo.child.pid as number;
    const sentAt = Date.now();
    demo.child.kill('SIGKILL');
    await demo.closed; // also waits for whatever holds its stdout: the demo
    expect(Date.now() - sentAt).toBeLessThan(5_000);
    expect(await groupGone(pgid), `processes left:\n${demo.output()}`).toBe(true);
    expect(demo.output()).not.toContain('emitted 100/100');
  }, 60_000);

  it('OTEL_SDK_DISABLED=true: says so and exits non-zero (no hang, no summary)', async () => {
    const r = await run(nodeBinary(), [START], {
      env: { DEMO_REMEDIATIONS: '2', DEMO_DIR: join(tempDir(), 'demo'), OTEL_SDK_DISABLED: 'true' },
      timeoutMs: 30_000,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('OTEL_SDK_DISABLED=true');
    expect(r.stdout).not.toContain('Summary');
  }, 40_000);

  for (const [name, value] of [
    ['DEMO_REMEDIATIONS', 'abc'],
    ['DEMO_REMEDIATIONS', '0'],
    ['DEMO_REMEDIATIONS', '-3'],
    ['DEMO_REMEDIATIONS', '2.5'],
    ['DEMO_PACE_MS', '-1'],
    ['DEMO_PACE_MS', 'fast'],
    ['DEMO_PACE_MS', '99999'],
  ] as const) {
    it(`${name}=${value}: a clear message, exit 1, nothing started`, async () => {
      const r = await run(nodeBinary(), [START], {
        env: { DEMO_REMEDIATIONS: '2', [name]: value, DEMO_DIR: join(tempDir(), 'demo') },
        timeoutMs: 30_000,
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${name}="${value}"`);
      expect(r.stdout).not.toContain('starting the reference DataStorage');
    });
  }

  it('a directory it cannot create: a clear message naming it, exit 1, no stack trace', async () => {
    const file = join(tempDir(), 'not-a-directory');
    writeFileSync(file, '');
    const r = await run(nodeBinary(), [START], {
      env: { DEMO_REMEDIATIONS: '2', DEMO_DIR: join(file, 'demo') },
      timeoutMs: 30_000,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(join(file, 'demo'));
    expect(r.stderr).toContain('DEMO_DIR');
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it('DEMO_DIR naming a directory with other things in it: left alone, exit 1', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'precious.txt'), 'keep me');
    const r = await run(nodeBinary(), [START], {
      env: { DEMO_REMEDIATIONS: '2', DEMO_DIR: dir },
      timeoutMs: 60_000,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`DEMO_DIR=${dir} holds more than a previous demo's spool`);
    expect(readdirSync(dir)).toEqual(['precious.txt']);
  });

  it('DEMO_DIR set but empty: the default directory, never the working directory', async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, 'precious.txt'), 'keep me');
    const tmp = tempDir();
    const r = await run(nodeBinary(), [START], {
      env: { DEMO_REMEDIATIONS: '2', DEMO_DIR: '', TMPDIR: tmp },
      cwd,
      timeoutMs: 60_000,
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readdirSync(cwd)).toEqual(['precious.txt']);
    expect(existsSync(join(tmp, 'kubernaut-audit-demo', 'spool', 'dead-letter.jsonl'))).toBe(true);
  });

  const defaultSpec = resolve(REPO_ROOT, '../shared/kubernaut/data-storage-v1.yaml');
  it.runIf(existsSync(defaultSpec))(
    'run from another working directory: still finds the spec beside the repository',
    async () => {
      const r = await run(nodeBinary(), [START], {
        env: { DEMO_REMEDIATIONS: '2', DEMO_DIR: join(tempDir(), 'demo') },
        cwd: tempDir(),
        timeoutMs: 60_000,
      });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain('full OpenAPI validation on');
    },
  );

  it('more events than one query page: the summary counts all of them from DataStorage', async () => {
    // 143 remediations = 1001 events, one more than DataStorage returns per query.
    const r = await run(nodeBinary(), [START], {
      env: { DEMO_REMEDIATIONS: '143', DEMO_PACE_MS: '0', DEMO_DIR: join(tempDir(), 'demo') },
      timeoutMs: 100_000,
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ {2}accepted and queryable +1001$/m);
    expect(r.stdout).toMatch(/^ {2}lost +0$/m);
  }, 110_000);
});
