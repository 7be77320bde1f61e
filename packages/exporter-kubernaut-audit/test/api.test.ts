// SPDX-License-Identifier: Apache-2.0
/*
 * The public API (DESIGN §3): the main entry exports what an OpenTelemetry user needs and
 * nothing else; internals are not methods of the public classes.
 */
import * as main from '@kubernaut/exporter-kubernaut-audit';
import { KubernautAuditExporter } from '@kubernaut/exporter-kubernaut-audit';
import * as experimental from '@kubernaut/exporter-kubernaut-audit/experimental';
import { describe, expect, it } from 'vitest';

describe('@kubernaut/exporter-kubernaut-audit', () => {
  it('main entry: exactly these runtime names', () => {
    const names = Object.keys(main).sort();
    expect(names).toEqual([
      'AuditFlushTimeoutError',
      'AuditLogRecordProcessor',
      'ENV_KUBERNAUT_AUDIT_BEARER_TOKEN_FILE',
      'ENV_KUBERNAUT_AUDIT_ENDPOINT',
      'KubernautAuditExportError',
      'KubernautAuditExporter',
      'ThreadedAuditLogRecordProcessor',
      'excludeAuditRecords',
    ]);
    expect(names.length).toBeLessThanOrEqual(20);
  });

  it('KubernautAuditExporter has the LogRecordExporter methods, no internal ones', () => {
    // `_`-prefixed members are TypeScript-private; deliver & co. are `#`-private.
    const methods = Object.getOwnPropertyNames(KubernautAuditExporter.prototype)
      .filter((n) => !n.startsWith('_'))
      .sort();
    expect(methods).toEqual(['componentName', 'constructor', 'export', 'forceFlush', 'shutdown']);
    const e = new KubernautAuditExporter({ url: 'http://127.0.0.1:1' });
    for (const name of ['deliver', 'setDeadLetterWriter', 'openApiValidator']) {
      expect(name in e, name).toBe(false);
    }
    return e.shutdown();
  });

  it('internals the repository builds on are behind the experimental subpath', () => {
    for (const name of ['deliverEvents', 'createAuditDeliverer', 'mapLogRecord', 'openSpool']) {
      expect(typeof (experimental as Record<string, unknown>)[name]).toBe('function');
    }
  });
});
