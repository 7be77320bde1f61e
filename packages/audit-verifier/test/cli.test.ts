// SPDX-License-Identifier: Apache-2.0
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeProvenanceHash, readProvenance } from '@kubernaut/audit-provenance';
import { AUDIT_EVENT_DATA_PROVENANCE_KEY } from '@kubernaut/audit-semantic-conventions';
import type { AuditEventRequest } from '@kubernaut/datastorage-contract';
import { ProvenanceStamper } from '@kubernaut/exporter-kubernaut-audit/experimental';
import { sampleEvent, storedForm } from '@kubernaut/test-kit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { VerifyReport } from '../src/analyze.ts';
import { DataStorageReader } from '../src/client.ts';
import { replaySidecarPath } from '../src/dead-letters.ts';
import { runCli } from './run-cli.ts';
import { type StubDataStorage, startStub } from './stub-datastorage.ts';

let stub: StubDataStorage;
let dir: string;
beforeEach(async () => {
  stub = await startStub((e) => storedForm(e as unknown as AuditEventRequest));
  dir = mkdtempSync(join(tmpdir(), 'kn-cli-'));
});
afterEach(async () => {
  await stub.close();
  rmSync(dir, { recursive: true, force: true });
});

const run = runCli;

function stampedEvents(
  n: number,
  stamper = ProvenanceStamper.open({ producerId: 'prod-c' }),
): AuditEventRequest[] {
  return Array.from({ length: n }, (_, i) => stamper.stamp(sampleEvent(i)));
}

describe('DataStorageReader', () => {
  it('reads every event through split, closed windows with small pages', async () => {
    const base = Date.now() - 3_600_000;
    for (let i = 0; i < 1200; i++) {
      stub.events.push(
        storedForm(sampleEvent(i, { event_timestamp: new Date(base + i * 1000).toISOString() })),
      );
    }
    const reader = new DataStorageReader({ url: stub.url, pageSize: 50, maxWindowEvents: 200 });
    const r = await reader.readEvents({
      since: new Date(base - 1000),
      until: new Date(base + 1_300_000),
    });
    expect(r.events).toHaveLength(1200);
    expect(new Set(r.events.map((e) => e.event_id)).size).toBe(1200);
    expect(r.warnings).toEqual([]);
    expect(r.requests).toBeGreaterThan(1200 / 50);
  });

  it('reads a window again when events arrive in it while it is paged', async () => {
    const base = Date.now() - 600_000;
    for (let i = 0; i < 30; i++) {
      stub.events.push(
        storedForm(sampleEvent(i, { event_timestamp: new Date(base + i * 1000).toISOString() })),
      );
    }
    let injected = 0;
    stub.onQuery = (offset) => {
      // A late arrival (older timestamp) while the second page is read shifts the offsets.
      if (offset === 10 && injected < 3) {
        injected++;
        stub.events.push(
          storedForm(
            sampleEvent(100 + injected, { event_timestamp: new Date(base + 500).toISOString() }),
          ),
        );
      }
    };
    const reader = new DataStorageReader({ url: stub.url, pageSize: 10 });
    const r = await reader.readEvents({
      since: new Date(base - 1000),
      until: new Date(base + 60_000),
    });
    expect(new Set(r.events.map((e) => e.event_id))).toEqual(
      new Set(stub.events.map((e) => e.event_id)),
    );
  });
});

describe('kubernaut-audit verify', () => {
  it('exits 0 on a complete trail, 1 on a gap (named in text and JSON)', async () => {
    const events = stampedEvents(6);
    stub.events.push(...events.map((e) => storedForm(e)));
    const ok = await run('verify', '--url', stub.url, '--json');
    expect(ok.code).toBe(0);
    const report = JSON.parse(ok.out) as VerifyReport;
    expect(report.complete).toBe(true);
    expect(report.server_chains.map((c) => c.correlation_id).sort()).toEqual([
      'corr-0',
      'corr-1',
      'corr-2',
    ]);

    stub.events.splice(2, 1);
    const bad = await run('verify', '--url', stub.url, '--since', '2h');
    expect(bad.code).toBe(1);
    expect(bad.out).toContain('INCOMPLETE');
    expect(bad.out).toMatch(/lost seqs \(gaps\):\s+3 \(1 record\)/);
  });

  it('sends the bearer token and never prints it', async () => {
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'sekret-token-123\n');
    stub.failWith = 401;
    const r = await run('verify', '--url', stub.url, '--bearer-token-file', tokenFile);
    expect(r.code).toBe(2);
    expect(r.err).toContain('401');
    expect(r.out + r.err).not.toContain('sekret-token-123');
    expect(stub.requests[0]?.authorization).toBe('Bearer sekret-token-123');
  });

  it('exits 2 with a clear message on usage errors', async () => {
    expect((await run()).code).toBe(2);
    const noUrl = await run('verify');
    expect(noUrl).toMatchObject({ code: 2 });
    expect(noUrl.err).toContain('--url is required');
    const badSince = await run('verify', '--url', stub.url, '--since', 'yesterday');
    expect(badSince.code).toBe(2);
    expect(badSince.err).toContain('--since');
    expect((await run('verify', '--url', stub.url, '--bogus')).code).toBe(2);
    expect((await run('frobnicate')).err).toContain('unknown command');
    const missing = await run(
      'verify',
      '--url',
      stub.url,
      '--dead-letters',
      join(dir, 'nope.jsonl'),
    );
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('cannot read dead-letter file');
    const down = await run('verify', '--url', 'http://127.0.0.1:1');
    expect(down.code).toBe(2);
    expect(down.err).toContain('cannot reach DataStorage');
  });
});

describe('kubernaut-audit dead-letters', () => {
  function writeDeadLetters(): {
    file: string;
    events: AuditEventRequest[];
    stamper: ProvenanceStamper;
  } {
    const stamper = ProvenanceStamper.open({ producerId: 'prod-d' });
    const e1 = stamper.stamp(sampleEvent(1));
    const rejectedAtEmit = stamper.reserveRejected('missing_field');
    const e3 = stamper.stamp(sampleEvent(3));
    const e4 = stamper.stamp(sampleEvent(4));
    const file = join(dir, 'dead-letter.jsonl');
    writeFileSync(
      file,
      [
        { time: 't', reason: 'rejected', detail: 'event at index 0 bad', status: 400, event: e3 },
        {
          time: 't',
          reason: 'missing_field',
          detail: 'correlation_id: missing',
          event: {
            record: { eventName: 'x' },
            violations: [],
            [AUDIT_EVENT_DATA_PROVENANCE_KEY]: rejectedAtEmit,
          },
        },
      ]
        .map((l) => JSON.stringify(l))
        .join('\n')
        .concat('\n{"torn'),
    );
    stub.events.push(storedForm(e1), storedForm(e4));
    return { file, events: [e1, e3, e4], stamper };
  }

  it('lists dead letters with their seqs', async () => {
    const { file } = writeDeadLetters();
    const r = await run('dead-letters', 'list', '--file', file, '--json');
    expect(r.code).toBe(0);
    const list = JSON.parse(r.out) as {
      entries: Array<Record<string, unknown>>;
      malformed: number;
    };
    expect(list.malformed).toBe(1);
    expect(list.entries.map((e) => [e.seq, e.reason, e.replayable])).toEqual([
      [3, 'rejected', true],
      [2, 'missing_field', false],
    ]);
    const text = await run('dead-letters', 'list', '--file', file);
    expect(text.out).toContain('needs --fixed');
  });

  it('verify counts dead letters as rejected; replay with --fixed delivers and records them', async () => {
    const { file, events } = writeDeadLetters();
    const before = await run('verify', '--url', stub.url, '--dead-letters', file, '--json');
    const rb = JSON.parse(before.out) as VerifyReport;
    expect(rb.complete).toBe(true);
    expect(rb.producers[0]?.rejected_count).toBe(2);

    // Fix seq 3 (rejected by the server) and replay it.
    const fixed = JSON.parse(JSON.stringify(events[1])) as AuditEventRequest;
    fixed.event_action = 'corrected';
    const fixedFile = join(dir, 'fixed.json');
    writeFileSync(fixedFile, JSON.stringify([fixed]));
    const replay = await run(
      'dead-letters',
      'replay',
      '--file',
      file,
      '--url',
      stub.url,
      '--seq',
      '3',
      '--fixed',
      fixedFile,
    );
    expect(replay.code).toBe(0);
    expect(replay.out).toContain('replayed 1');
    const posted = (
      stub.requests.find((q) => q.path.endsWith('/batch'))?.body as AuditEventRequest[]
    )[0];
    const p = readProvenance(posted);
    expect(posted?.event_action).toBe('corrected');
    expect(p).toMatchObject({
      producer_id: 'prod-d',
      seq: 3,
      prev_hash: readProvenance(events[1])?.prev_hash,
    });
    expect(p?.hash).toBe(computeProvenanceHash(posted as never));
    expect(p?.hash).not.toBe(readProvenance(events[1])?.hash);
    expect(readFileSync(replaySidecarPath(file), 'utf8')).toContain('"seq":3');

    const after = await run('verify', '--url', stub.url, '--dead-letters', file, '--json');
    const ra = JSON.parse(after.out) as VerifyReport;
    expect(after.code).toBe(0);
    expect(ra.producers[0]).toMatchObject({ replayed: 1, rejected_count: 1, delivered: 3 });

    // Replaying it again is skipped; the record rejected at emit needs --fixed.
    const again = await run(
      'dead-letters',
      'replay',
      '--file',
      file,
      '--url',
      stub.url,
      '--all',
      '--json',
    );
    const outcome = JSON.parse(again.out) as {
      replayed: unknown[];
      skipped: Array<{ seq: number; reason: string }>;
    };
    expect(outcome.replayed).toEqual([]);
    expect(outcome.skipped.map((s) => [s.seq, s.reason.split(':')[0]])).toEqual([
      [3, 'already replayed'],
      [2, 'rejected at emit'],
    ]);
  });

  it('replays dead letters without provenance once (recorded by line)', async () => {
    const file = join(dir, 'plain-dead-letter.jsonl');
    writeFileSync(
      file,
      `${JSON.stringify({ time: 't', reason: 'rejected', detail: 'd', status: 400, event: sampleEvent(1) })}\n`,
    );
    const first = await run(
      'dead-letters',
      'replay',
      '--file',
      file,
      '--url',
      stub.url,
      '--all',
      '--json',
    );
    expect(first.code).toBe(0);
    expect((JSON.parse(first.out) as { replayed: unknown[] }).replayed).toHaveLength(1);
    const second = await run(
      'dead-letters',
      'replay',
      '--file',
      file,
      '--url',
      stub.url,
      '--all',
      '--json',
    );
    const outcome = JSON.parse(second.out) as {
      replayed: unknown[];
      skipped: Array<{ reason: string }>;
    };
    expect(outcome.replayed).toEqual([]);
    expect(outcome.skipped.map((x) => x.reason)).toEqual(['already replayed']);
    expect(stub.events).toHaveLength(1);
  });

  it('reports a failed replay with exit 1 and records nothing', async () => {
    const { file } = writeDeadLetters();
    stub.failWith = 503;
    const r = await run('dead-letters', 'replay', '--file', file, '--url', stub.url, '--seq', '3');
    expect(r.code).toBe(1);
    expect(r.err).toContain('503');
    expect(() => readFileSync(replaySidecarPath(file))).toThrow();
  });

  it('refuses bad replay arguments with exit 2', async () => {
    const { file } = writeDeadLetters();
    expect((await run('dead-letters', 'replay', '--file', file, '--url', stub.url)).code).toBe(2);
    const unknownSeq = await run(
      'dead-letters',
      'replay',
      '--file',
      file,
      '--url',
      stub.url,
      '--seq',
      '99',
    );
    expect(unknownSeq.code).toBe(2);
    expect(unknownSeq.err).toContain('no dead letter with seq 99');
    expect(
      (await run('dead-letters', 'replay', '--file', file, '--url', stub.url, '--seq', 'x')).code,
    ).toBe(2);
    expect((await run('dead-letters', 'nope')).code).toBe(2);
  });
});
