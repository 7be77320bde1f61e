// SPDX-License-Identifier: Apache-2.0
/*
 * The delivery engine (DESIGN §6, issue 11 behaviours 3–6): sends one OutgoingBatch in order,
 * in requests of at most `maxBatchSize` events and < 5 MiB, and acts on each answer until
 * every event is settled (accepted or dead-lettered), the deadline passes (standalone export)
 * or the signal aborts (the sender's stop). Never rejects: a partial result survives an
 * exception (events already accepted stay accepted, the rest is pending).
 *
 * Invariants:
 * - An event is dead-lettered only on evidence that the event, not DataStorage, is the
 *   problem: DataStorage's own problem+json rejects it AND DataStorage accepted other events
 *   since that rejection began (siblings of a bisection, or another lane: the shared
 *   DeliveryHealth). Until then it is set aside and the events behind it go on, which gathers
 *   the evidence. When DataStorage keeps rejecting with nothing accepted (more rejections in a
 *   row than a bisection's depth + STORM_SLACK, or nothing left to try) it is a rejection
 *   storm (an ingress, a WAF, a server clock far ahead, a broken deployment): nothing is
 *   dead-lettered, the whole remainder is resent after each backoff, and nothing more is cut
 *   until DataStorage accepts something.
 * - DataStorage down (nothing accepted anywhere) is never poison. A group answered 5xx while
 *   DataStorage accepts other events is bisected; a lone event that keeps getting the same 5xx
 *   answer (≥ POISON_MIN_ATTEMPTS attempts over ≥ POISON_MIN_MILLIS by the injected clock)
 *   while other events were accepted meanwhile is dead-lettered as `poison` (replayable).
 * - Events of a batch reach DataStorage in batch order: a group waits until the one before it
 *   is settled; an event set aside (named by index, waiting for evidence) is only resent when
 *   nothing after it was accepted.
 * - A batch never stops its lane for an event set aside: when only such events are left,
 *   nothing was accepted since their rejection, and the lane holds events behind the batch
 *   (`moreBehind`, the sender's), the run ends after its backoff with them `pending`, and the
 *   sender sends them again together with the events behind them (whose acceptance is the
 *   evidence). Resent alone, a lone bad event would wait for an acceptance elsewhere for ever,
 *   and every later event of its lane with it.
 * - Events older than DataStorage's 7-day window are dead-lettered as `expired` unsent.
 * - No wait is shorter than the backoff (see backoff.ts), with one exception: a backoff the
 *   server did not ask for (no Retry-After) ends when DataStorage accepts a request of another
 *   lane meanwhile (the shared DeliveryHealth): DataStorage is back, and every lane resumes at
 *   once instead of at its own next retry (up to `maxDelayMillis` after an outage).
 */

import { MAX_BATCH_BYTES, MAX_EVENT_AGE_MS } from '@kubernaut/datastorage-contract';
import { errorText } from '@kubernaut/datastorage-contract/config';
import type { ResolvedExporterConfig } from '../config/exporter-env.ts';
import type { ComponentDiag } from '../measure/diag.ts';
import type { ExporterMetrics } from '../measure/exporter-metrics.ts';
import type { DeliveryHealth, EventOutcome, OutgoingBatch } from '../send/types.ts';
import type { DeadLetterEntry } from '../spool/dead-letter.ts';
import { retryDelay } from './backoff.ts';
import type { BearerTokenSource } from './bearer-token.ts';
import { eventTimeOf } from './event-time.ts';
import type { SendOptions, TransportResult } from './http-transport.ts';
import { type Action, classify } from './outcomes.ts';
import { bodyBytes, type RequestBody } from './request-body.ts';

/** A lone event is poison after this many identical 5xx answers… */
export const POISON_MIN_ATTEMPTS = 5;
/** …spread over at least this long (ms, by the injected clock). */
export const POISON_MIN_MILLIS = 60_000;

/** Sleeps `ms`, resolving early when `signal` aborts. */
export type Sleeper = (ms: number, signal?: AbortSignal) => Promise<void>;

/** Where dead letters go (the processor's bounded writer, or the exporter's own). */
export interface DeadLetterSink {
  write(entries: readonly DeadLetterEntry[]): Promise<number>;
}

export interface EngineDeps {
  send(body: RequestBody, options: SendOptions): Promise<TransportResult>;
  token: BearerTokenSource;
  config: ResolvedExporterConfig;
  metrics: ExporterMetrics;
  deadLetters(): DeadLetterSink;
  diag: ComponentDiag;
  sleep: Sleeper;
  now(): number;
  random(): number;
}

export interface EngineOptions {
  health: DeliveryHealth;
  signal?: AbortSignal | undefined;
  /** Give up at this time (ms since the epoch); undefined retries without end. */
  deadline?: number | undefined;
  /** Requests must not keep the process alive (the sender behind the spool). */
  unref?: boolean;
  /** Called before each wait for a retry. */
  onRetry?: (() => void) | undefined;
  /**
   * True when the lane holds events behind this batch (the sender's): a run left with only
   * events set aside for evidence then hands them back (see the module comment).
   */
  moreBehind?: (() => boolean) | undefined;
}

export interface EngineResult {
  outcomes: EventOutcome[];
  /** Why the run stopped before settling everything. */
  lastError?: string;
}

/** A run of events (indexes into the batch, ascending) sent as one request. */
interface Group {
  idx: number[];
  /** When DataStorage first rejected (400/413) this group or the group it was cut from. */
  rejectedSince?: number;
  /** When this group, or the group it was cut from, first got a 5xx answer. */
  failingSince?: number;
  /** Every event of it was set aside (named bad by DataStorage, waiting for evidence). */
  setAside?: boolean;
}

/** An event DataStorage named as bad, set aside until DataStorage accepts something. */
interface Held {
  i: number;
  since: number;
  status: number;
  detail: string;
  reason: string;
}

const STOP = Symbol('stop');
/** The run hands its events set aside back to go with the events behind the batch. */
const YIELD = Symbol('yield');
/**
 * Events emitted less than this long ago are not checked for expiry before sending (they were
 * inside DataStorage's window when mapped); one rejected at the very edge is still
 * dead-lettered as `expired` when DataStorage names it.
 */
const EXPIRY_CHECK_AFTER_MILLIS = 60_000;
const EXPIRED_DETAIL = 'event_timestamp is more than 7 days old; DataStorage can never accept it';
/** Rejections in a row beyond a bisection's depth before a storm is declared. */
const STORM_SLACK = 4;

class Run {
  readonly outcomes: EventOutcome[];
  lastError: string | undefined;
  private readonly _held: Held[] = [];
  /** Backoff attempt counter; reset when something is settled. */
  private _retries = 0;
  /** Set while DataStorage rejects everything: when that began. */
  private _stormSince: number | undefined;
  /** DataStorage rejections since the last acceptance this run saw. */
  private _rejections = 0;
  /** Lone event under poison watch: its answer signature, attempts and first failure. */
  private _lone: { i: number; sig: string; attempts: number; since: number } | undefined;
  /** Per event: sent in an attempt that may have been committed, not sent since. */
  private readonly _ambiguous: Uint8Array;
  /** Per event: already sent once in this run. */
  private readonly _sent: Uint8Array;

  private readonly deps: EngineDeps;
  private readonly batch: OutgoingBatch;
  private readonly opts: EngineOptions;

  constructor(deps: EngineDeps, batch: OutgoingBatch, opts: EngineOptions) {
    this.deps = deps;
    this.batch = batch;
    this.opts = opts;
    const n = batch.seqs.length;
    this.outcomes = new Array<EventOutcome>(n).fill('pending');
    this._ambiguous = new Uint8Array(n);
    this._sent = new Uint8Array(n);
  }

  async run(): Promise<void> {
    const n = this.batch.seqs.length;
    const max = Math.max(1, this.deps.config.maxBatchSize);
    for (let start = 0; start < n; start += max) {
      const idx: number[] = [];
      for (let i = start; i < Math.min(n, start + max); i++) idx.push(i);
      const r = await this._settle(idx, start + max >= n);
      if (r === STOP || r === YIELD) return;
    }
  }

  /**
   * Settles one chunk, cutting it as the answers require; keeps the order. `last`: no chunk of
   * the batch comes after it.
   */
  private async _settle(
    chunk: number[],
    last: boolean,
  ): Promise<typeof STOP | typeof YIELD | undefined> {
    const queue: Group[] = [{ idx: chunk }];
    // DataStorage rejections in a row (no acceptance in between) before it counts as a storm:
    // enough to bisect down to a bad event and set a few bad neighbours aside.
    const stormAfter = Math.ceil(Math.log2(Math.max(2, chunk.length))) + STORM_SLACK;
    for (;;) {
      if (queue.length === 0) {
        if (this._held.length === 0) return undefined;
        if (await this._settleHeld()) continue;
        // Only events set aside remain and nothing was accepted since: a storm.
        const g = this._unhold();
        queue.push(g);
        if ((await this._storm(g, 'every request was rejected')) === STOP) return STOP;
        if (this._handBack(g, last)) return YIELD;
        continue;
      }
      const g = queue[0] as Group;
      if ((await this._dropExpired(g)) && g.idx.length === 0) {
        queue.shift();
        continue;
      }
      const action = await this._attempt(g);
      if (action === STOP) return STOP;
      const now = this.deps.now();
      if (action.kind === 'accepted') {
        for (const i of g.idx) this.outcomes[i] = 'accepted';
        this.opts.health.accepted(now);
        this._stormSince = undefined;
        this._rejections = 0;
        this._retries = 0;
        queue.shift();
        await this._settleHeld();
        continue;
      }
      if (action.kind === 'retry') {
        if ((await this._retry(queue, g, action, now)) === STOP) return STOP;
        continue;
      }
      // DataStorage rejected the request (its own problem+json, or a 413).
      const since = g.rejectedSince ?? now;
      g.rejectedSince = since;
      if (action.kind === 'split' && g.idx.length > 1) {
        // Too large: halve (no verdict on any event).
        queue.splice(0, 1, ...halves(g, { rejectedSince: since }));
        continue;
      }
      this._rejections++;
      if (this._storming() || (this._rejections > stormAfter && !this._evidence(since))) {
        // Nothing accepted for a run of rejections: DataStorage rejects everything. Nothing is
        // dead-lettered; the whole remainder is resent after a backoff.
        const merged = this._unhold(queue.splice(0));
        queue.push(merged);
        if ((await this._storm(merged, action.detail, action.status)) === STOP) return STOP;
        if (this._handBack(merged, last)) return YIELD;
        continue;
      }
      if (action.kind === 'bisect' && g.idx.length > 1) {
        queue.splice(0, 1, ...halves(g, { rejectedSince: since }));
        continue;
      }
      // One event named bad: dead-lettered when DataStorage accepted others since the
      // rejections began, else set aside while the rest goes on (and gathers that evidence).
      const k = action.kind === 'reject-index' ? action.index : 0;
      const [i] = g.idx.splice(k, 1) as [number];
      if (g.idx.length === 0) queue.shift();
      if (await this._expiredAtRejection(i)) continue;
      this._held.push({
        i,
        since,
        status: action.status,
        detail: action.detail,
        reason: action.kind === 'split' ? 'too_large' : 'rejected',
      });
      await this._settleHeld();
    }
  }

  /** A retry answer: bisect or quarantine on server errors with evidence, else back off. */
  private async _retry(
    queue: Group[],
    g: Group,
    action: Extract<Action, { kind: 'retry' }>,
    now: number,
  ): Promise<typeof STOP | undefined> {
    if (action.serverError) {
      const since = g.failingSince ?? now;
      g.failingSince = since;
      if (g.idx.length > 1 && this._evidence(since)) {
        // DataStorage accepts other events but not this group: find the event.
        queue.splice(0, 1, ...halves(g, { failingSince: since }));
        return undefined;
      }
      if (g.idx.length === 1 && this._poison(g, action, now)) {
        await this._deadLetter(g.idx, 'poison', action.detail, action.status);
        this.deps.metrics.poison(1);
        queue.shift();
        return undefined;
      }
    } else {
      this._lone = undefined;
    }
    return this._backoff(g, action);
  }

  /**
   * After a storm's backoff: true when `g` (all that is left) holds only events set aside,
   * nothing was accepted since their rejection, and events wait behind them (later chunks of
   * the batch, or the lane's: asked only of the sender). The run then ends with them pending.
   */
  private _handBack(g: Group, last: boolean): boolean {
    const more = this.opts.moreBehind;
    if (more === undefined || g.setAside !== true) return false;
    if (this._evidence(g.rejectedSince ?? Number.POSITIVE_INFINITY)) return false;
    return !last || more();
  }

  /** True when DataStorage accepted something at or after `since` (any lane). */
  private _evidence(since: number): boolean {
    const last = this.opts.health.lastAcceptedAt();
    return last !== undefined && last >= since;
  }

  /** True while a storm goes on: no acceptance since it began. */
  private _storming(): boolean {
    return this._stormSince !== undefined && !this._evidence(this._stormSince);
  }

  /** Dead-letters events set aside for which there is now evidence. True when none are left. */
  private async _settleHeld(): Promise<boolean> {
    if (this._held.length === 0) return true;
    const ready = this._held.filter((h) => this._evidence(h.since));
    if (ready.length === 0) return false;
    for (const h of ready) this._held.splice(this._held.indexOf(h), 1);
    // One write per distinct answer.
    const byDetail = new Map<string, Held[]>();
    for (const h of ready) {
      const k = `${h.reason}\u0000${h.status}\u0000${h.detail}`;
      byDetail.set(k, [...(byDetail.get(k) ?? []), h]);
    }
    for (const hs of byDetail.values()) {
      const h = hs[0] as Held;
      await this._deadLetter(
        hs.map((x) => x.i),
        h.reason,
        h.detail,
        h.status,
      );
    }
    return this._held.length === 0;
  }

  /**
   * The events set aside and those of `groups`, back in batch order, as one group. It keeps
   * the earliest time any of them was first rejected (and first failed): an acceptance
   * anywhere after that is the evidence that dead-letters a lone offender. A merged group that
   * forgot it would count its rejections from its next attempt, always after the latest
   * acceptance: a lone bad event would then wait for ever, and its lane with it.
   */
  private _unhold(groups: Group[] = []): Group {
    const idx = this._held.map((h) => h.i);
    let since: number | undefined;
    let failing: number | undefined;
    const earliest = (a: number | undefined, b: number | undefined) =>
      a === undefined ? b : b === undefined ? a : Math.min(a, b);
    for (const h of this._held) since = earliest(since, h.since);
    this._held.length = 0;
    let setAside = true;
    for (const g of groups) {
      idx.push(...g.idx);
      since = earliest(since, g.rejectedSince);
      failing = earliest(failing, g.failingSince);
      if (g.idx.length > 0 && g.setAside !== true) setAside = false;
    }
    idx.sort((a, b) => a - b);
    return {
      idx,
      ...(since === undefined ? {} : { rejectedSince: since }),
      ...(failing === undefined ? {} : { failingSince: failing }),
      ...(setAside ? { setAside } : {}),
    };
  }

  /** Poison rule for a lone event answered 5xx. */
  private _poison(g: Group, action: Extract<Action, { kind: 'retry' }>, now: number): boolean {
    const i = g.idx[0] as number;
    const sig = `${action.status ?? action.reason}\u0000${action.detail}`;
    if (this._lone === undefined || this._lone.i !== i || this._lone.sig !== sig) {
      this._lone = { i, sig, attempts: 0, since: now };
    }
    const lone = this._lone;
    lone.attempts++;
    if (
      lone.attempts >= POISON_MIN_ATTEMPTS &&
      now - lone.since >= POISON_MIN_MILLIS &&
      this._evidence(lone.since)
    ) {
      this._lone = undefined;
      return true;
    }
    return false;
  }

  /** Enters (or stays in) storm mode and backs off; the group is then resent whole. */
  private async _storm(g: Group, detail: string, status = 400): Promise<typeof STOP | undefined> {
    this._stormSince ??= this.deps.now();
    this.deps.diag.report(
      'warn',
      'storm',
      `DataStorage rejects every request (HTTP ${status}: ${detail}) while accepting nothing: no event is dead-lettered, the records are kept and resent after a backoff`,
      g.idx.length,
    );
    return this._backoff(g, { kind: 'retry', reason: String(status), status, detail });
  }

  /** Reports a retry and sleeps before it. */
  private async _backoff(
    g: Group,
    action: Extract<Action, { kind: 'retry' }>,
  ): Promise<typeof STOP | undefined> {
    const { deps, opts } = this;
    if (action.ambiguous) for (const i of g.idx) this._ambiguous[i] = 1;
    this.lastError = action.unexpected
      ? `not DataStorage's answer (${action.detail})`
      : action.status
        ? `DataStorage answered ${action.status}: ${action.detail}`
        : `DataStorage request failed: ${action.detail}`;
    deps.metrics.retry(action.reason);
    if (action.auth) {
      deps.token.invalidate();
      deps.diag.report(
        'error',
        `auth:${action.status}`,
        `DataStorage refused the credentials (HTTP ${action.status}); re-reading the token file and retrying. Audit events are held, not lost: fix the token or RBAC`,
        g.idx.length,
      );
    } else if (action.unexpected) {
      deps.metrics.unexpectedResponse(action.status);
      deps.diag.report(
        'error',
        `unexpected:${action.status}`,
        `HTTP ${action.status} is not DataStorage's answer (misconfiguration? a proxy, an ingress or another service at the URL): the events are kept and retried (${action.detail})`,
        g.idx.length,
      );
    } else {
      deps.diag.report(
        'warn',
        `retry:${action.reason}`,
        `delivery to DataStorage will be retried (${action.detail})`,
        g.idx.length,
      );
    }
    const delay = retryDelay(
      this._retries,
      action.retryAfterMillis,
      deps.config.retry,
      deps.random,
    );
    this._retries++;
    if (opts.deadline !== undefined && deps.now() + delay >= opts.deadline) return STOP;
    if (opts.signal?.aborted) return STOP;
    opts.onRetry?.();
    const onAccepted = opts.health.onNextAccepted;
    if (action.retryAfterMillis !== undefined || onAccepted === undefined) {
      await deps.sleep(delay, opts.signal);
      return opts.signal?.aborted ? STOP : undefined;
    }
    // Woken early by another lane's acceptance (or by the caller's abort).
    const wake = new AbortController();
    const abort = () => wake.abort();
    opts.signal?.addEventListener('abort', abort, { once: true });
    const cancel = onAccepted.call(opts.health, abort);
    try {
      await deps.sleep(delay, wake.signal);
    } finally {
      cancel();
      opts.signal?.removeEventListener('abort', abort);
    }
    return opts.signal?.aborted ? STOP : undefined;
  }

  /** Sends one group once and classifies the answer. */
  private async _attempt(g: Group): Promise<Exclude<Action, { kind: 'aborted' }> | typeof STOP> {
    const { deps, opts, batch } = this;
    if (opts.signal?.aborted) return STOP;
    let timeoutMillis = deps.config.timeoutMillis;
    let clipped = false;
    if (opts.deadline !== undefined) {
      const left = opts.deadline - deps.now();
      if (left <= 0) {
        this.lastError ??= 'export timed out';
        return STOP;
      }
      clipped = left < timeoutMillis;
      timeoutMillis = Math.min(timeoutMillis, left);
    }
    const whole = g.idx.length === batch.seqs.length;
    const body = whole ? batch.body() : batch.body(g.idx);
    if (bodyBytes(body) >= MAX_BATCH_BYTES && g.idx.length > 1) {
      // Over DataStorage's body limit: cut without asking.
      return { kind: 'split', status: 413, detail: 'request body over 5 MiB' };
    }
    let resent = 0;
    for (const i of g.idx) {
      if (this._ambiguous[i] === 1) {
        this._ambiguous[i] = 0;
        resent++;
      } else if (this._sent[i] === 0 && batch.possiblyDelivered(i)) {
        resent++;
      }
      this._sent[i] = 1;
    }
    deps.metrics.duplicatesPossible(resent);
    const headers: Record<string, string> = {};
    const authorization = await deps.token.authorization();
    if (authorization !== undefined) headers.authorization = authorization;
    const started = deps.now();
    const result = await deps.send(body, {
      timeoutMillis,
      headers,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.unref ? { unref: true } : {}),
    });
    const seconds = Math.max(0, deps.now() - started) / 1000;
    const action = classify(result, g.idx.length, deps.now());
    if (result.kind === 'response') {
      const failed = action.kind === 'accepted' ? undefined : String(result.status);
      deps.metrics.request(seconds, result.status, failed);
    } else {
      deps.metrics.request(seconds, undefined, result.reason);
    }
    if (action.kind === 'aborted') {
      if (action.ambiguous) for (const i of g.idx) this._ambiguous[i] = 1;
      return STOP;
    }
    if (
      action.kind === 'retry' &&
      clipped &&
      result.kind === 'error' &&
      result.reason === 'timeout' &&
      this.lastError !== undefined
    ) {
      // Cut short by the export's own deadline: the last real answer stays the error reported.
      if (action.ambiguous) for (const i of g.idx) this._ambiguous[i] = 1;
      return STOP;
    }
    return action;
  }

  /** Dead-letters the group's expired events (removing them from it). True when any. */
  private async _dropExpired(g: Group): Promise<boolean> {
    const now = this.deps.now();
    const limit = now - MAX_EVENT_AGE_MS;
    const expired: number[] = [];
    for (const i of g.idx) {
      // An event emitted moments ago was inside the window when it was mapped: reading its
      // timestamp is left to the rare rejection (see _expiredAtRejection).
      const emitted = this.batch.emittedAt(i);
      if (emitted > 0 && now - emitted < EXPIRY_CHECK_AFTER_MILLIS) continue;
      if (this._eventTime(i) < limit) expired.push(i);
    }
    if (expired.length === 0) return false;
    const gone = new Set(expired);
    g.idx = g.idx.filter((i) => !gone.has(i));
    await this._deadLetter(expired, 'expired', EXPIRED_DETAIL);
    return true;
  }

  /** True (and dead-lettered as expired) when the event DataStorage rejected has expired. */
  private async _expiredAtRejection(i: number): Promise<boolean> {
    if (!(this._eventTime(i) < this.deps.now() - MAX_EVENT_AGE_MS)) return false;
    await this._deadLetter([i], 'expired', EXPIRED_DETAIL);
    return true;
  }

  private _eventTime(i: number): number {
    const known = this.batch.eventTime?.(i);
    if (known !== undefined && !Number.isNaN(known)) return known;
    const json = Buffer.from(this.batch.eventJson(i), 'utf8');
    return eventTimeOf(json, 0, json.length);
  }

  private async _deadLetter(
    indexes: number[],
    reason: string,
    detail: string,
    status?: number,
  ): Promise<void> {
    if (indexes.length === 0) return;
    const { deps, batch } = this;
    const time = new Date(deps.now()).toISOString();
    const entries: DeadLetterEntry[] = indexes.map((i) => ({
      time,
      reason,
      detail,
      ...(status === undefined ? {} : { status }),
      event: parseOr(batch.eventJson(i)),
    }));
    try {
      await deps.deadLetters().write(entries);
    } catch (err) {
      deps.diag.error('dead-letter write failed', errorText(err));
    }
    for (const i of indexes) this.outcomes[i] = 'dead_lettered';
    this._retries = 0;
    deps.metrics.deadLettered(indexes.length, reason);
    deps.diag.report(
      'warn',
      `dead-letter:${reason}`,
      `${indexes.length} audit event(s) dead-lettered (${reason}${status ? `, HTTP ${status}` : ''}): ${detail}`,
      indexes.length,
    );
  }
}

function halves(g: Group, marks: Omit<Group, 'idx'>): [Group, Group] {
  const mid = Math.ceil(g.idx.length / 2);
  return [
    { idx: g.idx.slice(0, mid), ...marks },
    { idx: g.idx.slice(mid), ...marks },
  ];
}

function parseOr(json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch {
    return json;
  }
}

/** Delivers `batch`; see the module comment. Never rejects. */
export async function deliverBatch(
  deps: EngineDeps,
  batch: OutgoingBatch,
  options: EngineOptions,
): Promise<EngineResult> {
  const run = new Run(deps, batch, options);
  try {
    await run.run();
  } catch (err) {
    // Whatever was settled stays settled; the rest is pending.
    deps.diag.error('unexpected delivery error', errorText(err));
    run.lastError ??= 'unexpected delivery error';
  }
  return {
    outcomes: run.outcomes,
    ...(run.lastError === undefined ? {} : { lastError: run.lastError }),
  };
}
