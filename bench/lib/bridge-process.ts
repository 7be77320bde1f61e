// SPDX-License-Identifier: Apache-2.0
/*
 * The OTLP bridge (packages/otlp-bridge) in its own process, delivering to the sink at SINK_URL
 * through a spool in SPOOL_DIR: the process whose CPU scenario 8 measures. Sends `{ port }` over
 * IPC once listening. Messages:
 *   { cmd: 'usage' } → { usage }: CPU time of the process and of its main thread so far (µs)
 *   { cmd: 'flush' } → { usage }: the same, after the processor's forceFlush() (every record the
 *     bridge acknowledged has been accepted by the sink)
 *   { cmd: 'exit' }  → closes the bridge and exits.
 */
import { startOtlpBridge } from '@kubernaut/audit-otlp-bridge';
import { KubernautAuditExporter } from '@kubernaut/exporter-kubernaut-audit';
import { serveOverIpc } from './ipc-child.ts';

const sinkUrl = process.env.SINK_URL;
const directory = process.env.SPOOL_DIR;
if (!sinkUrl || !directory) throw new Error('SINK_URL and SPOOL_DIR are required');

const bridge = await startOtlpBridge({
  port: 0,
  host: '127.0.0.1',
  exporter: new KubernautAuditExporter({ url: sinkUrl }),
  spool: { directory },
  logger: () => undefined,
});

function usage() {
  const p = process.cpuUsage();
  const t = process.threadCpuUsage();
  return { process: p.user + p.system, thread: t.user + t.system };
}

serveOverIpc(
  bridge.port,
  () => bridge.close(),
  async (cmd) => {
    if (cmd === 'usage') process.send?.({ usage: usage() });
    else if (cmd === 'flush') {
      await bridge.processor.forceFlush();
      process.send?.({ usage: usage() });
    }
  },
);
