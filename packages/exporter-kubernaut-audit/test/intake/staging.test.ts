// SPDX-License-Identifier: Apache-2.0
/*
 * A drain stages each stamped event's UTF-8 bytes until its append (src/intake/staging.ts):
 * the bounds of the staging buffer, and, through both processors and a real DataStorage
 * stand-in, that a drain larger than the bound delivers every event byte for byte, its
 * provenance hash intact.
 */
import { computeProvenanceHash } from '@kubernaut/audit-provenance';
import { tempDir } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { describe, expect, it } from 'vitest';
import { MAX_STAGED_BYTES, Staging } from '../../src/intake/staging.ts';
import { BOTH_PROCESSORS, faultServerForFile } from '../processor/fixtures/harness.ts';
import { auditRecord } from '../processor/fixtures/support.ts';

const ds = await faultServerForFile();

describe('Staging', () => {
  it('writes one drain after the other into the same buffer, multi-byte text byte for byte', () => {
    const s = new Staging();
    s.begin();
    const text = 'aé€😀'.repeat(10);
    const bytes = Buffer.byteLength(text);
    const at = s.put(text, bytes);
    const at2 = s.put(text, bytes);
    expect([at, at2]).toEqual([0, bytes]);
    expect(s.buffer.toString('utf8', at2, at2 + bytes)).toBe(text);
    const first = s.buffer;
    s.begin();
    expect(s.put('{}', 2)).toBe(0);
    expect(s.buffer).toBe(first);
  });

  it('grows within a drain and leaves the outgrown buffer to the events written before', () => {
    const s = new Staging();
    s.begin();
    const small = 'x'.repeat(100);
    expect(s.put(small, 100)).toBe(0);
    const before = s.buffer;
    const big = 'y'.repeat(before.length);
    expect(s.put(big, big.length)).toBe(0);
    expect(s.buffer).not.toBe(before);
    expect(before.toString('utf8', 0, 100)).toBe(small);
    expect(s.buffer.toString('utf8', 0, big.length)).toBe(big);
  });

  it('answers -1 past MAX_STAGED_BYTES per drain, and lets a grown buffer go at the next drain', () => {
    const s = new Staging();
    s.begin();
    const chunk = 'z'.repeat(4 * 1024 * 1024);
    const answers = [1, 2, 3, 4, 5].map(() => s.put(chunk, chunk.length));
    expect(answers.filter((a) => a >= 0)).toHaveLength(MAX_STAGED_BYTES / chunk.length);
    expect(answers.at(-1)).toBe(-1);
    const grown = s.buffer;
    s.begin();
    expect(s.put('{}', 2)).toBe(0);
    expect(s.buffer).not.toBe(grown);
    expect(s.buffer.length).toBeLessThan(grown.length);
  });
});

describe('a drain larger than the staging bound', () => {
  it.each(BOTH_PROCESSORS)(
    '%s: delivers every event byte for byte, staged or not, with its provenance hash',
    async (_name, make) => {
      const before = ds.received().length;
      const processor = make(ds, { spool: { directory: tempDir() } });
      const provider = new LoggerProvider({ processors: [processor] });
      const logger = provider.getLogger('staging');
      // 120 events of ≈ 150 KB of 1- to 4-byte UTF-8 characters: ≈ 18 MB in one drain.
      const text = (i: number) => `${i}:${'aé€😀'.repeat(15_000)}`;
      const N = 120;
      for (let i = 0; i < N; i++) {
        const r = auditRecord(`staging:${i}`, 'staging');
        (r.body as Record<string, unknown>).note = text(i);
        logger.emit(r);
      }
      await processor.forceFlush({ timeoutMillis: 30_000 });
      const got = ds.received().slice(before);
      expect(got).toHaveLength(N);
      expect(N * Buffer.byteLength(text(0))).toBeGreaterThan(MAX_STAGED_BYTES);
      got.forEach((s, i) => {
        const data = s.event.event_data as Record<string, unknown>;
        expect(data.fingerprint).toBe(`staging:${i}`);
        expect(data.note).toBe(text(i));
        const prov = data.audit_provenance as { hash: string; seq: number };
        expect(computeProvenanceHash(s.event as unknown as Record<string, unknown>)).toBe(
          prov.hash,
        );
      });
      await provider.shutdown();
    },
    60_000,
  );
});
