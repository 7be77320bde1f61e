import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubernautAuditExporter, ThreadedAuditLogRecordProcessor, AuditLogRecordProcessor } from '@kubernaut/exporter-kubernaut-audit';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { auditRecord, benchResource, loadTemplates } from './lib/records.ts';
import { Sink } from './lib/sink.ts';
import { yieldToLoop } from './lib/stats.ts';
await loadTemplates();
const sink = await Sink.start();
const N = 50_000;
const records = Array.from({ length: N }, (_, i) => auditRecord(i));
const kind = process.argv[2] ?? 'thread';
const dir = mkdtempSync(join(tmpdir(), 'warm-'));
const P = kind === 'thread' ? ThreadedAuditLogRecordProcessor : AuditLogRecordProcessor;
const processor = new P({ exporter: new KubernautAuditExporter({ url: sink.url }), spool: { directory: dir } });
const provider = new LoggerProvider({ resource: benchResource(), processors: [processor] });
const logger = provider.getLogger('bench', '1.0.0');
await provider.forceFlush();
for (let round = 0; round < 5; round++) {
  await sink.reset(N);
  const cpu0 = process.cpuUsage(); const th0 = process.threadCpuUsage(); const t0 = performance.now();
  for (let i = 0; i < N; i += 500) { for (let j = i; j < i + 500; j++) logger.emit(records[j]!); await yieldToLoop(); }
  await provider.forceFlush();
  const s = (performance.now() - t0) / 1000; const c = process.cpuUsage(cpu0); const th = process.threadCpuUsage(th0);
  console.log(kind, round, 'main', ((th.user + th.system) / N).toFixed(1), 'proc', ((c.user + c.system) / N).toFixed(1), 'rec/s', Math.round(N / s));
}
await provider.shutdown(); await sink.close();
