// SPDX-License-Identifier: Apache-2.0
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type AuditEventRequest, validateAuditEventRequest } from '@kubernaut/datastorage-contract';
import { OpenApiValidator } from '@kubernaut/datastorage-contract/openapi';
import {
  eventTypes,
  nodeBinary,
  realisticPayload,
  sampleEventTypes,
  specPath,
} from '@kubernaut/test-kit';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';

const SPEC_CATEGORIES = [
  'gateway',
  'notification',
  'analysis',
  'aiagent',
  'signalprocessing',
  'workflow',
  'workflowexecution',
  'orchestration',
  'approval',
  'effectiveness',
  'actiontype',
  'apifrontend',
  'security',
  'agentsession',
];

let validator: OpenApiValidator;
beforeAll(() => {
  validator = OpenApiValidator.fromFile(specPath());
});

function request(eventType: string, overrides: Partial<AuditEventRequest> = {}): AuditEventRequest {
  const info = eventTypes().find((t) => t.eventType === eventType);
  return {
    version: '1.0',
    event_type: eventType,
    event_timestamp: new Date().toISOString(),
    event_category: info?.category ?? 'gateway',
    event_action: 'received',
    event_outcome: 'success',
    correlation_id: 'rr-2026-11-20-7f3a',
    event_data: info ? realisticPayload(eventType) : { event_type: eventType },
    ...overrides,
  };
}

describe('OpenApiValidator: loading', () => {
  it('reads the discriminator mapping: 142 event types, the same as event_types.tsv', () => {
    const types = validator.eventTypes();
    expect(types.size).toBe(142);
    expect(new Set(eventTypes().map((t) => t.eventType))).toEqual(new Set(types));
  });

  it('names the mapped payload schema of each type as the table does', () => {
    for (const t of eventTypes()) expect(validator.schemaNameFor(t.eventType)).toBe(t.schema);
    expect(validator.schemaNameFor('no.such.type')).toBeUndefined();
  });

  it('every category of the table is one of the 14 spec categories, and all 14 occur', () => {
    expect(new Set(eventTypes().map((t) => t.category))).toEqual(new Set(SPEC_CATEGORIES));
  });

  it('fails with a clear error for a missing file, a non-spec and a spec without mapping', () => {
    const dir = mkdtempSync(join(tmpdir(), 'openapi-'));
    try {
      expect(() => OpenApiValidator.fromFile(join(dir, 'absent.yaml'))).toThrow(
        /cannot read DataStorage OpenAPI spec/,
      );
      writeFileSync(join(dir, 'bad.yaml'), 'a: [unclosed');
      expect(() => OpenApiValidator.fromFile(join(dir, 'bad.yaml'))).toThrow(/cannot parse/);
      writeFileSync(join(dir, 'empty.yaml'), 'openapi: 3.0.3\n');
      expect(() => OpenApiValidator.fromFile(join(dir, 'empty.yaml'))).toThrow(/AuditEventRequest/);
      expect(() =>
        OpenApiValidator.fromDocument({
          components: { schemas: { AuditEventRequest: { type: 'object', properties: {} } } },
        }),
      ).toThrow(/discriminator\.mapping/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a path that is not a regular file (a FIFO would block, /dev/zero never end)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'openapi-'));
    try {
      const fifo = join(dir, 'spec.fifo');
      execFileSync('mkfifo', [fifo]);
      const zero = join(dir, 'zero.yaml');
      symlinkSync('/dev/zero', zero);
      // In a child: on a blocking read the child times out, not the test worker.
      const script = `import { OpenApiValidator } from '@kubernaut/datastorage-contract/openapi';
        try { OpenApiValidator.fromFile(process.argv[1]); } catch (e) { console.log(e.message); }`;
      for (const path of [fifo, zero]) {
        const { stdout } = await promisify(execFile)(
          nodeBinary(),
          ['--conditions=@kubernaut/source', '--input-type=module', '-e', script, path],
          { timeout: 20_000, killSignal: 'SIGKILL' },
        );
        expect(stdout).toContain(
          `cannot read DataStorage OpenAPI spec ${path}: not a regular file`,
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('OpenApiValidator: payloads', () => {
  it('accepts the realistic payload of every one of the 142 event types', () => {
    for (const t of eventTypes()) {
      expect({ type: t.eventType, v: validator.validate(request(t.eventType)) }).toEqual({
        type: t.eventType,
        v: [],
      });
    }
  });

  it('one event type per category validates, with the category its emitters use', () => {
    const samples = sampleEventTypes();
    expect(samples.map((s) => s.category).sort()).toEqual([...SPEC_CATEGORIES].sort());
    for (const s of samples) {
      const ev = request(s.eventType, { event_category: s.category });
      expect(validator.validate(ev)).toEqual([]);
      expect(validateAuditEventRequest(ev)).toEqual([]);
    }
  });

  it('chooses the schema by the mapping, not by trying every oneOf branch', () => {
    // A complete Gateway payload relabelled as an aiagent event fails the aiagent schema,
    // although it would pass the GatewayAuditPayload branch of the oneOf.
    const gateway = realisticPayload('gateway.signal.received');
    const ev = request('aiagent.response.complete', {
      event_data: { ...gateway, event_type: 'aiagent.response.complete' },
    });
    const v = validator.validate(ev);
    expect(v.length).toBeGreaterThan(0);
    expect(v.every((x) => x.field === 'event_data' && x.reason === 'schema')).toBe(true);
    expect(v.map((x) => x.message).join('\n')).toMatch(/required property 'incident_id'/);
  });

  it('reports a missing required payload field and a bad enum with a readable path', () => {
    const data = realisticPayload('gateway.signal.received');
    delete data.fingerprint;
    data.signal_type = 'page';
    const v = validator.validate(request('gateway.signal.received', { event_data: data }));
    expect(v).toEqual(
      expect.arrayContaining([
        {
          field: 'event_data',
          reason: 'schema',
          message: "event_data must have required property 'fingerprint'",
        },
        {
          field: 'event_data',
          reason: 'schema',
          message: 'event_data.signal_type must be one of "alert"',
        },
      ]),
    );
  });

  it('reports an event type outside the mapping as unknown_event_type', () => {
    const v = validator.validate(request('gateway.signal.exploded'));
    expect(v).toEqual([
      expect.objectContaining({ field: 'event_type', reason: 'unknown_event_type' }),
    ]);
  });

  it('requires the discriminator inside event_data', () => {
    const ev = request('gateway.signal.received', { event_data: { signal_name: 'x' } });
    expect(validator.validate(ev)).toEqual([
      expect.objectContaining({ field: 'event_data', reason: 'schema' }),
    ]);
  });

  it('allows extra keys in payloads (where provenance goes)', () => {
    for (const s of sampleEventTypes()) {
      const data = {
        ...realisticPayload(s.eventType),
        audit_provenance: { seq: 1, producer: 'p' },
      };
      expect(validator.validate(request(s.eventType, { event_data: data }))).toEqual([]);
    }
  });
});

describe('OpenApiValidator: envelope', () => {
  it('accepts null for the nullable fields', () => {
    const ev = request('gateway.signal.received', {
      parent_event_id: null,
      namespace: null,
      cluster_id: null,
      severity: null,
      duration_ms: null,
      error_code: null,
      error_message: null,
      retention_days: null,
      is_sensitive: null,
      parent_event_date: null,
    });
    expect(validator.validate(ev)).toEqual([]);
  });

  it('names the field of each envelope violation', () => {
    const ev = {
      ...request('gateway.signal.received'),
      event_outcome: 'maybe',
      parent_event_id: 'not-a-uuid',
      event_timestamp: 'yesterday',
      duration_ms: 1.5,
      is_sensitive: 'yes',
    } as unknown as AuditEventRequest;
    const { correlation_id: _c, ...missing } = ev;
    const fields = validator
      .validate(missing)
      .map((v) => `${v.field}:${v.reason}`)
      .sort();
    expect(fields).toEqual([
      'correlation_id:schema',
      'duration_ms:schema',
      'event_outcome:schema',
      'event_timestamp:schema',
      'is_sensitive:schema',
      'parent_event_id:schema',
    ]);
  });

  it('never throws, whatever it is given', () => {
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withMap: true, withTypedArray: true }), (x) => {
        expect(Array.isArray(validator.validate(x))).toBe(true);
        expect(
          Array.isArray(validator.validate({ ...request('gateway.crd.created'), event_data: x })),
        ).toBe(true);
      }),
      { numRuns: 200 },
    );
    expect(validator.validate(null)).not.toEqual([]);
  });
});
