// SPDX-License-Identifier: Apache-2.0
/*
 * A resource detector that settles late, or never (the preamble of issue 11): the inner batch
 * processor is given tokens with a settled static resource, and the mapping reads only settled
 * resource attributes, so records reach the spool and DataStorage on time, and shutdown()
 * completes within shutdownTimeoutMillis instead of waiting for the detector.
 */
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider } from '@opentelemetry/sdk-logs';
import { describe, expect, it } from 'vitest';
import { deliveredIds, faultServerForFile, processorFor } from './fixtures/harness.ts';
import { auditRecord } from './fixtures/support.ts';

const ds = await faultServerForFile();

const SHUTDOWN_TIMEOUT = 2000;

/** Rejects when `p` is still pending after `ms` (what "never completes" looks like here). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not complete within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

describe('a resource detector that settles late or never', () => {
  it.each([
    ['never settles', () => new Promise<string>(() => {})],
    [
      'settles after 5 s',
      () => new Promise<string>((r) => setTimeout(() => r('late-host'), 5000).unref()),
    ],
  ])('%s: records are delivered on time, shutdown completes in time', async (_name, pending) => {
    const before = ds.received().length;
    const resource = resourceFromAttributes({
      'service.name': 'detected-service',
      'host.id': pending(),
    });
    expect(resource.asyncAttributesPending).toBe(true);
    const processor = processorFor(ds, {
      shutdownTimeoutMillis: SHUTDOWN_TIMEOUT,
      scheduledDelayMillis: 50,
    });
    const provider = new LoggerProvider({ resource, processors: [processor] });
    for (let i = 0; i < 10; i++) provider.getLogger('t').emit(auditRecord(`det-0:${i}`, 'det-0'));
    // Well before the late detector settles: nothing waits for it.
    await within(processor.forceFlush({ timeoutMillis: 3000 }), 3000, 'forceFlush');
    expect(deliveredIds(ds).slice(before)).toHaveLength(10);
    // Settled attributes are used (service.name), pending ones never waited for.
    expect(ds.received().slice(before)[0]?.event.actor_id).toBe('detected-service');
    provider.getLogger('t').emit(auditRecord('det-0:10', 'det-0'));
    await within(provider.shutdown(), SHUTDOWN_TIMEOUT + 3000, 'shutdown');
    expect(deliveredIds(ds).slice(before)).toHaveLength(11);
  });
});
