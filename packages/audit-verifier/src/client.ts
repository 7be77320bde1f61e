// SPDX-License-Identifier: Apache-2.0
/*
 * A small reader of DataStorage's audit query API for the verifier.
 *
 * GET /api/v1/audit/events returns newest first and pages with limit/offset, so pages shift
 * when events arrive while paging. The reader therefore pages through fixed, closed time
 * windows ([since, until], both inclusive, millisecond bounds): a window holding more than
 * `maxWindowEvents` events is split in two (adjacent windows share their boundary
 * millisecond; copies are merged by event_id), and a window whose total changed while it was
 * paged is read again (up to 3 times; then it is reported in `warnings`).
 *
 * Invariants against a broken or hostile server: a pass over a window ends when a page brings
 * no event it has not seen (a repeated page, an ignored offset), so paging always ends; a
 * window whose total stayed the same while its pages held fewer distinct events is an error,
 * never a partial read judged as whole; an answer whose data are not all JSON objects is an
 * error, never an event; an answer body is read to at most `maxAnswerBytes`.
 *
 * Bounded work: every event read is held in memory, so a window whose first count is over
 * `maxEvents` is an error before anything is read, and so is reading more distinct events than
 * that. A window split in two must not count, in its halves together, more than itself plus
 * some slack (max(`maxWindowEvents`, half its count): events arriving meanwhile): a server
 * claiming as many events for every half as for the whole would otherwise be split down to
 * single milliseconds, millions of requests.
 */
import { AUDIT_EVENTS_PATH, VERIFY_CHAIN_PATH } from '@kubernaut/datastorage-contract';
import type { ServerChainResult, StoredEvent } from './analyze.ts';

export interface DataStorageReaderOptions {
  /** DataStorage base URL, e.g. http://datastorage:8080 */
  url: string;
  /** Sent as `Authorization: Bearer …`; never printed. */
  bearerToken?: string;
  /** Events per page (1..1000) [1000]. */
  pageSize?: number;
  /** A window with more events than this is split [5000]. */
  maxWindowEvents?: number;
  /**
   * Most events one read may hold (they are all kept in memory) [5,000,000]; a window counted
   * over it is an error naming how to narrow it.
   */
  maxEvents?: number;
  /** Per request: connecting, the answer and its body [30000]. */
  timeoutMillis?: number;
  /**
   * The largest answer body read, in bytes [256 MiB: a page of 1000 events of DataStorage's
   * largest event_data]; a longer body is an error, not read on (memory stays bounded).
   */
  maxAnswerBytes?: number;
}

/** The default of `maxEvents`. */
export const DEFAULT_MAX_EVENTS = 5_000_000;

/** The default of `maxAnswerBytes`. */
export const DEFAULT_MAX_ANSWER_BYTES = 256 * 1024 * 1024;

export interface ReadEventsOptions {
  since: Date;
  until: Date;
  correlationId?: string;
  /** Told after each page: events read so far, and the window's total as first counted. */
  onProgress?: (progress: ReadProgress) => void;
}

/** How far a read is. */
export interface ReadProgress {
  /** Events received so far (copies of a window read again included). */
  read: number;
  /** Events in the whole window when its first page was read (more may arrive). */
  total: number;
  requests: number;
}

export interface ReadEventsResult {
  events: StoredEvent[];
  requests: number;
  warnings: string[];
}

interface Page {
  data: StoredEvent[];
  total: number;
}

/** Reads events and chain checks from a DataStorage. */
export class DataStorageReader {
  private readonly _base: string;
  private readonly _token: string | undefined;
  private readonly _pageSize: number;
  private readonly _maxWindow: number;
  private readonly _maxEvents: number;
  private readonly _timeout: number;
  private readonly _maxAnswerBytes: number;
  private _requests = 0;

  constructor(options: DataStorageReaderOptions) {
    let u: URL;
    try {
      u = new URL(options.url);
    } catch {
      throw new Error(`invalid DataStorage URL: ${options.url}`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new Error(`DataStorage URL must be http(s): ${options.url}`);
    }
    this._base = options.url.replace(/\/+$/, '');
    this._token = options.bearerToken;
    this._pageSize = Math.min(1000, Math.max(1, Math.floor(options.pageSize ?? 1000)));
    this._maxWindow = Math.max(this._pageSize, Math.floor(options.maxWindowEvents ?? 5000));
    this._maxEvents = Math.max(1, Math.floor(options.maxEvents ?? DEFAULT_MAX_EVENTS));
    this._timeout = options.timeoutMillis ?? 30_000;
    this._maxAnswerBytes = options.maxAnswerBytes ?? DEFAULT_MAX_ANSWER_BYTES;
  }

  /** Every event in [since, until] (deduplicated by event_id), oldest window first. */
  async readEvents(options: ReadEventsOptions): Promise<ReadEventsResult> {
    this._requests = 0;
    const warnings: string[] = [];
    const byId = new Map<string, StoredEvent>();
    const noId: StoredEvent[] = [];
    /** A split window: its count, and what its halves counted so far. */
    interface Split {
      a: number;
      b: number;
      total: number;
      halves: number;
    }
    const stack: Array<[number, number, Split | undefined]> = [
      [options.since.getTime(), options.until.getTime(), undefined],
    ];
    let total: number | undefined;
    let read = 0;
    const progress = (received: number) => {
      read += received;
      options.onProgress?.({ read, total: total ?? read, requests: this._requests });
    };
    while (stack.length > 0) {
      const [a, b, parent] = stack.pop() as [number, number, Split | undefined];
      let first = await this._page(a, b, 0, options.correlationId);
      if (total === undefined) {
        total = first.total;
        if (total > this._maxEvents) {
          throw new Error(
            `${this._base} reports ${total} events in ${iso(a)}..${iso(b)}, more than the ${this._maxEvents} one run holds in memory (--max-events): verify a narrower window (--since/--until, or --correlation-id), or raise --max-events`,
          );
        }
      }
      if (parent !== undefined) {
        parent.halves += first.total;
        if (parent.halves > parent.total + Math.max(this._maxWindow, parent.total / 2)) {
          throw new Error(
            `${this._base} reported ${parent.total} events in window ${iso(parent.a)}..${iso(parent.b)} but more in its halves (${parent.halves} so far): its counts are inconsistent (or events arrive faster than they can be read); run again, or verify a narrower window`,
          );
        }
      }
      if (first.total > this._maxWindow && b - a >= 2) {
        const mid = a + Math.floor((b - a) / 2);
        const split: Split = { a, b, total: first.total, halves: 0 };
        stack.push([mid, b, split], [a, mid, split]); // older half first
        continue;
      }
      for (let attempt = 1; ; attempt++) {
        // Distinct events of this pass: a page that brings no event not seen yet in it (a
        // server that ignores the offset, repeats a page) ends the pass instead of looping.
        const pass = new Map<string, StoredEvent>();
        const passNoId: StoredEvent[] = [];
        const take = (page: Page): number => {
          const before = pass.size;
          for (const e of page.data) {
            if (typeof e.event_id === 'string') pass.set(e.event_id, e);
            else passNoId.push(e);
          }
          progress(page.data.length);
          return pass.size - before;
        };
        take(first);
        for (let offset = first.data.length; offset < first.total; ) {
          const p = await this._page(a, b, offset, options.correlationId);
          if (p.data.length === 0 || take(p) === 0) break;
          offset += p.data.length;
        }
        for (const [id, e] of pass) byId.set(id, e);
        noId.push(...passNoId);
        if (byId.size + noId.length > this._maxEvents) {
          throw new Error(
            `${this._base} gave more than ${this._maxEvents} distinct events for ${iso(options.since.getTime())}..${iso(options.until.getTime())}, more than one run holds in memory (--max-events): verify a narrower window, or raise --max-events`,
          );
        }
        const distinct = pass.size + passNoId.length;
        const check = await this._page(a, b, 0, options.correlationId, 1);
        if (check.total === first.total && distinct >= first.total) break;
        if (attempt >= 3) {
          if (check.total === first.total) {
            // Nothing arrived, yet the pages never held what the total promised: reading on
            // would judge a trail DataStorage did not show (a wrong verdict), so it is an error.
            throw new Error(
              `${this._base} reported ${first.total} events in window ${iso(a)}..${iso(b)} but its pages held only ${distinct} distinct ones (offset paging ignored or broken: a proxy or cache in front of DataStorage?)`,
            );
          }
          warnings.push(
            `events kept arriving in window ${iso(a)}..${iso(b)} while it was read (total ${first.total} → ${check.total}); run the verifier again for that window`,
          );
          break;
        }
        first = await this._page(a, b, 0, options.correlationId);
      }
    }
    return { events: [...byId.values(), ...noId], requests: this._requests, warnings };
  }

  /** DataStorage's own check of a correlation's hash chain. Never throws. */
  async verifyChain(correlationId: string): Promise<ServerChainResult> {
    try {
      const answer = await this._request(VERIFY_CHAIN_PATH, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ correlation_id: correlationId }),
      });
      if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) {
        throw new Error(`POST ${VERIFY_CHAIN_PATH}: not a verify-chain answer`);
      }
      const body = answer as Record<string, unknown>;
      const tampered = Array.isArray(body.tampered_events) ? body.tampered_events.length : 0;
      return {
        correlation_id: correlationId,
        is_valid: body.is_valid === true,
        ...(typeof body.total_events === 'number' ? { total_events: body.total_events } : {}),
        tampered_events: tampered,
        ...(typeof body.message === 'string' ? { message: body.message } : {}),
      };
    } catch (err) {
      return { correlation_id: correlationId, is_valid: false, error: (err as Error).message };
    }
  }

  private async _page(
    since: number,
    until: number,
    offset: number,
    correlationId: string | undefined,
    limit = this._pageSize,
  ): Promise<Page> {
    const q = new URLSearchParams({
      since: iso(since),
      until: iso(until),
      limit: String(limit),
      offset: String(offset),
    });
    if (correlationId !== undefined) q.set('correlation_id', correlationId);
    const body = (await this._request(`${AUDIT_EVENTS_PATH}?${q}`, { method: 'GET' })) as {
      data?: unknown;
      pagination?: { total?: unknown };
    } | null;
    if (!Array.isArray(body?.data) || typeof body.pagination?.total !== 'number') {
      throw new Error(
        `${this._base} answered GET ${AUDIT_EVENTS_PATH} with something that is not a DataStorage audit query answer (no data and pagination.total): is --url the DataStorage base URL?`,
      );
    }
    if (!body.data.every((e) => e !== null && typeof e === 'object' && !Array.isArray(e))) {
      throw new Error(
        `${this._base} answered GET ${AUDIT_EVENTS_PATH} with data that are not all events (JSON objects): is --url the DataStorage base URL?`,
      );
    }
    return { data: body.data as StoredEvent[], total: body.pagination.total };
  }

  /** One request; resolves to the parsed JSON body (undefined when it is not JSON). */
  private async _request(path: string, init: RequestInit): Promise<unknown> {
    this._requests++;
    const headers = new Headers(init.headers);
    headers.set('accept', 'application/json');
    if (this._token !== undefined) headers.set('authorization', `Bearer ${this._token}`);
    const what = `${init.method ?? 'GET'} ${path.split('?')[0]}`;
    // One deadline for the whole exchange: connecting, the answer's head and its body.
    const signal = AbortSignal.timeout(this._timeout);
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${this._base}${path}`, { ...init, headers, signal });
      text = await readText(res, this._maxAnswerBytes);
    } catch (err) {
      if (err instanceof AnswerTooLargeError) {
        throw new Error(`${what}: ${this._base} answered with more than ${err.limit} bytes`);
      }
      if (signal.aborted) throw new RequestTimeoutError(this._base, what, this._timeout);
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new Error(
        `cannot reach DataStorage at ${this._base}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (!res.ok) {
      const p = body as { detail?: unknown; title?: unknown } | undefined;
      const detail =
        p !== undefined && p !== null && typeof p === 'object'
          ? String(p.detail ?? p.title ?? '')
          : text.slice(0, 200);
      throw new Error(`${what} answered ${res.status}${detail ? `: ${detail}` : ''}`);
    }
    return body;
  }
}

/** A request to DataStorage got no complete answer within the reader's `timeoutMillis`. */
export class RequestTimeoutError extends Error {
  override readonly name = 'RequestTimeoutError';
  readonly timeoutMillis: number;
  constructor(base: string, what: string, timeoutMillis: number) {
    super(`DataStorage at ${base} did not answer ${what} within ${timeoutMillis / 1000} s`);
    this.timeoutMillis = timeoutMillis;
  }
}

/** An answer body longer than the reader takes. */
export class AnswerTooLargeError extends Error {
  override readonly name = 'AnswerTooLargeError';
  readonly limit: number;
  constructor(limit: number) {
    super(`answer larger than ${limit} bytes`);
    this.limit = limit;
  }
}

/** The body of `res` as text, read no further than `limit` bytes (then the body is cancelled). */
export async function readText(res: Response, limit: number): Promise<string> {
  const declared = Number(res.headers.get('content-length'));
  if (declared > limit) {
    await res.body?.cancel();
    throw new AnswerTooLargeError(limit);
  }
  if (res.body === null) return '';
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for await (const chunk of res.body) {
    bytes += chunk.byteLength;
    if (bytes > limit) throw new AnswerTooLargeError(limit); // leaving the loop cancels the body
    chunks.push(chunk);
  }
  // As res.text() decodes: UTF-8, a byte-order mark dropped, invalid bytes replaced.
  return new TextDecoder().decode(Buffer.concat(chunks, bytes));
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
