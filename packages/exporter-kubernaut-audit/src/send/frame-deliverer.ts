// SPDX-License-Identifier: Apache-2.0
/*
 * An AuditDeliverer that sends frame bytes (minimal, until the delivery core's deliverer lands):
 * the request body is the frame's own bytes (or a re-sliced subset), never decoded or serialised
 * again. Answers are classified by the exporter's rules: accepted → settled; an event DataStorage
 * names → dead-lettered; a batch refused without an index or as too large → split until the
 * offender is alone; anything else → back off (Retry-After when given) and retry until the
 * signal aborts. Requests and waits never keep the process alive.
 */
import type { DeliveryDeps } from '../exporter/delivery.ts';
import { classify } from '../exporter/outcomes.ts';
import type { DeadLetter, DeadLetterFile } from '../spool/dead-letter.ts';
import { backoffDelay } from '../transport/backoff.ts';
import type { AuditDeliverer, DeliveryHealth, EventOutcome, OutgoingBatch } from './types.ts';

export class FrameDeliverer implements AuditDeliverer {
  private readonly _deps: DeliveryDeps;
  private readonly _deadLetters: DeadLetterFile;

  constructor(deps: DeliveryDeps, deadLetters: DeadLetterFile) {
    this._deps = deps;
    this._deadLetters = deadLetters;
  }

  async deliver(
    batch: OutgoingBatch,
    options: { signal: AbortSignal; health: DeliveryHealth },
  ): Promise<EventOutcome[]> {
    const n = batch.seqs.length;
    const outcomes: EventOutcome[] = new Array<EventOutcome>(n).fill('pending');
    const all = Array.from({ length: n }, (_, i) => i);
    const queue: number[][] = [all];
    const deps = this._deps;
    let retries = 0;
    try {
      while (queue.length > 0 && !options.signal.aborted) {
        const group = queue[0] as number[];
        const headers: Record<string, string> = {};
        const authorization = await deps.token.authorization();
        if (authorization !== undefined) headers.authorization = authorization;
        const started = deps.now();
        const result = await deps.send(batch.body(group === all ? undefined : group), {
          timeoutMillis: deps.config.timeoutMillis,
          headers,
          signal: options.signal,
          unref: true,
        });
        const seconds = Math.max(0, deps.now() - started) / 1000;
        const action = classify(result, group.length, deps.now());
        if (result.kind === 'response') {
          deps.metrics.request(
            seconds,
            result.status,
            result.status >= 300 ? String(result.status) : undefined,
          );
        } else deps.metrics.request(seconds, undefined, result.reason);
        if (action.kind === 'aborted') break;
        if (action.kind === 'accepted') {
          for (const i of group) outcomes[i] = 'accepted';
          queue.shift();
          retries = 0;
          options.health.accepted(deps.now());
          continue;
        }
        if (action.kind === 'reject-index') {
          const bad = group[action.index] as number;
          this._deadLetter(batch, [bad], 'rejected', action.detail, action.status, outcomes);
          const rest = group.filter((_, k) => k !== action.index);
          if (rest.length > 0) queue[0] = rest;
          else queue.shift();
          continue;
        }
        if (action.kind === 'bisect' || action.kind === 'split') {
          if (group.length === 1) {
            const reason = action.kind === 'bisect' ? 'rejected' : 'too_large';
            this._deadLetter(batch, group, reason, action.detail, action.status, outcomes);
            queue.shift();
          } else {
            const mid = Math.ceil(group.length / 2);
            queue.splice(0, 1, group.slice(0, mid), group.slice(mid));
          }
          continue;
        }
        deps.metrics.retry(action.reason);
        if (action.auth) deps.token.invalidate();
        deps.diag.report(
          action.auth ? 'error' : 'warn',
          `retry:${action.reason}`,
          `delivery to DataStorage will be retried (${action.detail})`,
          group.length,
        );
        const delay =
          action.retryAfterMillis ?? backoffDelay(retries, deps.config.retry, deps.random);
        retries++;
        await deps.sleep(delay, options.signal, true);
      }
    } catch (err) {
      deps.diag.report('error', 'deliver', `unexpected delivery error: ${String(err)}`);
    }
    return outcomes;
  }

  private _deadLetter(
    batch: OutgoingBatch,
    indexes: readonly number[],
    reason: string,
    detail: string,
    status: number,
    outcomes: EventOutcome[],
  ): void {
    const entries: DeadLetter[] = indexes.map((i) => {
      let event: unknown;
      try {
        event = JSON.parse(batch.eventJson(i));
      } catch {
        event = batch.eventJson(i);
      }
      return { reason, detail, status, event };
    });
    this._deadLetters.write(entries);
    for (const i of indexes) outcomes[i] = 'dead_lettered';
    this._deps.metrics.deadLettered(indexes.length, reason);
  }
}
