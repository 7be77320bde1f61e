// SPDX-License-Identifier: Apache-2.0
/*
 * The exporter's answer handling (DESIGN §6) against the fault-injecting loopback
 * DataStorage, through `deliverEvents()` (the spool sender's entry point): exact received
 * counts, outcomes, dead letters and metrics for each fault.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEventRequest } from '@kubernaut/datastorage-contract';
import type {
  KubernautAuditExporter,
  KubernautAuditExporterOptions,
} from '@kubernaut/exporter-kubernaut-audit';
import { deliverEvents } from '@kubernaut/exporter-kubernaut-audit/experimental';
import {
  auditEvent,
  auditEvents,
  cleanupTempDirs,
  FaultServer,
  manualClock,
  readJsonLines,
  recordingSleeper,
  type TestMetrics,
  tempDir,
  testMetrics,
} from '@kubernaut/test-kit';
import { type DiagLogger, DiagLogLevel, diag } from '@opentelemetry/api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createExporter, type KubernautAuditExporterInternals } from '../../src/exporter/create.ts';

let ds: FaultServer;
let tmpDir: string;
let metrics: TestMetrics;
let exporters: KubernautAuditExporter[];

beforeEach(async () => {
  ds = await FaultServer.start();
  tmpDir = tempDir();
  metrics = testMetrics();
  exporters = [];
});

afterEach(async () => {
  for (const e of exporters) await e.shutdown();
  await ds.close();
  cleanupTempDirs();
  expect(ds.specViolations).toEqual([]);
});

const deadLetterPath = () => join(tmpDir, 'dl', 'dead-letter.jsonl');

function exporter(
  options: KubernautAuditExporterOptions = {},
  internals: KubernautAuditExporterInternals = {},
): KubernautAuditExporter {
  const e = createExporter(
    {
      url: ds.url,
      meterProvider: metrics.meterProvider,
      retry: { initialDelayMillis: 5, maxDelayMillis: 20 },
      ...options,
    },
    { deadLetterPath: deadLetterPath(), env: {}, ...internals },
  );
  exporters.push(e);
  return e;
}

const ids = (events: AuditEventRequest[]) => events.map((e) => e.correlation_id);
const receivedIds = () => ds.received().map((s) => s.event.correlation_id);

describe('deliverEvents() against a faulty DataStorage', () => {
  it('delivers in order when all is well', async () => {
    const events = auditEvents(7);
    const r = await deliverEvents(exporter(), events);
    expect(r.outcomes).toEqual(Array(7).fill('accepted'));
    expect(receivedIds()).toEqual(ids(events));
    expect(ds.requests).toHaveLength(1);
    expect(ds.received().every((s) => s.status === 201)).toBe(true);
  });

  it('retries through a run of 503s and sends each event exactly once', async () => {
    ds.inject({ type: 'unavailable' }, 4);
    const events = auditEvents(10);
    const r = await deliverEvents(exporter(), events);
    expect(r.outcomes).toEqual(Array(10).fill('accepted'));
    expect(ds.requests.map((q) => q.status)).toEqual([503, 503, 503, 503, 201]);
    expect(receivedIds()).toEqual(ids(events));
    expect(ds.duplicates()).toBe(0);
    expect(await metrics.sum('kubernaut.audit.retries', { 'kubernaut.audit.reason': '503' })).toBe(
      4,
    );
  });

  it('honours Retry-After of a 429 (seconds and HTTP date) instead of its own backoff', async () => {
    // A fixed clock, shared by the client and the server: the test passes on any date.
    const now = Date.parse('2026-11-22T10:00:00Z');
    await ds.close();
    ds = await FaultServer.start({ now: () => now });
    ds.inject({ type: 'rate-limited', retryAfter: '2' });
    ds.inject({ type: 'rate-limited', retryAfter: new Date(now + 7000).toUTCString() });
    ds.inject({ type: 'rate-limited' });
    const s = recordingSleeper();
    const events = auditEvents(3);
    const r = await deliverEvents(
      exporter(
        { retry: { initialDelayMillis: 100, maxDelayMillis: 1000, multiplier: 2, jitter: 0 } },
        { sleep: s.sleep, now: () => now },
      ),
      events.map((e) => ({ ...e, event_timestamp: new Date(now).toISOString() })),
    );
    expect(r.outcomes).toEqual(['accepted', 'accepted', 'accepted']);
    // 2 s from the header, 7 s from the date, then backoff (third retry: 100 * 2^2).
    expect(s.delays).toEqual([2000, 7000, 400]);
    expect(ds.requests.map((q) => q.status)).toEqual([429, 429, 429, 201]);
    expect(ds.received()).toHaveLength(3);
  });

  it('backs off exponentially with jitter, capped at maxDelayMillis', async () => {
    ds.inject({ type: 'status', status: 500 }, 5);
    const s = recordingSleeper();
    const r = await deliverEvents(
      exporter(
        { retry: { initialDelayMillis: 100, maxDelayMillis: 500, multiplier: 2, jitter: 0.2 } },
        { sleep: s.sleep, random: () => 1 - Number.EPSILON },
      ),
      auditEvents(1),
    );
    expect(r.outcomes).toEqual(['accepted']);
    // base 100, 200, 400, 500, 500, each +20% (random → 1).
    expect(s.delays).toEqual([120, 240, 480, 600, 600]);
  });

  it('by default, retries through an outage are never more than 6 s apart (first delivery ≤ 6 s after DataStorage is back)', async () => {
    ds.inject({ type: 'status', status: 503 }, 12);
    const s = recordingSleeper();
    const r = await deliverEvents(
      exporter({ retry: undefined }, { sleep: s.sleep, random: () => 1 - Number.EPSILON }),
      auditEvents(1),
    );
    expect(r.outcomes).toEqual(['accepted']);
    // OTel's OTLP exporters' schedule: 1 s, ×1.5, at most 5 s; +20 % jitter (random → 1).
    expect(s.delays).toEqual([
      1200, 1800, 2700, 4050, 6000, 6000, 6000, 6000, 6000, 6000, 6000, 6000,
    ]);
  });

  it('400 naming an index: that event is dead-lettered with the detail, the rest delivered', async () => {
    ds.inject({ type: 'reject-index', index: 2 });
    const events = auditEvents(5);
    const r = await deliverEvents(exporter(), events);
    expect(r.outcomes).toEqual(['accepted', 'accepted', 'dead_lettered', 'accepted', 'accepted']);
    expect(receivedIds()).toEqual(ids([events[0]!, events[1]!, events[3]!, events[4]!]));
    expect(ds.requests.map((q) => [q.events, q.status])).toEqual([
      [5, 400],
      [4, 201],
    ]);
    const dl = readJsonLines(deadLetterPath());
    expect(dl).toHaveLength(1);
    expect(dl[0]).toMatchObject({
      reason: 'rejected',
      status: 400,
      detail: 'event at index 2 failed validation',
      event: events[2],
    });
    expect(typeof dl[0]!.time).toBe('string');
    expect(
      await metrics.sum('kubernaut.audit.dead_lettered', { 'kubernaut.audit.reason': 'rejected' }),
    ).toBe(1);
  });

  it('400 without an index: bisects until exactly the offending event is dead-lettered', async () => {
    const events = auditEvents(9);
    const bad = events[6]!.correlation_id;
    ds.poison((e) => e.correlation_id === bad, 'schema');
    const r = await deliverEvents(exporter(), events);
    expect(r.outcomes.filter((o) => o === 'dead_lettered')).toHaveLength(1);
    expect(r.outcomes[6]).toBe('dead_lettered');
    expect(receivedIds()).toEqual(ids(events.filter((e) => e.correlation_id !== bad)));
    const dl = readJsonLines(deadLetterPath());
    expect(dl.map((d) => (d.event as AuditEventRequest).correlation_id)).toEqual([bad]);
    expect(dl[0]!.detail).toMatch(/did not pass OpenAPI schema validation/);
    expect(ds.duplicates()).toBe(0);
  });

  it('a poisoned event named by index is dead-lettered even when it comes back', async () => {
    const events = auditEvents(6);
    const bad = new Set([events[1]!.correlation_id, events[4]!.correlation_id]);
    ds.poison((e) => bad.has(e.correlation_id), 'index');
    const r = await deliverEvents(exporter(), events);
    expect(r.outcomes).toEqual([
      'accepted',
      'dead_lettered',
      'accepted',
      'accepted',
      'dead_lettered',
      'accepted',
    ]);
    expect(receivedIds()).toEqual(ids(events.filter((e) => !bad.has(e.correlation_id))));
  });

  it('413: splits the request and resends the halves in order', async () => {
    ds.inject({ type: 'too-large' });
    const events = auditEvents(10);
    const r = await deliverEvents(exporter(), events);
    expect(r.outcomes).toEqual(Array(10).fill('accepted'));
    expect(ds.requests.map((q) => [q.events, q.status])).toEqual([
      [10, 413],
      [5, 201],
      [5, 201],
    ]);
    expect(receivedIds()).toEqual(ids(events));
  });

  it('batch-size-exceeded: splits like 413', async () => {
    ds.inject({ type: 'batch-size-exceeded' });
    const events = auditEvents(4);
    const r = await deliverEvents(exporter(), events);
    expect(r.outcomes).toEqual(Array(4).fill('accepted'));
    expect(ds.requests.map((q) => q.events)).toEqual([4, 2, 2]);
    expect(receivedIds()).toEqual(ids(events));
  });

  it('keeps requests within maxBatchSize events, in order', async () => {
    const events = auditEvents(23);
    const r = await deliverEvents(exporter({ maxBatchSize: 10 }), events);
    expect(r.outcomes.every((o) => o === 'accepted')).toBe(true);
    expect(ds.requests.map((q) => q.events)).toEqual([10, 10, 3]);
    expect(receivedIds()).toEqual(ids(events));
  });

  it('keeps requests below 5 MiB', async () => {
    // 30 events of ~200 KiB payload: 6 MiB in all, so more than one request.
    const big = 'x'.repeat(200 * 1024);
    const events = Array.from({ length: 30 }, () => {
      const e = auditEvent();
      return { ...e, error_message: big };
    });
    const r = await deliverEvents(exporter(), events);
    expect(r.outcomes.every((o) => o === 'accepted')).toBe(true);
    expect(ds.requests.length).toBe(2);
    expect(ds.requests.every((q) => q.status === 201)).toBe(true);
    expect(receivedIds()).toEqual(ids(events));
  });

  it('202 (server DLQ): accepted and never resent', async () => {
    ds.inject({ type: 'dlq' });
    const events = auditEvents(3);
    const r = await deliverEvents(exporter(), events);
    expect(r.outcomes).toEqual(['accepted', 'accepted', 'accepted']);
    expect(ds.requests).toHaveLength(1);
    expect(ds.received().map((s) => s.status)).toEqual([202, 202, 202]);
  });

  it('reset after commit: resends, and the duplicates show in duplicates_possible', async () => {
    ds.inject({ type: 'reset-after-commit' });
    const events = auditEvents(4);
    const r = await deliverEvents(exporter(), events);
    expect(r.outcomes).toEqual(Array(4).fill('accepted'));
    expect(ds.received()).toHaveLength(8);
    expect(ds.duplicates()).toBe(4);
    expect(await metrics.sum('kubernaut.audit.duplicates_possible')).toBe(4);
    expect(
      await metrics.sum('kubernaut.audit.retries', { 'kubernaut.audit.reason': 'network' }),
    ).toBe(1);
  });

  it('reset before the body is read: resent, stored once', async () => {
    ds.inject({ type: 'reset-before-read' });
    const events = auditEvents(4);
    const r = await deliverEvents(exporter(), events);
    expect(r.outcomes).toEqual(Array(4).fill('accepted'));
    expect(receivedIds()).toEqual(ids(events));
    expect(ds.requests.map((q) => q.status)).toEqual(['reset', 201]);
  });

  it('slow answer beyond timeoutMillis: the attempt is abandoned and retried', async () => {
    ds.inject({ type: 'slow', delayMillis: 30_000, commit: false });
    const events = auditEvents(3);
    const r = await deliverEvents(exporter({ timeoutMillis: 1000 }), events);
    expect(r.outcomes).toEqual(['accepted', 'accepted', 'accepted']);
    expect(receivedIds()).toEqual(ids(events));
    expect(ds.requests).toHaveLength(2);
    expect(
      await metrics.sum('kubernaut.audit.retries', { 'kubernaut.audit.reason': 'timeout' }),
    ).toBe(1);
    // The first request had been sent: its events may have been committed.
    expect(await metrics.sum('kubernaut.audit.duplicates_possible')).toBe(3);
  });

  it('refused connections, then DataStorage comes back on the same port', async () => {
    await ds.stop();
    const s = recordingSleeper(async (_ms, call) => {
      if (call === 3) await ds.listen();
    });
    const events = auditEvents(5);
    const r = await deliverEvents(exporter({}, { sleep: s.sleep }), events);
    expect(r.outcomes).toEqual(Array(5).fill('accepted'));
    expect(s.delays).toHaveLength(3);
    expect(receivedIds()).toEqual(ids(events));
    expect(
      await metrics.sum('kubernaut.audit.retries', { 'kubernaut.audit.reason': 'network' }),
    ).toBe(3);
    // Refused connections were never sent: no duplicates possible.
    expect(await metrics.sum('kubernaut.audit.duplicates_possible')).toBe(0);
  });

  it('401: re-reads the rotated token file and uses the new token; tokens never logged', async () => {
    const logged: string[] = [];
    const logger: DiagLogger = {
      error: (...a: unknown[]) => logged.push(a.map(String).join(' ')),
      warn: (...a: unknown[]) => logged.push(a.map(String).join(' ')),
      info: (...a: unknown[]) => logged.push(a.map(String).join(' ')),
      debug: (...a: unknown[]) => logged.push(a.map(String).join(' ')),
      verbose: (...a: unknown[]) => logged.push(a.map(String).join(' ')),
    };
    diag.setLogger(logger, { logLevel: DiagLogLevel.ALL, suppressOverrideMessage: true });
    try {
      const tokenFile = join(tmpDir, 'token');
      writeFileSync(tokenFile, 'old-secret-token-1\n');
      ds.setToken('new-secret-token-2');
      const s = recordingSleeper((_ms, call) => {
        if (call === 2) writeFileSync(tokenFile, 'new-secret-token-2\n');
      });
      const events = auditEvents(2);
      const r = await deliverEvents(
        exporter({ bearerTokenFile: tokenFile }, { sleep: s.sleep }),
        events,
      );
      expect(r.outcomes).toEqual(['accepted', 'accepted']);
      expect(ds.requests.map((q) => q.status)).toEqual([401, 401, 201]);
      expect(ds.requests.map((q) => q.authorization)).toEqual([
        'Bearer old-secret-token-1',
        'Bearer old-secret-token-1',
        'Bearer new-secret-token-2',
      ]);
      expect(receivedIds()).toEqual(ids(events));
      expect(
        await metrics.sum('kubernaut.audit.retries', { 'kubernaut.audit.reason': '401' }),
      ).toBe(2);
      // Loud: an error was logged about the credentials...
      expect(logged.some((l) => /refused the credentials/.test(l))).toBe(true);
      // ...but never a token.
      expect(logged.join('\n')).not.toMatch(/secret-token/);
    } finally {
      diag.disable();
    }
  });

  it('a token file whose token no HTTP header can carry: a clear error naming the file problem, never the opaque "Invalid character in header content"', async () => {
    const logged: string[] = [];
    const keep = (...a: unknown[]) => logged.push(a.map(String).join(' '));
    diag.setLogger(
      { error: keep, warn: keep, info: keep, debug: keep, verbose: keep },
      { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
    );
    try {
      const tokenFile = join(tmpDir, 'token');
      writeFileSync(tokenFile, 'secret-part-1\nsecret-part-2\n');
      // A DataStorage without authentication: the request goes out, without the broken token
      // (one with authentication would answer 401: loud, and retried until the file is fixed).
      const r = await deliverEvents(exporter({ bearerTokenFile: tokenFile }), auditEvents(1));
      expect(ds.requests.map((q) => q.authorization)).toEqual([undefined]);
      expect(r.outcomes).toEqual(['accepted']);
      const text = logged.join('\n');
      expect(text).toMatch(/bearer token file holds characters an HTTP header cannot carry/);
      expect(text).not.toMatch(/Invalid character in header content/);
      expect(text).not.toMatch(/secret-part/);
    } finally {
      diag.disable();
    }
  });

  it('never writes the bearer token into dead letters or errors', async () => {
    ds.setToken('s3cr3t-bearer');
    ds.inject({ type: 'reject-index', index: 0 });
    const r = await deliverEvents(exporter({ bearerToken: 's3cr3t-bearer' }), auditEvents(2));
    expect(r.outcomes).toEqual(['dead_lettered', 'accepted']);
    const text = JSON.stringify(readJsonLines(deadLetterPath()));
    expect(text).toContain('event at index 0');
    expect(text).not.toContain('s3cr3t');
  });

  it('dead-letters events older than 7 days as expired, without sending them', async () => {
    const old = auditEvent({
      event_timestamp: new Date(Date.now() - 8 * 24 * 3600 * 1000).toISOString(),
    });
    const fresh = auditEvent();
    const r = await deliverEvents(exporter(), [old, fresh]);
    expect(r.outcomes).toEqual(['dead_lettered', 'accepted']);
    expect(receivedIds()).toEqual([fresh.correlation_id]);
    expect(ds.requests.map((q) => q.events)).toEqual([1]);
    const dl = readJsonLines(deadLetterPath());
    expect(dl).toHaveLength(1);
    expect(dl[0]).toMatchObject({ reason: 'expired', event: old });
    expect(
      await metrics.sum('kubernaut.audit.dead_lettered', { 'kubernaut.audit.reason': 'expired' }),
    ).toBe(1);
  });

  it('an event that expires during an outage is dead-lettered as expired, the rest delivered', async () => {
    const clock = manualClock(Date.now());
    const expiring = auditEvent({
      event_timestamp: new Date(clock.now() - 7 * 24 * 3600 * 1000 + 60_000).toISOString(),
    });
    const fresh = auditEvent();
    ds.inject({ type: 'unavailable' }, 2);
    const s = recordingSleeper(() => {
      clock.advance(45_000); // the outage lasts; the clock moves on
    });
    const r = await deliverEvents(exporter({}, { sleep: s.sleep, now: clock.now }), [
      expiring,
      fresh,
    ]);
    expect(r.outcomes).toEqual(['dead_lettered', 'accepted']);
    expect(ds.requests.map((q) => [q.events, q.status])).toEqual([
      [2, 503],
      [2, 503],
      [1, 201],
    ]);
    expect(receivedIds()).toEqual([fresh.correlation_id]);
    expect(readJsonLines(deadLetterPath())).toMatchObject([{ reason: 'expired', event: expiring }]);
  });

  it('abort: unsettled events come back pending, settled ones keep their outcome', async () => {
    const events = auditEvents(4);
    // First request: event 0 named bad (dead-lettered once its sibling is accepted); then
    // the second request meets an outage and is aborted.
    const bad = events[0]!.correlation_id;
    const unavailable = new Set([events[2]!.correlation_id, events[3]!.correlation_id]);
    ds.poison((e) => e.correlation_id === bad, 'index');
    ds.poison((e) => unavailable.has(e.correlation_id), { status: 503 });
    const ac = new AbortController();
    const s = recordingSleeper((_ms, call) => {
      if (call === 3) ac.abort();
    });
    const r = await deliverEvents(exporter({ maxBatchSize: 2 }, { sleep: s.sleep }), events, {
      signal: ac.signal,
    });
    expect(r.outcomes).toEqual(['dead_lettered', 'accepted', 'pending', 'pending']);
    expect(ds.received()).toHaveLength(1);
  });

  it('after shutdown, deliverEvents() returns everything pending without a request', async () => {
    const e = exporter();
    await e.shutdown();
    const r = await deliverEvents(e, auditEvents(2));
    expect(r.outcomes).toEqual(['pending', 'pending']);
    expect(ds.requests).toHaveLength(0);
  });
});
