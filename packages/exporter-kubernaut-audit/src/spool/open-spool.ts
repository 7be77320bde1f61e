/* `openSpool`: a durable FileSpool when possible, else a MemorySpool — never throws. */
import { diag } from '@opentelemetry/api';
import { FileSpool } from './file-spool.ts';
import { MemorySpool } from './memory-spool.ts';
import type { AuditSpool, SpoolOptions } from './types.ts';

/**
 * Opens the file spool in `options.directory`. When it cannot be opened (read-only filesystem,
 * permissions, a path that is not a directory, locked by a live process, invalid options), logs
 * a diag warning, calls `onFallback` with the cause and returns a memory-only spool with the same
 * `maxBytes`, so that the application still starts. Never throws.
 */
export function openSpool(options: SpoolOptions, onFallback?: (err: Error) => void): AuditSpool {
  try {
    return FileSpool.open(options);
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    diag.warn(
      `audit spool falls back to memory only (records will not survive a restart): ${err.message}`,
    );
    try {
      onFallback?.(err);
    } catch (cbErr) {
      diag.error(`audit spool onFallback callback threw: ${String(cbErr)}`);
    }
    const max = options?.maxBytes;
    return new MemorySpool(typeof max === 'number' && max > 0 ? { maxBytes: max } : undefined);
  }
}
