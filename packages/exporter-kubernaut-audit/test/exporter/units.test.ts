// SPDX-License-Identifier: Apache-2.0
/*
 * The exporter's pure parts: backoff, Retry-After, answer classification, configuration
 * resolution; and the dead-letter writer on a real file.
 */
import { rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanupTempDirs, manualClock, readJsonLines, tempDir } from '@kubernaut/test-kit';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveExporterConfig } from '../../src/config/exporter-env.ts';
import {
  backoffDelay,
  MAX_RETRY_AFTER_MILLIS,
  parseRetryAfter,
} from '../../src/deliver/backoff.ts';
import { BearerTokenSource } from '../../src/deliver/bearer-token.ts';
import type { TransportResult } from '../../src/deliver/http-transport.ts';
import { classify } from '../../src/deliver/outcomes.ts';
import {
  DeadLetterFile,
  deadLetterSink,
  defaultDeadLetterPath,
} from '../../src/spool/dead-letter.ts';

const retry = { initialDelayMillis: 1000, maxDelayMillis: 30_000, multiplier: 2, jitter: 0.2 };

describe('backoffDelay', () => {
  it('grows exponentially and is capped', () => {
    const mid = () => 0.5; // no jitter effect
    expect([0, 1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, retry, mid))).toEqual([
      1000, 2000, 4000, 8000, 16_000, 30_000, 30_000,
    ]);
  });
  it('stays within ±jitter of the base', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 40 }),
        fc.double({ min: 0, max: 0.9999, noNaN: true }),
        (a, r) => {
          const base = Math.min(30_000, 1000 * 2 ** a);
          const d = backoffDelay(a, retry, () => r);
          return d >= Math.floor(base * 0.8) && d <= Math.ceil(base * 1.2);
        },
      ),
    );
  });
  it('never exceeds what a timer can wait, jitter included (a longer timeout fires after 1 ms)', () => {
    const huge = { ...retry, initialDelayMillis: 2 ** 31 - 1, maxDelayMillis: 2 ** 31 - 1 };
    expect(backoffDelay(0, huge, () => 0.9999)).toBe(2 ** 31 - 1);
    expect(backoffDelay(3, huge, () => 0.9999)).toBe(2 ** 31 - 1);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-11-22T12:00:00Z');
  it('reads delay-seconds and HTTP dates', () => {
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter('Sun, 22 Nov 2026 12:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter(['5'], now)).toBe(5000);
  });
  it('treats 0 and a date in the past as absent (no tight loop)', () => {
    expect(parseRetryAfter('0', now)).toBeUndefined();
    expect(parseRetryAfter('Sun, 22 Nov 2026 11:00:00 GMT', now)).toBeUndefined();
    expect(parseRetryAfter('Sun, 22 Nov 2026 12:00:00 GMT', now)).toBeUndefined(); // now
  });
  it('ignores garbage and caps huge values', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-1', now)).toBeUndefined();
    expect(parseRetryAfter('999999', now)).toBe(MAX_RETRY_AFTER_MILLIS);
  });
});

describe('classify', () => {
  const res = (
    status: number,
    body?: unknown,
    headers: Record<string, string> = {},
  ): TransportResult => ({
    kind: 'response',
    status,
    headers,
    body,
  });
  /** DataStorage's RFC 7807 answer. */
  const problem = (status: number, type: string, detail: string): TransportResult =>
    res(
      status,
      { type: `https://kubernaut.ai/problems/${type}`, title: 'Validation Error', status, detail },
      { 'content-type': 'application/problem+json' },
    );
  it('maps every answer of the DESIGN §6 table', () => {
    expect(classify(res(201, { event_ids: ['a', 'b', 'c'], message: 'ok' }), 3).kind).toBe(
      'accepted',
    );
    expect(classify(res(202, { status: 'accepted', message: 'queued' }), 3).kind).toBe('accepted');
    expect(
      classify(problem(400, 'validation-error', 'event at index 2 failed validation'), 3),
    ).toMatchObject({
      kind: 'reject-index',
      index: 2,
    });
    // An index outside the request cannot be trusted: bisect.
    expect(
      classify(problem(400, 'validation-error', 'event at index 7 failed validation'), 3).kind,
    ).toBe('bisect');
    expect(
      classify(
        problem(
          400,
          'validation-error',
          'The request did not pass OpenAPI schema validation (2 errors)',
        ),
        3,
      ).kind,
    ).toBe('bisect');
    expect(classify(res(413), 3).kind).toBe('split');
    expect(classify(problem(400, 'batch-size-exceeded', 'batch size 501 exceeds'), 3).kind).toBe(
      'split',
    );
    expect(classify(res(429, undefined, { 'retry-after': '4' }), 3)).toMatchObject({
      kind: 'retry',
      reason: '429',
      retryAfterMillis: 4000,
    });
    expect(classify(res(503), 3)).toMatchObject({ kind: 'retry', reason: '503' });
    expect(classify(res(401), 3)).toMatchObject({ kind: 'retry', auth: true });
    expect(classify(res(403), 3)).toMatchObject({ kind: 'retry', auth: true });
    expect(classify(res(404), 3)).toMatchObject({ kind: 'retry', reason: '404' });
    expect(classify(res(500), 3)).toMatchObject({ kind: 'retry', reason: '500' });
    expect(
      classify({ kind: 'error', reason: 'timeout', code: 'timeout', sent: true }, 3),
    ).toMatchObject({ kind: 'retry', reason: 'timeout', ambiguous: true });
    expect(
      classify({ kind: 'error', reason: 'network', code: 'ECONNREFUSED', sent: false }, 3),
    ).toMatchObject({ kind: 'retry', reason: 'network', ambiguous: false });
  });
  it("takes only DataStorage's own answers as acceptance or as a verdict on an event", () => {
    // 2xx that are not DataStorage's bodies: retried, reported as unexpected.
    expect(classify(res(200, '<html>welcome</html>'), 2)).toMatchObject({
      kind: 'retry',
      unexpected: true,
      ambiguous: false,
    });
    expect(classify(res(204), 2)).toMatchObject({ kind: 'retry', unexpected: true });
    expect(classify(res(200, { status: 'ok' }), 2)).toMatchObject({
      kind: 'retry',
      unexpected: true,
    });
    // DataStorage's codes with another body: it may have stored them (ambiguous).
    expect(classify(res(201, { event_ids: ['a'] }), 2)).toMatchObject({
      kind: 'retry',
      unexpected: true,
      ambiguous: true,
    });
    expect(classify(res(202, { status: 'queued' }), 2)).toMatchObject({
      kind: 'retry',
      unexpected: true,
      ambiguous: true,
    });
    // A 400 that is not DataStorage's problem+json is no verdict on any event.
    expect(classify(res(400, '<html>Bad Request</html>'), 2)).toMatchObject({
      kind: 'retry',
      unexpected: true,
    });
    expect(
      classify(res(400, { detail: 'event at index 1 failed validation' }, {}), 2),
    ).toMatchObject({ kind: 'retry', unexpected: true });
    // 5xx are server errors (poison candidates while others are accepted).
    expect(classify(res(500), 2)).toMatchObject({ kind: 'retry', serverError: true });
  });
});

describe('resolveExporterConfig', () => {
  it('defaults, env fallback, code wins, clamps', () => {
    const d = resolveExporterConfig({}, {});
    expect(d).toMatchObject({
      url: undefined,
      timeoutMillis: 10_000,
      maxBatchSize: 500,
      retry: { initialDelayMillis: 1000, maxDelayMillis: 5000, multiplier: 1.5, jitter: 0.2 },
    });
    const env = {
      KUBERNAUT_AUDIT_ENDPOINT: 'http://env:8080',
      KUBERNAUT_AUDIT_BEARER_TOKEN_FILE: '/t',
    };
    expect(resolveExporterConfig({}, env)).toMatchObject({
      url: 'http://env:8080',
      bearerTokenFile: '/t',
    });
    expect(resolveExporterConfig({ url: 'http://code', bearerTokenFile: '/c' }, env)).toMatchObject(
      {
        url: 'http://code',
        bearerTokenFile: '/c',
      },
    );
    // A token given in code is not replaced by the env's token file.
    expect(resolveExporterConfig({ bearerToken: 'x' }, env).bearerTokenFile).toBeUndefined();
    expect(resolveExporterConfig({ maxBatchSize: 5000 }, {}).maxBatchSize).toBe(500);
    expect(resolveExporterConfig({ maxBatchSize: 0 }, {}).maxBatchSize).toBe(500);
    expect(resolveExporterConfig({ timeoutMillis: Number.NaN }, {}).timeoutMillis).toBe(10_000);
    expect(resolveExporterConfig({ retry: { jitter: 3 } }, {}).retry.jitter).toBe(1);
  });
});

describe("the exporter's dead-letter file (the package's one DeadLetterFile)", () => {
  let tmpDir: string;
  beforeEach(() => {
    tmpDir = tempDir();
  });
  afterEach(() => cleanupTempDirs());

  it('creates the file 0600 in 0700 directories, lazily, and appends JSON lines', () => {
    const path = join(tmpDir, 'a', 'b', 'dead-letter.jsonl');
    const w = new DeadLetterFile({ path });
    expect(() => statSync(join(tmpDir, 'a'))).toThrow(); // nothing before the first entry
    expect(w.write([{ reason: 'rejected', detail: 'd1', status: 400, event: { n: 1 } }])).toBe(1);
    expect(w.write([{ reason: 'expired', detail: 'd2', event: { n: 2 } }])).toBe(1);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(tmpDir, 'a')).mode & 0o777).toBe(0o700);
    const lines = readJsonLines(path);
    expect(lines).toMatchObject([
      { reason: 'rejected', detail: 'd1', status: 400, event: { n: 1 } },
      { reason: 'expired', detail: 'd2', event: { n: 2 } },
    ]);
    expect(lines[1]).not.toHaveProperty('status');
    expect(Date.parse(lines[0]!.time as string)).not.toBeNaN();
    w.close();
  });

  it('never throws when the file cannot be written; the drop is counted', () => {
    const blocker = join(tmpDir, 'file');
    writeFileSync(blocker, 'not a directory');
    const dropped: string[] = [];
    const w = new DeadLetterFile({
      path: join(blocker, 'dl.jsonl'),
      onDropped: (_n, reason) => dropped.push(reason),
    });
    expect(w.write([{ reason: 'rejected', detail: 'd', event: {} }])).toBe(0);
    expect(w.dropped).toBe(1);
    expect(dropped).toEqual(['io_error']);
    w.close();
  });

  it('keeps the provenance of an event it dead-letters for the delivery engine', async () => {
    const path = join(tmpDir, 'dl.jsonl');
    const file = new DeadLetterFile({ path });
    const sink = deadLetterSink(() => file);
    const event = {
      correlation_id: 'c',
      event_data: { audit_provenance: { producer_id: 'p', session_id: 's', seq: 7 } },
    };
    expect(await sink.write([{ reason: 'rejected', detail: 'd', status: 400, event }])).toBe(1);
    expect(readJsonLines(path)[0]).toMatchObject({
      reason: 'rejected',
      status: 400,
      event: { audit_provenance: { producer_id: 'p', session_id: 's', seq: 7 } },
    });
    file.close();
  });

  it('default path: <tmpdir>/kubernaut-audit/<service>/dead-letter.jsonl', () => {
    expect(defaultDeadLetterPath({ OTEL_SERVICE_NAME: 'pay/ments' })).toMatch(
      /kubernaut-audit[/\\]pay_ments[/\\]dead-letter\.jsonl$/,
    );
    expect(defaultDeadLetterPath({})).toMatch(
      /kubernaut-audit[/\\]default[/\\]dead-letter\.jsonl$/,
    );
  });
});

describe('BearerTokenSource', () => {
  let tmpDir: string;
  beforeEach(() => {
    tmpDir = tempDir();
  });
  afterEach(() => cleanupTempDirs());

  it('re-reads the token file when it changed (checked at most every interval) and when invalidated; keeps the last good token', async () => {
    const file = join(tmpDir, 'token');
    writeFileSync(file, 'one\n');
    const clock = manualClock(0);
    const errors: string[] = [];
    const src = new BearerTokenSource({
      file,
      checkIntervalMillis: 1000,
      now: clock.now,
      onReadError: (c) => errors.push(c),
    });
    expect(await src.authorization()).toBe('Bearer one');
    writeFileSync(file, 'two');
    clock.set(999);
    expect(await src.authorization()).toBe('Bearer one'); // not checked yet
    clock.set(1000);
    expect(await src.authorization()).toBe('Bearer two'); // checked: it changed
    writeFileSync(file, 'three');
    src.invalidate();
    expect(await src.authorization()).toBe('Bearer three'); // after a 401
    rmSync(file);
    src.invalidate();
    expect(await src.authorization()).toBe('Bearer three'); // file gone: last good token
    expect(errors).toEqual(['ENOENT']);
  });

  it('a fixed token, or none', async () => {
    expect(await new BearerTokenSource({ token: 't' }).authorization()).toBe('Bearer t');
    expect(await new BearerTokenSource({}).authorization()).toBeUndefined();
  });
});
