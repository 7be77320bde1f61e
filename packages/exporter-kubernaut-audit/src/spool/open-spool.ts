// SPDX-License-Identifier: Apache-2.0
/* `openSpool`: a durable FileSpool when possible, else a MemorySpool — never throws. */
import { ComponentDiag } from '../diag/component-diag.ts';
import { FileSpool } from './file-spool.ts';
import { MemorySpool } from './memory-spool.ts';
import type { AuditSpool, SpoolOptions } from './types.ts';

const log = new ComponentDiag('kubernaut-audit spool');

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
    log.warn(`falls back to memory only (records will not survive a restart): ${err.message}`);
    try {
      onFallback?.(err);
    } catch (cbErr) {
      log.error(`onFallback callback threw: ${String(cbErr)}`);
    }
    const max = options?.maxBytes;
    return new MemorySpool(typeof max === 'number' && max > 0 ? { maxBytes: max } : undefined);
  }
}
