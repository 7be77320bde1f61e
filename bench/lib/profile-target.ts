// SPDX-License-Identifier: Apache-2.0
/* One hot path to profile (run by bench/profile.ts under --cpu-prof): argv[2] is the target. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AuditLogRecordProcessor,
  KubernautAuditExporter,
} from '@kubernaut/exporter-kubernaut-audit';
import { ExportResultCode } from '@opentelemetry/core';
import { LoggerProvider, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { auditRecord, benchResource, loadTemplates } from './records.ts';
import { Sink } from './sink.ts';
import { yieldToLoop } from './stats.ts';

type Target = 'emit' | 'sync-emit' | 'export' | 'drain';

async function child(target: Target): Promise<void> {
  await loadTemplates();
  const sink = await Sink.start();
  const dir = mkdtempSync(join(tmpdir(), 'bench-prof-'));
  try {
    if (target === 'export') {
      const exporter = new KubernautAuditExporter({ url: sink.url });
      const provider = new LoggerProvider({
        resource: benchResource(),
        processors: [
          {
            onEmit: (r) => records.push(r),
            forceFlush: () => Promise.resolve(),
            shutdown: () => Promise.resolve(),
          },
        ],
      });
      const records: ReadableLogRecord[] = [];
      const logger = provider.getLogger('p');
      for (let i = 0; i < 20_000; i++) logger.emit(auditRecord(i));
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < records.length; i += 500) {
          await new Promise<void>((resolve, reject) =>
            exporter.export(records.slice(i, i + 500), (r) =>
              r.code === ExportResultCode.SUCCESS ? resolve() : reject(r.error),
            ),
          );
        }
      }
      await exporter.shutdown();
      return;
    }
    const processor = new AuditLogRecordProcessor({
      exporter: new KubernautAuditExporter({ url: sink.url }),
      spool: { directory: dir, durability: target === 'sync-emit' ? 'sync' : 'batch' },
      deadLetter: { path: join(dir, 'dead-letter.jsonl') },
    });
    const provider = new LoggerProvider({ resource: benchResource(), processors: [processor] });
    const logger = provider.getLogger('p');
    const n = target === 'drain' ? 50_000 : 100_000;
    if (target === 'drain') await sink.down();
    for (let i = 0; i < n; i += 100) {
      for (let j = i; j < Math.min(n, i + 100); j++) logger.emit(auditRecord(j));
      await yieldToLoop();
    }
    if (target === 'drain') await sink.up();
    await processor.forceFlush({ timeoutMillis: 120_000 });
    await provider.shutdown();
  } finally {
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await child(process.argv[2] as Target);
