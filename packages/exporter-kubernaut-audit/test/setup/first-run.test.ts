// SPDX-License-Identifier: Apache-2.0
/*
 * A first run that explains itself: without a diag logger, problems go to stderr (one line per
 * kind); an invalid OTEL_BLRP_* value, a missing service.name and an unsupported Node.js are
 * reported; the README's Quick start with DataStorage unreachable is not silent.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { scanSpool } from '@kubernaut/audit-spool-format';
import { captureDiag, cleanupTempDirs, nodeBinary, tempDir } from '@kubernaut/test-kit';
import { diag } from '@opentelemetry/api';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ComponentDiag,
  isDiagLoggerRegistered,
  STDERR_FALLBACK_NOTE,
  StderrFallback,
} from '../../src/measure/diag.ts';
import { isSupportedNodeVersion } from '../../src/setup-checks/node-version.ts';
import { checkServiceName, resetServiceNameCheck } from '../../src/setup-checks/service-name.ts';

const QUICK_START = fileURLToPath(new URL('./fixtures/quick-start.ts', import.meta.url));
const DROPS_CHILD = fileURLToPath(new URL('./fixtures/drops-child.ts', import.meta.url));

afterAll(() => cleanupTempDirs());

/** Runs a fixture with `env` to its end: its exit code and output. */
async function runChild(
  file: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(nodeBinary(), ['--conditions=@kubernaut/source', file], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, stdout, stderr };
}

/** A port that refuses connections: listen, note the port, close. */
function refusedPort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function fakeFallback() {
  const lines: string[] = [];
  let now = 1_000_000;
  const fallback = new StderrFallback({ write: (l) => lines.push(l), now: () => now });
  return { lines, fallback, advance: (ms: number) => (now += ms) };
}

describe('the stderr fallback of ComponentDiag', () => {
  beforeEach(() => diag.disable());
  afterEach(() => diag.disable());

  it('without a diag logger: one stderr line per kind, the first at once, then at most one a minute', async () => {
    expect(isDiagLoggerRegistered()).toBe(false);
    const { lines, fallback, advance } = fakeFallback();
    const d = new ComponentDiag('AuditLogRecordProcessor', { fallback, intervalMillis: 10 });
    d.report('warn', 'retry:network', 'delivery to DataStorage will be retried (ECONNREFUSED)', 5);
    d.report('warn', 'retry:network', 'delivery to DataStorage will be retried (ECONNREFUSED)', 5);
    // The diag interval ends: its summary, same kind within the minute, is held back (carried).
    await new Promise((r) => setTimeout(r, 30));
    d.report('error', 'auth:401', 'DataStorage refused the credentials (HTTP 401)', 1);
    d.log('info', 'started'); // info and debug never go to stderr
    expect(lines).toEqual([
      `${STDERR_FALLBACK_NOTE}\n`,
      '[kubernaut-audit] warn AuditLogRecordProcessor: delivery to DataStorage will be retried (ECONNREFUSED)\n',
      '[kubernaut-audit] error AuditLogRecordProcessor: DataStorage refused the credentials (HTTP 401)\n',
    ]);
    advance(60_000);
    d.report('warn', 'retry:network', 'delivery to DataStorage will be retried (ETIMEDOUT)', 1);
    expect(lines.at(-1)).toBe(
      '[kubernaut-audit] warn AuditLogRecordProcessor: delivery to DataStorage will be retried (ETIMEDOUT)\n',
    );
    expect(lines).toHaveLength(4);
    d.warn('invalid OTEL_BLRP_SCHEDULE_DELAY', new Error('expected an integer'));
    expect(lines.at(-1)).toBe(
      '[kubernaut-audit] warn AuditLogRecordProcessor: invalid OTEL_BLRP_SCHEDULE_DELAY: expected an integer\n',
    );
  });

  it('what the rate limit held back is counted in the next summary, and the last summaries (shutdown) always print', async () => {
    const { lines, fallback, advance } = fakeFallback();
    const d = new ComponentDiag('AuditLogRecordProcessor', { fallback, intervalMillis: 5 });
    const drops = (n: number) =>
      d.report('error', 'dropped:full', 'audit records dropped: the spool is full', n);
    drops(1); // shown
    drops(999); // counted in this slot
    await new Promise((r) => setTimeout(r, 30)); // the slot's interval ends: its summary is held back (same minute)
    drops(1000); // a new slot: its first line is held back too
    drops(994);
    advance(1_000);
    d.flush(); // shutdown: everything not shown yet, in one line, past the limit
    expect(lines.slice(1)).toEqual([
      '[kubernaut-audit] error AuditLogRecordProcessor: audit records dropped: the spool is full\n',
      '[kubernaut-audit] error AuditLogRecordProcessor: audit records dropped: the spool is full (2993 more since the last line about it)\n',
    ]);
    d.flush(); // nothing left to say
    expect(lines).toHaveLength(3);
  });

  it('a diag logger registered (even after the component was made) takes the lines over', () => {
    const { lines, fallback } = fakeFallback();
    const d = new ComponentDiag('KubernautAuditExporter', { fallback });
    const captured = captureDiag();
    try {
      expect(isDiagLoggerRegistered()).toBe(true);
      d.report('warn', 'retry:503', 'delivery to DataStorage will be retried (HTTP 503)');
      expect(lines).toEqual([]);
      expect(captured.messages).toEqual([
        'KubernautAuditExporter delivery to DataStorage will be retried (HTTP 503)',
      ]);
    } finally {
      captured.restore();
    }
  });

  it('a component given its own logger never falls back', () => {
    const { lines, fallback } = fakeFallback();
    const seen: string[] = [];
    const push = (m: string) => seen.push(m);
    const d = new ComponentDiag('bridge', {
      fallback,
      logger: { error: push, warn: push, info: push, debug: push, verbose: push },
    });
    d.warn('to my logger');
    expect(seen).toEqual(['to my logger']);
    expect(lines).toEqual([]);
  });
});

describe('set-up checks', () => {
  beforeEach(() => {
    diag.disable();
    resetServiceNameCheck();
  });

  it('a missing service.name is reported once, only when it becomes the actor id', () => {
    const { lines, fallback } = fakeFallback();
    const d = new ComponentDiag('AuditLogRecordProcessor', { fallback });
    const unknown = { attributes: { 'service.name': 'unknown_service:/usr/bin/node' } };
    expect(
      checkServiceName({ attributes: { 'audit.actor.id': 'alice' }, resource: unknown }, d),
    ).toBe(false);
    expect(
      checkServiceName({ attributes: { 'audit.actor.type': 'user' }, resource: unknown }, d),
    ).toBe(false);
    expect(
      checkServiceName(
        { attributes: {}, resource: { attributes: { 'service.name': 'payments' } } },
        d,
      ),
    ).toBe(false);
    expect(lines).toEqual([]);
    expect(checkServiceName({ attributes: {}, resource: unknown }, d)).toBe(true);
    expect(checkServiceName({ attributes: {}, resource: unknown }, d)).toBe(false);
    expect(lines.join('')).toContain(
      'service.name is not set: audit events without audit.actor.id are attributed to actor_id "unknown_service:/usr/bin/node". Set OTEL_SERVICE_NAME',
    );
    expect(lines.filter((l) => l.includes('service.name'))).toHaveLength(1);
  });

  it('Node.js older than 22.15 is not supported', () => {
    expect(isSupportedNodeVersion('20.20.2')).toBe(false);
    expect(isSupportedNodeVersion('v22.14.9')).toBe(false);
    expect(isSupportedNodeVersion('22.15.0')).toBe(true);
    expect(isSupportedNodeVersion('24.21.0')).toBe(true);
    expect(isSupportedNodeVersion(process.versions.node)).toBe(true);
  });
});

describe('a short program that drops records, without a diag logger', () => {
  it.each([
    ['AuditLogRecordProcessor', ''],
    ['ThreadedAuditLogRecordProcessor', 'threaded'],
  ])(
    '%s: the stderr lines about the drops add up to the records dropped',
    async (_name, kind) => {
      const refused = await refusedPort();
      const dir = tempDir();
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        DS_URL: `http://127.0.0.1:${refused}`,
        SPOOL_DIR: dir,
        COUNT: '300',
        PROCESSOR: kind,
      };
      delete env.OTEL_LOG_LEVEL;
      const { code, stdout, stderr } = await runChild(DROPS_CHILD, env);
      expect(code).toBe(0);
      expect(stdout).toContain('DONE');
      const spooled = scanSpool(dir).records;
      expect(spooled).toBeGreaterThan(0);
      expect(spooled).toBeLessThan(300);
      // "<n> audit records dropped: the spool is full …", the summary adding "(<m> more since …)".
      let told = 0;
      for (const line of stderr
        .split('\n')
        .filter((l) => l.includes('dropped: the spool is full'))) {
        const more = /\((\d+) more since the last line about it\)/.exec(line);
        told +=
          more !== null ? Number(more[1]) : Number(/(\d+) audit records dropped/.exec(line)?.[1]);
      }
      expect(told).toBe(300 - spooled);
    },
    60_000,
  );
});

describe("the README's NodeSDK Quick start with DataStorage unreachable", () => {
  it.each([
    ['AuditLogRecordProcessor', ''],
    ['ThreadedAuditLogRecordProcessor', 'threaded'],
  ])('%s is not silent: stderr says what is wrong, one line per kind, and where the records are', async (_name, kind) => {
    const refused = await refusedPort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DS_URL: `http://127.0.0.1:${refused}`,
      KUBERNAUT_AUDIT_SPOOL_DIR: tempDir(),
      OTEL_BLRP_SCHEDULE_DELAY: 'soon',
      OTEL_TRACES_EXPORTER: 'none',
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: 'none',
      FLUSH_MILLIS: '3500',
      PROCESSOR: kind,
    };
    delete env.OTEL_SERVICE_NAME;
    delete env.OTEL_LOG_LEVEL;
    delete env.OTEL_RESOURCE_ATTRIBUTES;
    const { code, stdout, stderr } = await runChild(QUICK_START, env);
    expect(code).toBe(0);
    const lines = stderr.split('\n').filter(Boolean);
    expect(lines[0]).toBe(STDERR_FALLBACK_NOTE);
    expect(lines.filter((l) => l === STDERR_FALLBACK_NOTE)).toHaveLength(1);
    // The option rules report as AuditLogRecordProcessor (the threaded one resolves with them).
    expect(stderr).toContain(
      '[kubernaut-audit] warn AuditLogRecordProcessor: ignoring OTEL_BLRP_SCHEDULE_DELAY="soon": expected an integer >= 0; using the default',
    );
    expect(lines.filter((l) => l.includes('OTEL_BLRP_SCHEDULE_DELAY'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('service.name is not set'))).toHaveLength(1);
    // Several retries within the flush timeout (1 s, then 2 s backoff), one line for the kind.
    const retries = lines.filter((l) => l.includes('delivery to DataStorage will be retried'));
    expect(retries).toHaveLength(1);
    expect(retries[0]).toContain('ECONNREFUSED');
    expect(stdout).toMatch(/flush: .*3 record\(s\) not yet delivered \(kept in the spool\)/);
  });
});
