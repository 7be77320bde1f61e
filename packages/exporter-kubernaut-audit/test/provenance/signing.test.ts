// SPDX-License-Identifier: Apache-2.0
/*
 * Signed chain heads (issue 16) through the real processor and OTel SDK: one signature per
 * drain on the drain's last record, verifiable with the public key; the signed heads in
 * `<spool>/digest.log`; a bad key is a diag error and the processor runs unsigned; without a key
 * nothing changes.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  asSignedChainHead,
  asStampSignature,
  computeProvenanceHash,
  keyIdOf,
  loadPublicKey,
  readProvenance,
  verifyChainHead,
} from '@kubernaut/audit-provenance';
import { captureDiag, cleanupTempDirs, FaultServer, tempDir } from '@kubernaut/test-kit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processorFor } from '../processor/fixtures/harness.ts';
import { auditRecord } from '../processor/fixtures/support.ts';

let ds: FaultServer;
beforeAll(async () => {
  ds = await FaultServer.start();
});
afterAll(async () => {
  await ds.close();
  cleanupTempDirs();
});

function keyFiles(dir: string) {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const priv = join(dir, 'signing.pem');
  writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return { priv, pub: loadPublicKey(publicKey.export({ type: 'spki', format: 'pem' })) };
}

type Stamp = Record<string, unknown>;
const stampOf = (e: Record<string, unknown>) =>
  (e.event_data as Record<string, Stamp>).audit_provenance as Stamp;

async function run(options: { signingKeyFile?: string }, cid: string, batches: number[]) {
  const before = ds.received().length;
  const dir = tempDir();
  const processor = processorFor(ds, { spool: { directory: dir }, ...options });
  const provider = new LoggerProvider({ processors: [processor] });
  const logger = provider.getLogger('signing');
  let n = 0;
  for (const size of batches) {
    for (let i = 0; i < size; i++) logger.emit(auditRecord(`${cid}:${n++}`, cid));
    await processor.forceFlush({ timeoutMillis: 10_000 });
  }
  await provider.shutdown();
  const events = ds
    .received()
    .slice(before)
    .map((s) => s.event as unknown as Record<string, unknown>);
  return { dir, events };
}

describe('signed chain heads', () => {
  it('one signature per drain, on its last record, verifiable with the public key; heads in digest.log', async () => {
    const dir = tempDir();
    const { priv, pub } = keyFiles(dir);
    const { dir: spool, events } = await run({ signingKeyFile: priv }, 'sig-a', [5, 3]);
    expect(events).toHaveLength(8);
    const signedSeqs: number[] = [];
    for (const e of events) {
      const stamp = stampOf(e);
      const p = readProvenance(e);
      // The signature is outside the hash: the stored event still hashes to its stamp.
      expect(computeProvenanceHash(e)).toBe(p?.hash);
      const sig = asStampSignature(stamp.signature);
      if (sig === undefined) continue;
      signedSeqs.push(p?.seq as number);
      expect(sig.key_id).toBe(keyIdOf(pub));
      const head = {
        producer_id: p?.producer_id as string,
        session_id: p?.session_id as string,
        seq: p?.seq as number,
        hash: p?.hash as string,
        time: sig.time,
        key_id: sig.key_id,
      };
      expect(verifyChainHead(head, sig.sig, pub)).toBe(true);
      expect(verifyChainHead({ ...head, hash: 'f'.repeat(64) }, sig.sig, pub)).toBe(false);
    }
    expect(signedSeqs.sort((a, b) => a - b)).toEqual([5, 8]);

    const lines = readFileSync(join(spool, 'digest.log'), 'utf8').split('\n').filter(Boolean);
    const heads = lines.map((l) => asSignedChainHead(JSON.parse(l)));
    // Two drains and the shutdown.
    expect(heads.map((h) => h?.seq)).toEqual([5, 8, 8]);
    for (const h of heads) expect(h && verifyChainHead(h, h.sig, pub)).toBe(true);
  });

  it("durability 'sync' (a drain per record): not a signature per record; the digest log ends at the last record", async () => {
    const dir = tempDir();
    const { priv, pub } = keyFiles(dir);
    const before = ds.received().length;
    const spool = tempDir();
    const processor = processorFor(ds, {
      spool: { directory: spool, durability: 'sync' },
      signingKeyFile: priv,
    });
    const provider = new LoggerProvider({ processors: [processor] });
    const logger = provider.getLogger('signing-sync');
    const N = 600;
    const t0 = performance.now();
    for (let i = 0; i < N; i++) logger.emit(auditRecord(`sig-sync:${i}`, 'sig-sync'));
    const elapsed = performance.now() - t0;
    await processor.forceFlush({ timeoutMillis: 20_000 });
    await provider.shutdown();
    const events = ds
      .received()
      .slice(before)
      .map((s) => s.event as unknown as Record<string, unknown>);
    expect(events).toHaveLength(N);
    let signatures = 0;
    for (const e of events) {
      const sig = asStampSignature(stampOf(e).signature);
      if (sig === undefined) continue;
      signatures++;
      const p = readProvenance(e);
      const h = {
        producer_id: p?.producer_id as string,
        session_id: p?.session_id as string,
        seq: p?.seq as number,
        hash: p?.hash as string,
        time: sig.time,
        key_id: sig.key_id,
      };
      expect(verifyChainHead(h, sig.sig, pub)).toBe(true);
    }
    // At most one per 256 records or per 100 ms (and the first): far fewer than one per record.
    expect(signatures).toBeGreaterThanOrEqual(1);
    expect(signatures).toBeLessThanOrEqual(Math.ceil(N / 256) + Math.ceil(elapsed / 100) + 1);
    const heads = readFileSync(join(spool, 'digest.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => asSignedChainHead(JSON.parse(l)));
    expect(heads[heads.length - 1]?.seq).toBe(N);
    for (const h of heads) expect(h && verifyChainHead(h, h.sig, pub)).toBe(true);
  });

  it('without a key nothing changes: no signature member, no digest log', async () => {
    const { dir, events } = await run({}, 'sig-none', [4]);
    expect(events).toHaveLength(4);
    for (const e of events) expect(stampOf(e).signature).toBeUndefined();
    expect(existsSync(join(dir, 'digest.log'))).toBe(false);
  });

  it('an unreadable or wrong key: one clear diag error, records delivered unsigned, never a throw', async () => {
    const dir = tempDir();
    const bad = join(dir, 'rsa.pem');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    writeFileSync(bad, rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    for (const file of [bad, join(dir, 'missing.pem')]) {
      const diag = captureDiag();
      try {
        const { events } = await run({ signingKeyFile: file }, `sig-bad-${file.length}`, [3]);
        expect(events).toHaveLength(3);
        for (const e of events) expect(stampOf(e).signature).toBeUndefined();
        expect(diag.messages.join('\n')).toContain('chain heads are NOT signed');
      } finally {
        diag.restore();
      }
    }
  });

  it('KUBERNAUT_AUDIT_SIGNING_KEY_FILE is the default of signingKeyFile', async () => {
    const dir = tempDir();
    const { priv } = keyFiles(dir);
    process.env.KUBERNAUT_AUDIT_SIGNING_KEY_FILE = priv;
    try {
      const { events } = await run({}, 'sig-env', [2]);
      expect(stampOf(events[1] as Record<string, unknown>).signature).toBeDefined();
    } finally {
      delete process.env.KUBERNAUT_AUDIT_SIGNING_KEY_FILE;
    }
  });
});
