// SPDX-License-Identifier: Apache-2.0
/*
 * The delivery engine behind KubernautAuditExporter: sends serialised events in order,
 * in requests of at most `maxBatchSize` events and < 5 MiB, and acts on each answer
 * (see outcomes.ts) until every event is settled (accepted or dead-lettered), the
 * deadline passes (standalone export) or the signal aborts (spool sender).
 */

import {
  type AuditEventRequest,
  MAX_BATCH_BYTES,
  MAX_EVENT_AGE_MS,
} from '@kubernaut/datastorage-contract';
import type { ResolvedExporterConfig } from '../config/exporter-env.ts';
import type { DeadLetterEntry, DeadLetterWriter } from '../dead-letter/dead-letter-writer.ts';
import type { ComponentDiag } from '../diag/component-diag.ts';
import type { ExporterMetrics } from '../metrics/exporter-metrics.ts';
import { backoffDelay } from './backoff.ts';
import type { BearerTokenSource } from './bearer-token.ts';
import { arrayBody, chunkBySize } from './chunking.ts';
import type { SendOptions, TransportResult } from './http-transport.ts';
import { type Action, classify } from './outcomes.ts';

/** What became of one event handed to `deliver()`. */
export type DeliveryOutcome = 'accepted' | 'dead_lettered' | 'pending';

/** Per input index, in input order. */
export interface DeliveryResult {
  outcomes: DeliveryOutcome[];
}

/** Sleeps `ms`, resolving early when `signal` aborts. */
export type Sleeper = (ms: number, signal?: AbortSignal) => Promise<void>;

export interface DeliveryDeps {
  send(body: Buffer, options: SendOptions): Promise<TransportResult>;
  token: BearerTokenSource;
  config: ResolvedExporterConfig;
  metrics: ExporterMetrics;
  deadLetter(): DeadLetterWriter;
  diag: ComponentDiag;
  sleep: Sleeper;
  now(): number;
  random(): number;
}

export interface RunOptions {
  signal?: AbortSignal | undefined;
  /** Give up at this time (ms since the epoch); undefined retries without end. */
  deadline?: number | undefined;
}

export interface RunResult {
  outcomes: DeliveryOutcome[];
  /** Why the run stopped before settling everything. */
  lastError?: string;
  /** Pending events whose last request may have been committed (the caller resends them). */
  ambiguous: number;
}

interface Item {
  index: number;
  event: AuditEventRequest;
  json: string;
  size: number;
  ambiguous: boolean;
}

interface Ctx {
  deps: DeliveryDeps;
  opts: RunOptions;
  outcomes: DeliveryOutcome[];
  lastError?: string;
}

const STOPPED = Symbol('stopped');
/** Retry after a wait: re-check expiry before the next attempt. */
const RECHECK = Symbol('recheck');

/** Sends `events` in order; see the module comment. Never rejects. */
export async function runDelivery(
  deps: DeliveryDeps,
  events: readonly AuditEventRequest[],
  opts: RunOptions,
): Promise<RunResult> {
  const ctx: Ctx = { deps, opts, outcomes: events.map(() => 'pending') };
  const items: Item[] = [];
  const unserialisable: Item[] = [];
  events.forEach((event, index) => {
    let json: string | undefined;
    try {
      json = JSON.stringify(event);
    } catch {
      json = undefined;
    }
    const item: Item = { index, event, json: json ?? '', size: 0, ambiguous: false };
    if (json === undefined) {
      unserialisable.push(item);
      return;
    }
    item.size = Buffer.byteLength(json, 'utf8');
    items.push(item);
  });
  await deadLetter(ctx, unserialisable, 'unserializable', 'event cannot be serialised as JSON');

  const chunks = chunkBySize(
    items.map((i) => i.size),
    deps.config.maxBatchSize,
    MAX_BATCH_BYTES,
  );
  for (const [start, end] of chunks) {
    const r = await sendInOrder(ctx, items.slice(start, end));
    if (r === STOPPED) break;
  }
  const ambiguous = items.filter((i) => i.ambiguous && ctx.outcomes[i.index] === 'pending').length;
  return {
    outcomes: ctx.outcomes,
    ambiguous,
    ...(ctx.lastError === undefined ? {} : { lastError: ctx.lastError }),
  };
}

/** Settles one chunk, splitting it as the answers require; keeps the input order. */
async function sendInOrder(ctx: Ctx, chunk: Item[]): Promise<typeof STOPPED | undefined> {
  const queue: Item[][] = [chunk];
  // Backoff state of the group at the head of the queue (kept across expiry re-checks).
  const backoff = { retries: 0 };
  while (queue.length > 0) {
    let group = queue[0]!;
    const now = ctx.deps.now();
    const expired = group.filter((i) => isExpired(i.event, now));
    if (expired.length > 0) {
      await deadLetter(
        ctx,
        expired,
        'expired',
        'event_timestamp is more than 7 days old; DataStorage can never accept it',
      );
      group = group.filter((i) => !expired.includes(i));
      if (group.length === 0) {
        queue.shift();
        continue;
      }
      queue[0] = group;
    }
    const action = await attempt(ctx, group, backoff);
    if (action === STOPPED) return STOPPED;
    if (action === RECHECK) continue;
    backoff.retries = 0;
    switch (action.kind) {
      case 'accepted':
        for (const i of group) ctx.outcomes[i.index] = 'accepted';
        queue.shift();
        break;
      case 'reject-index': {
        const bad = group[action.index]!;
        await deadLetter(ctx, [bad], 'rejected', action.detail, action.status);
        const rest = group.filter((_, k) => k !== action.index);
        if (rest.length > 0) queue[0] = rest;
        else queue.shift();
        break;
      }
      case 'bisect':
      case 'split': {
        if (group.length === 1) {
          await deadLetter(
            ctx,
            group,
            action.kind === 'bisect' ? 'rejected' : 'too_large',
            action.detail,
            action.status,
          );
          queue.shift();
        } else {
          const mid = Math.ceil(group.length / 2);
          queue.splice(0, 1, group.slice(0, mid), group.slice(mid));
        }
        break;
      }
    }
  }
  return undefined;
}

type Final = Exclude<Action, { kind: 'retry' } | { kind: 'aborted' }>;

/** Sends one group until DataStorage gives a final answer for it, or the run stops. */
async function attempt(
  ctx: Ctx,
  group: Item[],
  backoff: { retries: number },
): Promise<Final | typeof STOPPED | typeof RECHECK> {
  const { deps, opts } = ctx;
  const body = arrayBody(group.map((i) => i.json));
  for (;;) {
    if (opts.signal?.aborted) return STOPPED;
    let timeoutMillis = deps.config.timeoutMillis;
    let clipped = false;
    if (opts.deadline !== undefined) {
      const left = opts.deadline - deps.now();
      if (left <= 0) {
        ctx.lastError ??= 'export timed out';
        return STOPPED;
      }
      clipped = left < timeoutMillis;
      timeoutMillis = Math.min(timeoutMillis, left);
    }
    const resent = group.filter((i) => i.ambiguous);
    if (resent.length > 0) {
      deps.metrics.duplicatesPossible(resent.length);
      for (const i of resent) i.ambiguous = false;
    }
    const headers: Record<string, string> = {};
    const authorization = await deps.token.authorization();
    if (authorization !== undefined) headers.authorization = authorization;
    const started = deps.now();
    const result = await deps.send(body, {
      timeoutMillis,
      headers,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const seconds = Math.max(0, deps.now() - started) / 1000;
    const action = classify(result, group.length, deps.now());
    if (result.kind === 'response') {
      const failed = result.status >= 300 ? String(result.status) : undefined;
      deps.metrics.request(seconds, result.status, failed);
    } else {
      deps.metrics.request(seconds, undefined, result.reason);
    }
    if (action.kind === 'aborted') {
      if (action.ambiguous) for (const i of group) i.ambiguous = true;
      return STOPPED;
    }
    if (action.kind !== 'retry') return action;

    if (action.ambiguous) for (const i of group) i.ambiguous = true;
    // A request cut short by the export's own deadline says nothing about DataStorage: the
    // error reported is then the last real answer, when there was one.
    const cutByDeadline = clipped && result.kind !== 'response' && result.reason === 'timeout';
    if (!(cutByDeadline && ctx.lastError !== undefined))
      ctx.lastError = action.status
        ? `DataStorage answered ${action.status}: ${action.detail}`
        : `DataStorage request failed: ${action.detail}`;
    deps.metrics.retry(action.reason);
    if (action.auth) {
      deps.token.invalidate();
      deps.diag.report(
        'error',
        `auth:${action.status}`,
        `DataStorage refused the credentials (HTTP ${action.status}); re-reading the token file and retrying. Audit events are held, not lost: fix the token or RBAC`,
        group.length,
      );
    } else {
      deps.diag.report(
        'warn',
        `retry:${action.reason}`,
        `delivery to DataStorage will be retried (${action.detail})`,
        group.length,
      );
    }
    const delay =
      action.retryAfterMillis ?? backoffDelay(backoff.retries, deps.config.retry, deps.random);
    backoff.retries++;
    if (opts.deadline !== undefined && deps.now() + delay >= opts.deadline) {
      return STOPPED;
    }
    await deps.sleep(delay, opts.signal);
    const now = deps.now();
    if (group.some((i) => isExpired(i.event, now))) return RECHECK;
  }
}

function isExpired(event: AuditEventRequest, now: number): boolean {
  const t = Date.parse(event.event_timestamp);
  return Number.isFinite(t) && t < now - MAX_EVENT_AGE_MS;
}

async function deadLetter(
  ctx: Ctx,
  items: Item[],
  reason: string,
  detail: string,
  status?: number,
): Promise<void> {
  if (items.length === 0) return;
  const time = new Date(ctx.deps.now()).toISOString();
  const entries: DeadLetterEntry[] = items.map((i) => ({
    time,
    reason,
    detail,
    ...(status === undefined ? {} : { status }),
    event: i.event,
  }));
  await ctx.deps.deadLetter().write(entries);
  for (const i of items) ctx.outcomes[i.index] = 'dead_lettered';
  ctx.deps.metrics.deadLettered(items.length, reason);
  ctx.deps.diag.report(
    'warn',
    `dead-letter:${reason}`,
    `${items.length} audit event(s) dead-lettered (${reason}${status ? `, HTTP ${status}` : ''}): ${detail}`,
    items.length,
  );
}
