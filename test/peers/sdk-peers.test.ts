// SPDX-License-Identifier: Apache-2.0
/*
 * Other languages through the audit OTLP bridge: the OpenTelemetry Python SDK (OTLP/HTTP
 * protobuf exporter) and the OpenTelemetry Go SDK (otlploghttp) emit the same audit events,
 * with the audit semantic conventions' attribute names, as the OpenTelemetry JS SDK (OTLP/HTTP
 * protobuf exporter). Each path runs into its own bridge and its own reference DataStorage
 * (PGlite, full OpenAPI validation); what the three DataStorages hold must be identical.
 *
 * Left out of the comparison, because they legitimately differ between two deliveries of the
 * same event (and nothing else is):
 *   - event_id: assigned by DataStorage;
 *   - event_hash, previous_event_hash: the hash chain covers event_data, provenance included;
 *   - event_data.audit_provenance: producer id (per spool), session id (per process start),
 *     sequence number and chained hash of the bridge that delivered the event (DESIGN §11).
 * Timestamps are not left out: every path emits the same nanosecond timestamps.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type OtlpBridge, startOtlpBridge } from '@kubernaut/audit-otlp-bridge';
import {
  ATTR_AUDIT_CORRELATION_ID,
  ATTR_AUDIT_EVENT_ACTION,
  ATTR_AUDIT_EVENT_CATEGORY,
  ATTR_AUDIT_EVENT_OUTCOME,
  AUDIT_EVENT_DATA_PROVENANCE_KEY,
} from '@kubernaut/audit-semantic-conventions';
import { type DataStorageServer, startDataStorageServer } from '@kubernaut/datastorage-server';
import { KubernautAuditExporter } from '@kubernaut/exporter-kubernaut-audit';
import {
  type JsonObject,
  peers,
  realisticPayload,
  run,
  SUCCESS,
  sampleEventTypes,
  specPath,
  startSdkApp,
  TEST_RESOURCE_ATTRIBUTES,
  testPgliteCacheDir,
} from '@kubernaut/test-kit';
import { type AnyValue, SeverityNumber } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const TOKEN = 'sdk-peers-token';
/** The JS path's instrumentation scope (@kubernaut/test-kit's startSdkApp). */
const SCOPE = { name: 'bridge-test-app', version: '0.1.0' };

/** One audit event as the emitters take it (see test/peers/*-emitter). */
interface PeerEvent {
  event_type: string;
  category: string;
  action: string;
  outcome: string;
  correlation_id: string;
  time_unix_nano: string;
  severity_text: string;
  data: JsonObject;
  attributes: Record<string, string | number | boolean>;
}

function events(): PeerEvent[] {
  const base = BigInt(Date.now() - 120_000) * 1_000_000n;
  const types = [
    { eventType: 'gateway.signal.received', category: 'gateway' },
    ...sampleEventTypes()
      .filter((t) => t.category !== 'gateway')
      .slice(0, 4),
  ];
  return types.map((t, i) => ({
    event_type: t.eventType,
    category: t.category,
    action: (t.eventType.split('.').pop() ?? 'performed').slice(0, 50),
    outcome: i === 2 ? 'failure' : 'success',
    correlation_id: `rr-peers-${i}`,
    // Nanoseconds with sub-microsecond digits: DataStorage keeps microseconds.
    time_unix_nano: String(base + BigInt(i) * 1_000_000_123n + 456_789n),
    severity_text: 'INFO',
    data: realisticPayload(t.eventType),
    attributes: {
      'audit.actor.type': 'ServiceAccount',
      'audit.actor.id': 'system:serviceaccount:payments:gateway',
      'audit.resource.type': 'Pod',
      'audit.resource.id': `payments/payments-api-${i}`,
      'audit.duration_ms': 125 + i,
      'audit.severity': 'critical',
      'audit.sensitive': i % 2 === 0,
      'audit.retention.days': 365,
      'client.address': '10.12.4.7',
      ...(i === 2 && { 'error.type': 'Timeout', 'exception.message': 'upstream timed out' }),
    },
  }));
}

interface Path {
  ds: DataStorageServer;
  bridge: OtlpBridge;
  dir: string;
}

const paths = new Map<string, Path>();

async function startPath(name: string): Promise<Path> {
  const ds = await startDataStorageServer({
    port: 0,
    storage: { kind: 'pglite', cacheDir: testPgliteCacheDir() },
    openapiSpec: specPath(),
    quiet: true,
  });
  const dir = mkdtempSync(join(tmpdir(), `sdk-peer-${name}-`));
  const bridge = await startOtlpBridge({
    port: 0,
    exporter: new KubernautAuditExporter({
      url: ds.url,
      retry: { initialDelayMillis: 50, maxDelayMillis: 500 },
    }),
    spool: { directory: dir },
    bearerToken: TOKEN,
    logger: () => undefined,
  });
  const path = { ds, bridge, dir };
  paths.set(name, path);
  return path;
}

beforeAll(async () => {
  peers(); // fail early, with the provisioning hint, when the peers are missing
  await Promise.all(['js', 'python', 'go'].map(startPath));
}, 120_000);

afterAll(async () => {
  for (const p of paths.values()) {
    await p.bridge.close();
    await p.ds.close();
    rmSync(p.dir, { recursive: true, force: true });
  }
});

/** The emitters' standard OTLP environment, pointed at a bridge. */
function otlpEnv(bridge: OtlpBridge, extra: Record<string, string> = {}): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: bridge.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_EXPORTER_OTLP_HEADERS: `Authorization=Bearer%20${TOKEN}`,
    ...extra,
  };
}

function emitterInput(list: PeerEvent[]): string {
  return JSON.stringify({ resource: TEST_RESOURCE_ATTRIBUTES, scope: SCOPE, events: list });
}

async function emitJs(bridge: OtlpBridge, list: PeerEvent[]): Promise<void> {
  const app = startSdkApp({
    url: bridge.url,
    encoding: 'protobuf',
    resource: resourceFromAttributes({ ...TEST_RESOURCE_ATTRIBUTES }),
    headers: { Authorization: `Bearer ${TOKEN}` },
  });
  for (const e of list) {
    const ns = BigInt(e.time_unix_nano);
    app.emit({
      eventName: e.event_type,
      timestamp: [Number(ns / 1_000_000_000n), Number(ns % 1_000_000_000n)],
      severityNumber: SeverityNumber.INFO,
      severityText: e.severity_text,
      body: e.data as AnyValue,
      attributes: {
        [ATTR_AUDIT_EVENT_CATEGORY]: e.category,
        [ATTR_AUDIT_EVENT_ACTION]: e.action,
        [ATTR_AUDIT_EVENT_OUTCOME]: e.outcome,
        [ATTR_AUDIT_CORRELATION_ID]: e.correlation_id,
        ...e.attributes,
      },
    });
  }
  await app.flush();
  await app.shutdown();
  expect(app.results.map((r) => r.code)).toEqual([SUCCESS]);
}

type Row = Record<string, unknown>;

/** What DataStorage holds, as its query API returns it, sorted by correlation id. */
async function stored(ds: DataStorageServer): Promise<Row[]> {
  const res = await fetch(`${ds.url}/api/v1/audit/events?limit=1000`);
  expect(res.status).toBe(200);
  const page = (await res.json()) as { data: Row[] };
  return page.data.sort((a, b) => String(a.correlation_id).localeCompare(String(b.correlation_id)));
}

/** Without what legitimately differs between two deliveries (see the header). */
function comparable(rows: Row[]): Row[] {
  return rows.map((row) => {
    const { event_id: _id, event_hash: _h, previous_event_hash: _p, ...rest } = row;
    const { [AUDIT_EVENT_DATA_PROVENANCE_KEY]: provenance, ...data } = row.event_data as Row;
    expect(provenance).toBeTypeOf('object'); // each path did stamp provenance
    return { ...rest, event_data: data };
  });
}

describe('audit events from the OTel Python and Go SDKs through the bridge', () => {
  const list = events();
  let reference: Row[];

  beforeAll(async () => {
    const js = paths.get('js')!;
    await emitJs(js.bridge, list);
    await js.bridge.processor.forceFlush({ timeoutMillis: 30_000 });
    reference = await stored(js.ds);
  }, 120_000);

  it('the JS SDK path stores every event, with the mapped fields', () => {
    expect(reference).toHaveLength(list.length);
    const first = reference.find((r) => r.correlation_id === 'rr-peers-0')!;
    expect(first).toMatchObject({
      event_type: 'gateway.signal.received',
      event_category: 'gateway',
      event_action: 'received',
      event_outcome: 'success',
      actor_type: 'ServiceAccount',
      actor_id: 'system:serviceaccount:payments:gateway',
      resource_type: 'Pod',
      resource_id: 'payments/payments-api-0',
      namespace: 'payments',
      cluster_id: TEST_RESOURCE_ATTRIBUTES['k8s.cluster.uid'],
      actor_ip: '10.12.4.7',
      duration_ms: 125,
      severity: 'critical',
      is_sensitive: true,
      retention_days: 365,
    });
    expect(reference.find((r) => r.correlation_id === 'rr-peers-2')).toMatchObject({
      event_outcome: 'failure',
      error_code: 'Timeout',
      error_message: 'upstream timed out',
    });
  });

  it('the OpenTelemetry Python SDK (OTLP/HTTP protobuf) lands identical events', async () => {
    const { python, pythonEmitter, otelPythonSdkVersion } = peers();
    const path = paths.get('python')!;
    const result = await run(python, [pythonEmitter], {
      env: otlpEnv(path.bridge),
      stdin: emitterInput(list),
    });
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ emitted: list.length });
    await path.bridge.processor.forceFlush({ timeoutMillis: 30_000 });
    const rows = await stored(path.ds);
    expect(comparable(rows), `OTel Python SDK ${otelPythonSdkVersion}`).toEqual(
      comparable(reference),
    );
  });

  it('the OpenTelemetry Go SDK (otlploghttp, gzip) lands identical events', async () => {
    const { goEmitter, otelGoSdkLogVersion } = peers();
    const path = paths.get('go')!;
    const result = await run(goEmitter, [], {
      env: otlpEnv(path.bridge, { OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' }),
      stdin: emitterInput(list),
    });
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ emitted: list.length });
    await path.bridge.processor.forceFlush({ timeoutMillis: 30_000 });
    const rows = await stored(path.ds);
    expect(comparable(rows), `OTel Go SDK log ${otelGoSdkLogVersion}`).toEqual(
      comparable(reference),
    );
  });

  it('every path keeps a valid hash chain per correlation', async () => {
    for (const [name, path] of paths) {
      for (const e of list) {
        const res = await fetch(`${path.ds.url}/api/v1/audit/verify-chain`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ correlation_id: e.correlation_id }),
        });
        expect(await res.json(), name).toMatchObject({ is_valid: true, total_events: 1 });
      }
    }
  });
});
