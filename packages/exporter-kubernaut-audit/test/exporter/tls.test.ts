// SPDX-License-Identifier: Apache-2.0
/*
 * TLS: the server certificate is verified by default; a CA given in `ca` is trusted.
 * The fixture is a self-signed test certificate for 127.0.0.1 (see fixtures/README.md).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deliverEvents } from '@kubernaut/exporter-kubernaut-audit/experimental';
import {
  auditEvents,
  cleanupTempDirs,
  FaultServer,
  recordingSleeper,
  tempDir,
} from '@kubernaut/test-kit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createExporter } from '../../src/exporter/create.ts';

const fixtures = join(import.meta.dirname, 'fixtures');
const cert = readFileSync(join(fixtures, 'server-cert.pem'));
const key = readFileSync(join(fixtures, 'server-key.pem'));

let ds: FaultServer;
let tmpDir: string;

beforeEach(async () => {
  ds = await FaultServer.start({ tls: { key, cert } });
  tmpDir = tempDir();
});

afterEach(async () => {
  await ds.close();
  cleanupTempDirs();
  expect(ds.specViolations).toEqual([]);
});

describe('TLS', () => {
  it('delivers over https when the CA is given', async () => {
    expect(ds.url).toMatch(/^https:/);
    const e = createExporter(
      { url: ds.url, ca: cert },
      { deadLetterPath: join(tmpDir, 'dl.jsonl'), env: {} },
    );
    const r = await deliverEvents(e, auditEvents(3));
    expect(r.outcomes).toEqual(['accepted', 'accepted', 'accepted']);
    expect(ds.received()).toHaveLength(3);
    await e.shutdown();
  });

  it('refuses an unknown certificate by default (retries, never sends)', async () => {
    const ac = new AbortController();
    const s = recordingSleeper((_ms, call) => {
      if (call === 2) ac.abort();
    });
    const e = createExporter(
      { url: ds.url },
      { deadLetterPath: join(tmpDir, 'dl.jsonl'), env: {}, sleep: s.sleep },
    );
    const r = await deliverEvents(e, auditEvents(2), { signal: ac.signal });
    expect(r.outcomes).toEqual(['pending', 'pending']);
    expect(s.delays).toHaveLength(2);
    expect(ds.requests).toHaveLength(0);
    await e.shutdown();
  });
});
