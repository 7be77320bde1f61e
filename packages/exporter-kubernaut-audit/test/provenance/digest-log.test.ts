// SPDX-License-Identifier: Apache-2.0
/*
 * The digest log (issue 16): bounded by rotation to digest.log.1 with the newest heads always in
 * digest.log; an I/O failure is a warning, never a throw; and the optional second destination:
 * the signed heads as log records through a real OTLPLogExporter to a loopback OTLP receiver.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  asSignedChainHead,
  loadPublicKey,
  type SignedChainHead,
  verifyChainHead,
} from '@kubernaut/audit-provenance';
import { captureDiag, cleanupTempDirs, FaultServer, tempDir } from '@kubernaut/test-kit';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigestLog } from '../../src/provenance/digest-log.ts';
import { nodeFs } from '../../src/spool/fs.ts';
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

const head = (seq: number): SignedChainHead => ({
  producer_id: 'p',
  session_id: 's',
  seq,
  hash: 'a'.repeat(64),
  time: new Date().toISOString(),
  key_id: '0123456789abcdef',
  sig: 'A'.repeat(88),
});

describe('DigestLog', () => {
  it('rotates to digest.log.1 past maxBytes: bounded, the newest heads in digest.log', () => {
    const dir = tempDir();
    const d = new DigestLog({ directory: dir, fs: nodeFs, maxBytes: 4096 });
    for (let i = 1; i <= 100; i++) d.append(head(i));
    d.close();
    const now = readFileSync(join(dir, 'digest.log'), 'utf8').trim().split('\n');
    const old = readFileSync(join(dir, 'digest.log.1'), 'utf8').trim().split('\n');
    expect(statSync(join(dir, 'digest.log')).size).toBeLessThanOrEqual(4096);
    expect(statSync(join(dir, 'digest.log.1')).size).toBeLessThanOrEqual(4096);
    expect(asSignedChainHead(JSON.parse(now[now.length - 1] as string))?.seq).toBe(100);
    const seqs = [...old, ...now].map((l) => asSignedChainHead(JSON.parse(l))?.seq as number);
    // Contiguous up to the newest: nothing newer was lost.
    expect(seqs).toEqual(seqs.map((_, i) => 100 - seqs.length + 1 + i));
  });

  it('an append that cannot be written is a warning, never a throw; later appends retry', () => {
    const dir = tempDir();
    let fail = true;
    const fs = {
      ...nodeFs,
      writeSync: (...a: Parameters<typeof nodeFs.writeSync>) => {
        if (fail) throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
        return nodeFs.writeSync(...a);
      },
    };
    const diag = captureDiag();
    try {
      const d = new DigestLog({ directory: dir, fs });
      expect(() => d.append(head(1))).not.toThrow();
      fail = false;
      d.append(head(2));
      d.close();
      expect(diag.messages.join('\n')).toContain('cannot append');
      const lines = readFileSync(join(dir, 'digest.log'), 'utf8').trim().split('\n');
      expect(lines.map((l) => JSON.parse(l).seq)).toEqual([2]);
    } finally {
      diag.restore();
    }
  });
});

describe('digestLogger: signed heads to an OTLP logs endpoint', () => {
  it('each signed head reaches a loopback OTLP receiver through a real OTLPLogExporter', async () => {
    const bodies: Array<Record<string, unknown>> = [];
    const receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/logs`;
    try {
      const digestProvider = new LoggerProvider({
        processors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter({ url }) })],
      });
      const dir = tempDir();
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      const keyFile = join(dir, 'k.pem');
      writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
      const spool = tempDir();
      const processor = processorFor(ds, {
        spool: { directory: spool },
        signingKeyFile: keyFile,
        digestLogger: digestProvider.getLogger('kubernaut-audit-digest'),
      });
      const provider = new LoggerProvider({ processors: [processor] });
      const logger = provider.getLogger('app');
      for (let i = 0; i < 3; i++) logger.emit(auditRecord(`dl:${i}`, 'digest-otlp'));
      await processor.forceFlush({ timeoutMillis: 10_000 });
      await provider.shutdown();
      await digestProvider.shutdown();

      const records = bodies.flatMap((b) =>
        (
          b.resourceLogs as Array<{
            scopeLogs: Array<{ logRecords: Array<Record<string, unknown>> }>;
          }>
        ).flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords)),
      );
      // The drain's head and the shutdown head.
      expect(records.length).toBe(2);
      const pub = loadPublicKey(publicKey.export({ type: 'spki', format: 'pem' }));
      for (const r of records) {
        expect(r.eventName).toBe('kubernaut.audit.chain_head');
        const kv = (
          r.body as {
            kvlistValue: { values: Array<{ key: string; value: Record<string, unknown> }> };
          }
        ).kvlistValue.values;
        const obj = Object.fromEntries(
          kv.map(({ key, value }) => [key, value.stringValue ?? Number(value.intValue)]),
        );
        const h = asSignedChainHead(obj);
        expect(h?.seq).toBe(3);
        expect(h && verifyChainHead(h, h.sig, pub)).toBe(true);
      }
      expect(existsSync(join(spool, 'digest.log'))).toBe(true);
    } finally {
      await new Promise((r) => receiver.close(r));
    }
  });
});
