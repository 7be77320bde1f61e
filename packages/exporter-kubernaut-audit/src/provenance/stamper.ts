// SPDX-License-Identifier: Apache-2.0
/*
 * ProvenanceStamper (DESIGN §11): gives every accepted audit event the provenance that lets
 * a verifier prove the trail complete and unaltered, under
 * `event_data.audit_provenance = { producer_id, session_id, seq, prev_hash, hash }`:
 *
 * - producer_id: stable per spool directory (the spool's producer id);
 * - session_id: a uuid per stamper (one per process start);
 * - seq: 1, 2, 3 … per producer, without gaps, continuing across restarts: the last seq is
 *   written to `<directory>/provenance.state` before stamp() returns (one small positional
 *   write, no fsync), so even SIGKILL cannot make a seq be handed out twice, and no seq is
 *   skipped: a gap the verifier reports is a record that really was lost;
 * - prev_hash: the hash of the producer's previous stamped record, across sessions too (the
 *   last hash is persisted with the seq), null for the producer's first record;
 * - hash: the provenance hash of @kubernaut/audit-provenance.
 *
 * Records dead-lettered at emit (invalid) consume a seq through reserveRejected() and are not
 * part of the hash chain; their dead-letter entry records the seq, so the verifier counts
 * them as rejected, not lost.
 *
 * Never throws: when the state file cannot be used the stamper falls back to an in-memory
 * state under a fresh producer id (so that no seq of the persisted producer can be reused)
 * and warns through diag.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { computeProvenanceHash } from '@kubernaut/audit-provenance';
import { AUDIT_EVENT_DATA_PROVENANCE_KEY } from '@kubernaut/audit-semantic-conventions';
import type { AuditEventRequest, JsonObject } from '@kubernaut/datastorage-contract';
import { errorText } from '@kubernaut/datastorage-contract/config';
import { ComponentDiag } from '../diag/component-diag.ts';
import { STATE_FILE, type StampState, StateFile } from './state-file.ts';

/** Options of {@link ProvenanceStamper.open}. */
export interface ProvenanceStamperOptions {
  /**
   * Directory of the persistent state (`provenance.state`), normally the spool directory
   * (one live process owns it). Without it the state lives in memory: seqs restart at 1
   * under a new producer id on every start.
   */
  directory?: string;
  /** Producer id, normally the spool's `producerId` [the persisted one, else a new uuid]. */
  producerId?: string;
}

/** The provenance of a record rejected at emit (no hash: it is not part of the chain). */
export interface ReservedSeq {
  producer_id: string;
  session_id: string;
  seq: number;
}

const log = new ComponentDiag('kubernaut-audit provenance');

/** Stamps audit events with provenance. Synchronous and cheap; never throws. */
export class ProvenanceStamper {
  /** The session id of this stamper (uuid). */
  readonly sessionId: string;
  private _producerId: string;
  private _seq: number;
  private _lastHash: string | null;
  private _file: StateFile | undefined;
  private _persistent: boolean;
  private _failures = 0;
  private _rejected = 0;

  private constructor(state: StampState, file: StateFile | undefined) {
    this.sessionId = randomUUID();
    this._producerId = state.producerId;
    this._seq = state.seq;
    this._lastHash = state.lastHash;
    this._file = file;
    this._persistent = file !== undefined;
  }

  /** Opens the stamper, recovering seq and last hash from `directory`. Never throws. */
  static open(options: ProvenanceStamperOptions = {}): ProvenanceStamper {
    const wanted =
      typeof options.producerId === 'string' && options.producerId !== ''
        ? options.producerId
        : undefined;
    if (options.directory === undefined) {
      return new ProvenanceStamper(
        { producerId: wanted ?? randomUUID(), seq: 0, lastHash: null },
        undefined,
      );
    }
    const path = join(options.directory, STATE_FILE);
    try {
      const { file, state } = StateFile.open(path);
      let s: StampState;
      if (state !== undefined && (wanted === undefined || state.producerId === wanted)) {
        s = state;
      } else {
        // New producer (fresh or replaced spool): its sequence starts at 1.
        s = { producerId: wanted ?? randomUUID(), seq: 0, lastHash: null };
        file.write(s);
      }
      return new ProvenanceStamper(s, file);
    } catch (err) {
      log.warn(
        `cannot use ${path} (${errorText(err)}); provenance continues in memory under a new producer id`,
      );
      return new ProvenanceStamper({ producerId: randomUUID(), seq: 0, lastHash: null }, undefined);
    }
  }

  /** The producer id stamped into events. */
  get producerId(): string {
    return this._producerId;
  }

  /** The last seq handed out (0 before the first). */
  get lastSeq(): number {
    return this._seq;
  }

  /** The hash of the last stamped event (null before the first). */
  get lastHash(): string | null {
    return this._lastHash;
  }

  /** Seqs handed out by reserveRejected() in this session. */
  get rejected(): number {
    return this._rejected;
  }

  /** False once the state is kept in memory only (not persisted). */
  get persistent(): boolean {
    return this._persistent;
  }

  /**
   * Returns a copy of `event` with `event_data.audit_provenance` set (any value the event
   * carried under that key is replaced). On an internal error (an event that cannot be
   * canonicalised) returns the event unchanged and warns: the verifier lists such events as
   * "without provenance".
   */
  stamp(event: AuditEventRequest): AuditEventRequest {
    try {
      const seq = this._seq + 1;
      const provenance: JsonObject = {
        producer_id: this._producerId,
        session_id: this.sessionId,
        seq,
        prev_hash: this._lastHash,
      };
      const out: AuditEventRequest = {
        ...event,
        event_data: { ...event.event_data, [AUDIT_EVENT_DATA_PROVENANCE_KEY]: provenance },
      };
      const hash = computeProvenanceHash(out as unknown as Record<string, unknown>);
      provenance.hash = hash;
      this._advance(seq, hash);
      return out;
    } catch (err) {
      this._fail('stamp', err);
      return event;
    }
  }

  /**
   * Hands out a seq for a record dead-lettered at emit: the record consumed a seq (so the
   * verifier can tell "rejected" from "lost") but is not part of the hash chain. Store the
   * result in the dead-letter entry under `audit_provenance`. Never throws.
   */
  reserveRejected(_reason?: string): ReservedSeq {
    const seq = this._seq + 1;
    this._rejected++;
    this._advance(seq, this._lastHash);
    return { producer_id: this._producerId, session_id: this.sessionId, seq };
  }

  /** Releases the state file. Later stamps continue in memory. */
  close(): void {
    const f = this._file;
    this._file = undefined;
    try {
      f?.close();
    } catch {
      // nothing to do
    }
  }

  private _advance(seq: number, hash: string | null): void {
    this._seq = seq;
    this._lastHash = hash;
    if (this._file === undefined) return;
    try {
      this._file.write({ producerId: this._producerId, seq, lastHash: hash });
    } catch (err) {
      // Continuing in memory under the same id could reuse seqs after a restart: switch to a
      // new producer whose sequence starts here.
      this._fail('persist', err);
      this.close();
      this._persistent = false;
      this._producerId = randomUUID();
      this._seq = 0;
      this._lastHash = null;
    }
  }

  private _fail(what: string, err: unknown): void {
    this._failures++;
    // Rate-limited: never one line per event.
    log.report(
      'warn',
      what,
      `${what} failed (${this._failures} time(s) so far): ${errorText(err)}`,
    );
  }
}
