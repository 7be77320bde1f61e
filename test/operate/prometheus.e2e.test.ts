// SPDX-License-Identifier: Apache-2.0
/*
 * The shipped alert rules against the real programs, with a real Prometheus (Debian's package):
 * Prometheus scrapes the management ports of a real `kubernaut-audit-otlp-bridge` and a real
 * `kubernaut-datastorage` (PostgreSQL, Redis dead-letter queue) every second and evaluates
 * deploy/prometheus/audit-rules.yaml — the file itself, unchanged — every second, while
 * DataStorage is made unavailable:
 *
 *   1. the bridge runs, DataStorage is not there yet, nothing to deliver: no alert is active;
 *   2. records arrive and cannot be delivered: the backlog grows until the bridge refuses
 *      requests → AuditDeliveryFailing, AuditSpoolNearlyFull and AuditBridgeRefusing go active,
 *      nothing else does;
 *   3. DataStorage starts: the bridge drains its spool, the delivery and spool alerts resolve,
 *      the record is in DataStorage;
 *   4. DataStorage's database fails: DataStorage accepts into its dead-letter queue →
 *      AuditDataStorageDlqBacklog goes active (and delivery is not reported failing); the
 *      database returns, the queue drains, the alert resolves;
 *   5. the live /metrics of both programs hold every metric of deploy/metrics.json as documented
 *      (unit, labels), and every dashboard query's metrics.
 *
 * Why "active" and not "firing": the shipped `for:` durations are minutes, and the shipped file
 * is what is tested, not a test-only copy with shortened durations. The live run proves that
 * each expression matches what the real programs expose in each situation (an alert is pending
 * from the first evaluation its expression holds, firing at once when it has no `for:`); the
 * unit tests (`promtool test rules deploy/prometheus/audit-rules.test.yaml`, rules.test.ts)
 * prove on the same file that each alert turns firing after its `for:`, and with its thresholds.
 * Alerts over a metric whose unit the current code still gets wrong (`currentUnit` in the
 * metric list) would be active for the wrong reason and are left out of the "nothing else"
 * checks until that metric is fixed.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createScratchDatabase,
  freePort,
  type PrometheusText,
  queryEvents,
  type ScratchDatabase,
  scrape,
  testTokenFile,
  waitFor,
} from '@kubernaut/test-kit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  alertRules,
  dashboardQueries,
  entryOf,
  metricNamesIn,
  PROMETHEUS_BUILTINS,
  readMetrics,
  readText,
} from './support/deploy.ts';
import { asExpected, statuses } from './support/live.ts';
import { BRIDGE_BIN, DATASTORAGE_BIN, type Program, startProgram } from './support/programs.ts';
import { type PrometheusServer, startPrometheus } from './support/prometheus.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const SPOOL_MAX_BYTES = 256 * 1024;
const TEST_RECORD = JSON.parse(readText('deploy/test-alert/audit-record.otlp.json')) as {
  resourceLogs: { scopeLogs: { logRecords: Record<string, unknown>[] }[] }[];
};

const metrics = readMetrics();
const rules = alertRules();

/**
 * Alerts over a metric the current code records in another unit than documented: active for the
 * wrong reason until the metric is fixed, so not held to "stays quiet".
 */
const UNCHECKED = new Set(
  rules
    .filter((r) =>
      metricNamesIn(r.expr).some((n) => entryOf(n, metrics)?.currentUnit !== undefined),
    )
    .map((r) => r.alert),
);

/** An OTLP/JSON body of `count` copies of the shipped test record, with their own correlations. */
function records(
  count: number,
  correlation: string,
  edit?: (r: Record<string, unknown>, i: number) => void,
): string {
  const body = structuredClone(TEST_RECORD);
  const template = body.resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!;
  body.resourceLogs[0]!.scopeLogs[0]!.logRecords = Array.from({ length: count }, (_, i) => {
    const r = structuredClone(template);
    const attributes = r.attributes as { key: string; value: { stringValue: string } }[];
    attributes.find((a) => a.key === 'audit.correlation.id')!.value.stringValue =
      `${correlation}-${i % 10}`;
    edit?.(r, i);
    return r;
  });
  return JSON.stringify(body);
}

describe('alert rules with a real Prometheus, while DataStorage is made unavailable', () => {
  let dir: string;
  let db: ScratchDatabase;
  let bridge: Program;
  let datastorage: Program | undefined;
  let prometheus: PrometheusServer;
  let bridgeUrl: string;
  let bridgeManagement: string;
  let datastorageUrl: string;
  let datastorageManagement: string;
  const stream = `test:operate:${randomUUID()}`;

  const post = (body: string) =>
    fetch(`${bridgeUrl}/v1/logs`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
    });
  const active = async () => {
    const alerts = await prometheus.alerts();
    return new Map(alerts.map((a) => [a.labels.alertname!, a]));
  };
  /** Active alerts other than `expected` (and the unchecked ones), once the rules saw the latest scrape. */
  const unexpectedlyActive = async (expected: string[]) => {
    await prometheus.evaluated();
    return [...(await active()).keys()].filter((a) => !expected.includes(a) && !UNCHECKED.has(a));
  };
  const waitForActive = (names: string[], timeoutMs = 30_000) =>
    waitFor(
      async () => {
        const now = await active();
        return names.every((n) => now.has(n)) && now;
      },
      { timeoutMs, intervalMs: 250, describe: () => `waiting for ${names.join(', ')}` },
    );
  const waitForInactive = (names: string[], timeoutMs = 30_000) =>
    waitFor(
      async () => {
        const now = await active();
        return names.every((n) => !now.has(n)) && now;
      },
      { timeoutMs, intervalMs: 250, describe: () => `waiting for ${names.join(', ')} to resolve` },
    );
  const bridgeValue = async (name: string, labels?: Record<string, string>) =>
    (await scrape(bridgeManagement)).value(name, labels);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'operate-e2e-'));
    db = await createScratchDatabase('ds_operate');
    const [dsPort, dsManagementPort, bridgeManagementPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    datastorageUrl = `http://127.0.0.1:${dsPort}`;
    datastorageManagement = `http://127.0.0.1:${dsManagementPort}`;
    bridgeManagement = `http://127.0.0.1:${bridgeManagementPort}`;
    bridge = await startProgram(
      BRIDGE_BIN,
      [
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--management-port',
        String(bridgeManagementPort),
        '--datastorage-url',
        datastorageUrl,
        '--spool-dir',
        join(dir, 'spool'),
      ],
      {
        KUBERNAUT_AUDIT_SPOOL_MAX_BYTES: String(SPOOL_MAX_BYTES),
        KUBERNAUT_AUDIT_BEARER_TOKEN_FILE: testTokenFile(),
      },
      'audit OTLP bridge listening',
    );
    bridgeUrl = String(bridge.listening.url);
    prometheus = await startPrometheus({
      dir,
      targets: {
        'kubernaut-audit-otlp-bridge': `127.0.0.1:${bridgeManagementPort}`,
        'kubernaut-datastorage': `127.0.0.1:${dsManagementPort}`,
      },
    });
  }, 60_000);

  afterAll(async () => {
    await prometheus?.stop();
    await bridge?.stop();
    await datastorage?.stop();
    if (db) {
      await db.outage(false).catch(() => undefined);
      await db.drop();
    }
    const redis = new Redis(REDIS_URL);
    await redis.del(
      stream,
      `${stream}:lease`,
      `${stream}:backlog`,
      `${stream}:stats`,
      `${stream}:dead`,
    );
    redis.disconnect();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('scrapes the bridge; with nothing to deliver no alert is active', async () => {
    const targets = await waitFor(
      async () => {
        const t = await prometheus.targets();
        const jobs = Object.values(t);
        return jobs.length === 2 && jobs.every((x) => x.health !== 'unknown') && t;
      },
      { timeoutMs: 15_000, describe: () => prometheus.log() },
    );
    expect(targets['kubernaut-audit-otlp-bridge']?.health).toBe('up');
    expect(targets['kubernaut-datastorage']?.health).toBe('down');
    await waitFor(
      async () => (await prometheus.query('otel_sdk_processor_log_queue_capacity')).length > 0,
      {
        timeoutMs: 15_000,
      },
    );
    await prometheus.evaluated();
    expect([...(await active()).keys()]).toEqual([]);
    for (const path of ['/healthz', '/livez', '/readyz']) {
      expect((await fetch(`${bridgeManagement}${path}`)).status, path).toBe(200);
    }
    // Every alert's rules were loaded from the shipped file.
    expect(UNCHECKED.size).toBeLessThan(rules.length);
  });

  it('DataStorage unavailable: the backlog grows until the bridge refuses, and the delivery, spool and bridge alerts go active', async () => {
    // The README's test record first, then a Collector's batches until the bridge refuses.
    expect((await post(readText('deploy/test-alert/audit-record.otlp.json'))).status).toBe(200);
    let refused = 0;
    for (let i = 0; i < 100 && refused === 0; i++) {
      const status = (await post(records(20, `fill-${i}`))).status;
      if (status === 503) refused++;
      else expect(status).toBe(200);
    }
    expect(refused).toBe(1);
    // The Collector keeps retrying while the bridge refuses.
    let retrying = true;
    const collector = (async () => {
      while (retrying) {
        await post(records(20, 'retry'));
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    })();
    try {
      const now = await waitForActive(
        ['AuditDeliveryFailing', 'AuditSpoolNearlyFull', 'AuditBridgeRefusing'],
        30_000,
      );
      // `for:` as shipped: pending now, firing after minutes (proven by promtool).
      for (const name of ['AuditDeliveryFailing', 'AuditSpoolNearlyFull', 'AuditBridgeRefusing']) {
        expect(now.get(name)?.state, name).toBe('pending');
      }
      expect(Number(now.get('AuditSpoolNearlyFull')?.value)).toBeGreaterThan(0.8);
      expect(now.get('AuditDeliveryFailing')?.labels.job).toBe('kubernaut-audit-otlp-bridge');
      expect(
        await unexpectedlyActive([
          'AuditDeliveryFailing',
          'AuditSpoolNearlyFull',
          'AuditBridgeRefusing',
        ]),
      ).toEqual([]);
      expect(
        await bridgeValue('kubernaut_audit_retries_total', { kubernaut_audit_reason: 'network' }),
      ).toBeGreaterThan(0);
    } finally {
      retrying = false;
      await collector;
    }
  }, 60_000);

  it('DataStorage back: the bridge drains its spool, the delivery and spool alerts resolve, the record is stored', async () => {
    datastorage = await startProgram(
      DATASTORAGE_BIN,
      [
        '--host',
        '127.0.0.1',
        '--port',
        new URL(datastorageUrl).port,
        '--management-port',
        new URL(datastorageManagement).port,
        '--database-url',
        db.connectionString,
        '--redis-url',
        REDIS_URL,
        '--redis-stream',
        stream,
        '--auth-token-file',
        testTokenFile(),
      ],
      {},
      'datastorage listening',
    );
    // The bridge delivers at its next retry (its backoff reaches 30 s at most).
    await waitFor(async () => (await bridgeValue('kubernaut_audit_spool_bytes')) === 0, {
      timeoutMs: 60_000,
      intervalMs: 250,
    });
    await waitForInactive(['AuditDeliveryFailing', 'AuditSpoolNearlyFull'], 30_000);
    // Prometheus reports a target's health as of its last scrape: wait for the first scrape of
    // the restarted DataStorage (the bridge's alerts can resolve before it happens).
    const health = await waitFor(
      async () => {
        const h = (await prometheus.targets())['kubernaut-datastorage']?.health;
        return h === 'up' && h;
      },
      { timeoutMs: 15_000, intervalMs: 250, describe: () => prometheus.log() },
    );
    expect(health).toBe('up');
    const stored = await queryEvents(datastorageUrl, { correlation_id: 'test-alert-1' });
    expect(stored.data.map((e) => e.event_type)).toEqual(['gateway.signal.received']);
  }, 120_000);

  it("DataStorage's database unavailable: accepted events wait in its dead-letter queue and its alert goes active, then resolves", async () => {
    await db.outage(true);
    try {
      expect((await post(records(5, 'dlq'))).status).toBe(200);
      const now = await waitForActive(['AuditDataStorageDlqBacklog'], 30_000);
      expect(now.get('AuditDataStorageDlqBacklog')?.state).toBe('pending');
      expect(now.get('AuditDataStorageDlqBacklog')?.labels.job).toBe('kubernaut-datastorage');
      const ready = await fetch(`${datastorageManagement}/readyz`);
      expect(ready.status).toBe(503);
      // 202 is acceptance: the producer does not report delivery failing. (The bridge's spool
      // held the records until the 202; its alert may be pending until Prometheus has scraped
      // the spool empty, which its next scrape does, the rules' next evaluation after that.)
      await waitFor(
        async () =>
          (await prometheus.query('kubernaut_audit_spool_bytes')).every((s) => s.value === 0),
        { timeoutMs: 15_000, intervalMs: 250, describe: () => 'the bridge spool, as scraped' },
      );
      expect(
        await unexpectedlyActive(['AuditDataStorageDlqBacklog', 'AuditBridgeRefusing']),
      ).toEqual([]);
    } finally {
      await db.outage(false);
    }
    await waitFor(
      async () =>
        (await scrape(datastorageManagement)).value('kubernaut_datastorage_dlq_events') === 0,
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    await waitForInactive(['AuditDataStorageDlqBacklog'], 30_000);
  }, 90_000);

  it('the live /metrics of both programs hold every metric of the list as documented, and every dashboard query’s', async () => {
    // Events the scenario has not caused yet: an invalid audit record (dead-lettered), a
    // record that is not audit (ignored), a correlation whose timestamps go backwards.
    const invalid = records(1, 'invalid', (r) => {
      r.attributes = (r.attributes as { key: string }[]).filter(
        (a) => a.key !== 'audit.event.outcome',
      );
    });
    expect((await post(invalid)).status).toBe(200);
    const ignored = records(1, 'ignored', (r) => {
      r.attributes = [];
    });
    expect((await post(ignored)).status).toBe(200);
    const nowNanos = BigInt(Date.now()) * 1_000_000n;
    const backwards = records(2, 'backwards', (r, i) => {
      r.timeUnixNano = String(nowNanos - BigInt(i) * 1_000_000_000n);
      (r.attributes as { key: string; value: { stringValue: string } }[]).find(
        (a) => a.key === 'audit.correlation.id',
      )!.value.stringValue = 'backwards';
    });
    expect((await post(backwards)).status).toBe(200);
    await waitFor(async () => (await bridgeValue('kubernaut_audit_spool_bytes')) === 0, {
      timeoutMs: 30_000,
    });

    const expositions: Record<'library' | 'bridge' | 'server', PrometheusText> = {
      library: await scrape(bridgeManagement),
      bridge: await scrape(bridgeManagement),
      server: await scrape(datastorageManagement),
    };
    expect(
      expositions.bridge.value('kubernaut_audit_bridge_log_records_total', {
        kubernaut_audit_bridge_outcome: 'rejected',
      }),
    ).toBe(1);
    const found = statuses(metrics, expositions);
    const differences = metrics
      .filter((m) => !asExpected(m, found.get(m)!.status))
      .map((m) => {
        const { status, detail } = found.get(m)!;
        return `${m.prometheus} (${m.awaiting ? `awaiting ${m.awaiting}` : `appears ${m.appears}`}): ${status}${detail ? `, ${detail}` : ''}`;
      });
    // A difference means deploy/metrics.json and the code disagree: an awaited metric arrived
    // (drop its `awaiting`, `currentUnit`), or a documented one is missing or exported otherwise.
    expect(differences).toEqual([]);

    // Every metric of every dashboard query is really exposed (or awaited, as listed).
    const unserved = dashboardQueries().flatMap((q) =>
      metricNamesIn(q.expr)
        .filter((n) => !PROMETHEUS_BUILTINS.has(n))
        .filter((n) => {
          const entry = entryOf(n, metrics);
          if (!entry) return true;
          const { status } = found.get(entry)!;
          return !(status === 'live' || status === 'declared' || entry.awaiting !== undefined);
        })
        .map((n) => `${q.where}: ${n}`),
    );
    expect(unserved).toEqual([]);
  }, 60_000);
});
