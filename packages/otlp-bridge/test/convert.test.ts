// SPDX-License-Identifier: Apache-2.0
/*
 * Round trip through the real SDK exporters: records emitted through a real LoggerProvider are
 * encoded by @opentelemetry/exporter-logs-otlp-http (JSON) and -proto (protobuf), captured on a
 * loopback endpoint, decoded with the bridge's protobufjs codec and converted back. The result
 * must equal the SDK's own records (captured by an InMemoryLogRecordExporter on the same
 * provider) field for field: times to the nanosecond, attributes, map bodies, event name,
 * severity, span context, resource and scope.
 */
import { ROOT_CONTEXT, SeverityNumber, TraceFlags, trace } from '@opentelemetry/api';
import { OTLPLogExporter as OtlpHttpJsonExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as OtlpProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchLogRecordProcessor,
  InMemoryLogRecordExporter,
  LoggerProvider,
  type LogRecordExporter,
  type ReadableLogRecord,
  SimpleLogRecordProcessor,
} from '@opentelemetry/sdk-logs';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_ANY_VALUE_DEPTH } from '../src/convert.ts';
import {
  convertExportRequest,
  decodeExportLogsRequest,
  encodeExportLogsRequest,
  nanosToHrTime,
  type OtlpAnyValue,
  type OtlpEncoding,
} from '../src/index.ts';
import { quoteLargeIntegers } from '../src/proto/codec.ts';
import { scanJson } from '../src/proto/json-scan.ts';
import { type OtlpCapture, startOtlpCapture } from './support/otlp-capture.ts';

let capture: OtlpCapture;
beforeEach(async () => {
  capture = await startOtlpCapture();
});
afterEach(async () => {
  await capture.close();
});

const SPAN = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' };

function emitSample(provider: LoggerProvider): void {
  const logger = provider.getLogger('audit-scope', '1.2.3');
  const ctx = trace.setSpanContext(ROOT_CONTEXT, { ...SPAN, traceFlags: TraceFlags.SAMPLED });
  logger.emit({
    eventName: 'gateway.signal.received',
    timestamp: [1_763_800_000, 123_456_789],
    observedTimestamp: [1_763_800_001, 987_654_321],
    severityNumber: SeverityNumber.INFO,
    severityText: 'INFO',
    body: { signal: { name: 'HighCPU', labels: ['a', 'b'] }, count: 3, ratio: 0.25, ok: true },
    attributes: {
      'audit.event.category': 'gateway',
      'audit.event.action': 'received',
      'audit.event.outcome': 'success',
      'audit.correlation.id': 'corr-1',
      'audit.duration_ms': 42,
      'audit.sensitive': false,
      tags: ['x', 'y'],
    },
    context: ctx,
  });
  logger.emit({
    body: 'an ordinary log line',
    severityNumber: SeverityNumber.WARN,
    timestamp: [1_763_800_002, 5],
    attributes: { 'http.response.status_code': 503, big: 2 ** 53 + 2 },
  });
  provider.getLogger('other-scope').emit({ body: 'no times given' });
}

async function roundTrip(
  exporter: LogRecordExporter,
  encoding: OtlpEncoding,
): Promise<{ sdk: ReadableLogRecord[]; bridged: ReadableLogRecord[] }> {
  const memory = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'svc-a', 'k8s.namespace.name': 'ns-1' }),
    processors: [
      new SimpleLogRecordProcessor({ exporter: memory }),
      new BatchLogRecordProcessor({ exporter }),
    ],
  });
  emitSample(provider);
  await provider.forceFlush();
  const sdk = [...memory.getFinishedLogRecords()];
  await provider.shutdown();
  expect(capture.requests.length).toBeGreaterThan(0);
  const bridged: ReadableLogRecord[] = [];
  for (const req of capture.requests) {
    expect(req.path).toBe('/v1/logs');
    const converted = convertExportRequest(decodeExportLogsRequest(req.body, encoding));
    for (const c of converted) {
      if (!c.ok) throw new Error(c.error);
      bridged.push(c.record);
    }
  }
  return { sdk, bridged };
}

function view(r: ReadableLogRecord) {
  return {
    hrTime: r.hrTime,
    hrTimeObserved: r.hrTimeObserved,
    eventName: r.eventName,
    severityNumber: r.severityNumber,
    severityText: r.severityText,
    body: r.body,
    attributes: r.attributes,
    droppedAttributesCount: r.droppedAttributesCount,
    spanContext: r.spanContext && {
      traceId: r.spanContext.traceId,
      spanId: r.spanContext.spanId,
      traceFlags: r.spanContext.traceFlags,
    },
    resource: r.resource.attributes,
    scope: { name: r.instrumentationScope.name, version: r.instrumentationScope.version },
  };
}

describe.each([
  ['json', (url: string) => new OtlpHttpJsonExporter({ url: `${url}/v1/logs` })],
  [
    'protobuf',
    (url: string) => new OtlpProtoExporter({ url: `${url}/v1/logs`, compression: 'gzip' as never }),
  ],
] as const)('SDK %s exporter → bridge codec', (encoding, make) => {
  it('reproduces the SDK records exactly', async () => {
    const { sdk, bridged } = await roundTrip(make(capture.url), encoding);
    expect(bridged).toHaveLength(3);
    const sortKey = (r: ReadableLogRecord) => `${r.hrTime[0]}.${r.hrTime[1]}`;
    const a = [...sdk].sort((x, y) => sortKey(x).localeCompare(sortKey(y))).map(view);
    const b = [...bridged].sort((x, y) => sortKey(x).localeCompare(sortKey(y))).map(view);
    expect(b).toEqual(a);
    const audit = bridged.find((r) => r.eventName === 'gateway.signal.received')!;
    expect(audit.hrTime).toEqual([1_763_800_000, 123_456_789]);
    expect(audit.spanContext?.traceId).toBe(SPAN.traceId);
    // One batch → one request; its records share one Resource object, as in the SDK.
    expect(capture.requests).toHaveLength(1);
    expect(new Set(bridged.map((r) => r.resource)).size).toBe(1);
  });
});

describe('codec edge cases', () => {
  it('keeps nanosecond precision of int64 timestamps given as JSON numbers or strings', () => {
    const body = `{"resourceLogs":[{"scopeLogs":[{"logRecords":[
      {"timeUnixNano":1763800000123456789,"observedTimeUnixNano":"1763800000999999999"}]}]}]}`;
    const [c] = convertExportRequest(decodeExportLogsRequest(Buffer.from(body), 'json'));
    expect(c?.ok && c.record.hrTime).toEqual([1_763_800_000, 123_456_789]);
    expect(c?.ok && c.record.hrTimeObserved).toEqual([1_763_800_000, 999_999_999]);
    expect(nanosToHrTime(18_446_744_073_709_551_615n)).toEqual([18_446_744_073, 709_551_615]);
  });

  it('rewrites a JSON body only when a number may not survive JSON.parse (one scan finds it)', () => {
    const scan = (text: string) => scanJson(Buffer.from(text), Number.POSITIVE_INFINITY);
    // As OpenTelemetry's exporters write it: int64 values as strings.
    expect(scan('{"timeUnixNano":"1763800000123456789","a":[1,2.5e300,{}]}')).toEqual({
      containers: 3,
      longDigitRuns: false,
    });
    expect(scan('{"timeUnixNano":1763800000123456789}').longDigitRuns).toBe(true);
    expect(scan('{"a":"x\\"1234567890123456789"}').longDigitRuns).toBe(false);
    expect(scan('{"a":1.2345678901234567}').longDigitRuns).toBe(true);
    // Whenever the scan finds no long run, quoting would not have changed the text.
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue({ maxDepth: 4 }),
          fc.array(
            fc.oneof(
              fc.bigInt({ min: -(10n ** 22n), max: 10n ** 22n }).map(Number),
              fc.bigInt({ min: -(10n ** 22n), max: 10n ** 22n }).map(String),
              fc.double({ noNaN: true, noDefaultInfinity: true }),
              fc.string({ unit: 'binary' }),
            ),
          ),
        ),
        (value) => {
          const text = JSON.stringify(value);
          if (!scan(text).longDigitRuns) expect(quoteLargeIntegers(text)).toBe(text);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('quotes only integer literals of 16+ digits outside strings', () => {
    expect(
      quoteLargeIntegers(
        '{"a":"12345678901234567890","b":1234567890123456789,"c":-12345678901234567}',
      ),
    ).toBe('{"a":"12345678901234567890","b":"1234567890123456789","c":"-12345678901234567"}');
    expect(
      quoteLargeIntegers('[123456789012345,1.2345678901234567,1e22,"x\\"1234567890123456"]'),
    ).toBe('[123456789012345,1.2345678901234567,1e22,"x\\"1234567890123456"]');
    const asParsedAfterQuoting = (v: unknown): unknown => {
      if (typeof v === 'number') {
        const text = JSON.stringify(v);
        return /^-?\d{16,}$/.test(text) ? text : v;
      }
      if (Array.isArray(v)) return v.map(asParsedAfterQuoting);
      if (v && typeof v === 'object') {
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, asParsedAfterQuoting(x)]));
      }
      return v;
    };
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue({ maxDepth: 4 }),
          fc.dictionary(
            fc.string(),
            fc.array(
              fc.oneof(
                fc.bigInt({ min: -(10n ** 22n), max: 10n ** 22n }).map(Number),
                fc.double({ noNaN: true, noDefaultInfinity: true }),
                fc.string({ unit: 'binary' }),
              ),
            ),
          ),
        ),
        (value) => {
          const text = JSON.stringify(value);
          expect(JSON.parse(quoteLargeIntegers(text))).toEqual(
            asParsedAfterQuoting(JSON.parse(text)),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('converts kvlist bodies to maps, large int64 to exact strings, and bytes', () => {
    const body = JSON.stringify({
      resourceLogs: [
        {
          scopeLogs: [
            {
              logRecords: [
                {
                  timeUnixNano: '1763800000000000000',
                  body: {
                    kvlistValue: {
                      values: [
                        { key: 'n', value: { intValue: '9007199254740993' } },
                        { key: 'small', value: { intValue: 7 } },
                        { key: 'raw', value: { bytesValue: 'AQID' } },
                        { key: 'empty', value: {} },
                        {
                          key: 'nested',
                          value: {
                            kvlistValue: { values: [{ key: 'k', value: { boolValue: true } }] },
                          },
                        },
                      ],
                    },
                  },
                },
              ],
            },
          ],
        },
      ],
    });
    const [c] = convertExportRequest(decodeExportLogsRequest(Buffer.from(body), 'json'));
    expect(c?.ok).toBe(true);
    const record = c?.ok ? c.record : undefined;
    expect(record?.body).toEqual({
      n: '9007199254740993',
      small: 7,
      raw: new Uint8Array([1, 2, 3]),
      empty: undefined,
      nested: { k: true },
    });
    // Neither timestamp missing: the observed time falls back to the event time.
    expect(record?.hrTimeObserved).toEqual([1_763_800_000, 0]);
  });

  it('rejects invalid hex trace ids, truncated JSON and wrong types with a clear error', () => {
    const bad = [
      '{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"zz"}]}]}]}',
      '{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":',
      '{"resourceLogs":{"not":"an array"}}',
      '[]',
    ];
    for (const text of bad) {
      expect(() => decodeExportLogsRequest(Buffer.from(text), 'json')).toThrow(/invalid|hex/i);
    }
    expect(() => decodeExportLogsRequest(Buffer.from([0x0a, 0x05, 0x01]), 'protobuf')).toThrow(
      /invalid protobuf/,
    );
  });

  it('rejects protobuf whose known fields carry the wrong wire type (not OTLP logs) instead of reading it as empty', () => {
    // Each is well-formed protobuf, and protobufjs alone decodes it into an empty or partial
    // request (a 200 for records that were never there): field 1 of the request as a varint;
    // a log record's body (a message) as a fixed64; severity_number (an enum) as a length-
    // delimited string; time_unix_nano (fixed64) as a varint.
    const record = (bytes: number[]) => {
      const scope = [0x12, bytes.length, ...bytes]; // ScopeLogs.log_records (2)
      const rl = [0x12, scope.length, ...scope]; // ResourceLogs.scope_logs (2)
      return Buffer.from([0x0a, rl.length, ...rl]); // request.resource_logs (1)
    };
    const bad = [
      Buffer.from([0x08, 0x00]),
      record([0x29, 1, 2, 3, 4, 5, 6, 7, 8]), // body (5) as wire type 1
      record([0x12, 0x01, 0x41]), // severity_number (2) as wire type 2
      record([0x08, 0x01]), // time_unix_nano (1) as wire type 0
    ];
    for (const body of bad) {
      expect(() => decodeExportLogsRequest(body, 'protobuf')).toThrow(
        /invalid protobuf.*wire type/,
      );
    }
    // Unknown fields of any wire type are skipped (forward compatibility), and packed or
    // unpacked encodings of the same field both decode.
    const ok = record([0xf8, 0x07, 0x05, 0x10, 0x09]); // field 127 varint 5; severity 9
    const decoded = decodeExportLogsRequest(ok, 'protobuf');
    expect(decoded.resourceLogs?.[0]?.scopeLogs?.[0]?.logRecords?.[0]?.severityNumber).toBe(9);
  });

  it('makes a record whose values nest too deeply a conversion error, not a crash', () => {
    let value: OtlpAnyValue = { stringValue: 'leaf' };
    for (let i = 0; i < MAX_ANY_VALUE_DEPTH + 3; i++) value = { arrayValue: { values: [value] } };
    const body = encodeExportLogsRequest({
      resourceLogs: [
        { scopeLogs: [{ logRecords: [{ body: value }, { body: { stringValue: 'ok' } }] }] },
      ],
    });
    const out = convertExportRequest(decodeExportLogsRequest(body, 'protobuf'));
    expect(out.map((c) => c.ok)).toEqual([false, true]);
    // OTLP/JSON that nests beyond the JSON parser's depth limit is a 400-style decode error.
    let deep = '{"stringValue":"x"}';
    for (let i = 0; i < 120; i++) deep = `{"arrayValue":{"values":[${deep}]}}`;
    const json = `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":${deep}}]}]}]}`;
    expect(() => decodeExportLogsRequest(Buffer.from(json), 'json')).toThrow(/depth/);
  });

  it('rejects the records of a scope whose attributes nest too deeply; the other scopes go on', () => {
    let value: OtlpAnyValue = { stringValue: 'leaf' };
    for (let i = 0; i < MAX_ANY_VALUE_DEPTH + 3; i++) value = { arrayValue: { values: [value] } };
    const body = encodeExportLogsRequest({
      resourceLogs: [
        {
          scopeLogs: [
            {
              scope: { name: 'deep', attributes: [{ key: 'k', value }] },
              logRecords: [{ body: { stringValue: 'a' } }, { body: { stringValue: 'b' } }],
            },
            { scope: { name: 'fine' }, logRecords: [{ body: { stringValue: 'c' } }] },
          ],
        },
      ],
    });
    const out = convertExportRequest(decodeExportLogsRequest(body, 'protobuf'));
    expect(out.map((c) => c.ok)).toEqual([false, false, true]);
  });

  it('refuses OTLP/JSON whose bytes are not UTF-8, as protobuf does (never stored altered)', () => {
    const text =
      '{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"utf8__"}}]}]}]}';
    const bytes = Buffer.from(text);
    const at = bytes.indexOf('__');
    bytes[at] = 0xff;
    bytes[at + 1] = 0xfe;
    expect(() => decodeExportLogsRequest(bytes, 'json')).toThrow(/not valid UTF-8/);
    expect(decodeExportLogsRequest(Buffer.from(text), 'json').resourceLogs).toHaveLength(1);
  });

  it('decodes protobuf strings exactly and refuses every kind of invalid UTF-8 in them', () => {
    // Strings short and long (protobufjs decodes those under 64 bytes itself), a real U+FFFD
    // (valid UTF-8: kept), and each kind of bad sequence Node's decoder would replace with it.
    const good = ['', 'a', 'ключ', '🔐 audit', 'x'.repeat(63), 'y'.repeat(64), 'bad\uFFFDok'];
    for (const s of good) {
      const body = encodeExportLogsRequest({
        resourceLogs: [
          {
            scopeLogs: [
              {
                logRecords: [
                  {
                    body: { stringValue: s },
                    attributes: [{ key: `k-${s}`, value: { stringValue: s } }],
                  },
                ],
              },
            ],
          },
        ],
      });
      const record = decodeExportLogsRequest(body, 'protobuf').resourceLogs?.[0]?.scopeLogs?.[0]
        ?.logRecords?.[0];
      expect(record?.body?.stringValue).toBe(s);
      expect(record?.attributes?.[0]).toEqual({ key: `k-${s}`, value: { stringValue: s } });
    }
    const marker = 'MARK';
    const template = encodeExportLogsRequest({
      resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: { stringValue: `ab${marker}cd` } }] }] }],
    });
    const bad: number[][] = [
      [0xff, 0xfe, 0x41, 0x41], // bytes that never occur in UTF-8
      [0xc0, 0x80, 0x41, 0x41], // an overlong NUL
      [0xed, 0xa0, 0x80, 0x41], // a UTF-16 surrogate encoded as UTF-8 (CESU-8)
      [0x41, 0x41, 0x41, 0xe2], // a sequence cut short by the end of the string
    ];
    for (const bytes of bad) {
      const body = Buffer.from(template);
      body.set(bytes, body.indexOf(marker));
      expect(() => decodeExportLogsRequest(body, 'protobuf')).toThrow(/utf-8/i);
    }
  });
});
