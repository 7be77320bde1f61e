// SPDX-License-Identifier: Apache-2.0
/*
 * Signed chain heads in the analysis (issue 16): a forged record with every hash recomputed is
 * found with the public key (and, as documented, not without one); unsigned stretches; truncated
 * tails against a digest log; expected producers; key rotation.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  computeProvenanceHash,
  keyIdOf,
  type SignedChainHead,
  signChainHead,
} from '@kubernaut/audit-provenance';
import { ProvenanceStamper } from '@kubernaut/exporter-kubernaut-audit/experimental';
import { sampleEvent, storedForm } from '@kubernaut/test-kit';
import { afterAll, describe, expect, it } from 'vitest';
import { analyze, type StoredEvent } from '../src/analyze.ts';
import { UsageError } from '../src/cli/command.ts';
import { main } from '../src/cli/index.ts';
import { parsePublicKeyOption, readPublicKeys } from '../src/cli/trust.ts';
import { formatReport } from '../src/format.ts';

function keyPair() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { priv: privateKey, pub: publicKey };
}

type Prov = Record<string, unknown>;
const provOf = (e: StoredEvent) => (e.event_data as Record<string, Prov>).audit_provenance as Prov;

/** n stored events of one producer, with event ids. */
function trail(n: number, producer = 'prod-s'): StoredEvent[] {
  const s = ProvenanceStamper.open({ producerId: producer });
  return Array.from({ length: n }, (_, i) => ({
    ...storedForm(s.stamp(sampleEvent(i))),
    event_id: `00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`,
  }));
}

/** Signs the head at `seq` (1-based) with `key` at `time`; puts it in the record; returns it. */
function signAt(events: StoredEvent[], seq: number, key: KeyObject, time: string): SignedChainHead {
  const e = events[seq - 1] as StoredEvent;
  const p = provOf(e);
  const head = {
    producer_id: p.producer_id as string,
    session_id: p.session_id as string,
    seq,
    hash: p.hash as string,
    time,
    key_id: keyIdOf(key),
  };
  const sig = signChainHead(head, key);
  p.signature = { key_id: head.key_id, time, sig };
  return { ...head, sig };
}

/** Alters record `seq`, then recomputes every later hash and link (an attacker with the DB). */
function forge(events: StoredEvent[], seq: number): void {
  (events[seq - 1]?.event_data as Record<string, unknown>).forged = true;
  for (let i = seq - 1; i < events.length; i++) {
    const e = events[i] as StoredEvent;
    const p = provOf(e);
    if (i > 0) p.prev_hash = provOf(events[i - 1] as StoredEvent).hash;
    p.hash = computeProvenanceHash(e);
  }
}

const T1 = '2026-11-30T10:00:00.000Z';
const T2 = '2026-11-30T11:00:00.000Z';

describe('signatures', () => {
  it('a signed trail verifies: every record covered, complete', () => {
    const k = keyPair();
    const ev = trail(10);
    signAt(ev, 5, k.priv, T1);
    signAt(ev, 10, k.priv, T1);
    const r = analyze({ events: ev, publicKeys: [{ key: k.pub }] });
    expect(r.verdict).toBe('complete');
    expect(r.producers[0]?.signatures).toMatchObject({
      heads: 2,
      verified: 2,
      altered: [],
      unsigned: [],
      unsigned_count: 0,
    });
  });

  it('a forged record with every hash recomputed: complete without a key, ALTERED with it (first seq and event named)', () => {
    const k = keyPair();
    const ev = trail(10);
    signAt(ev, 5, k.priv, T1);
    signAt(ev, 10, k.priv, T1);
    forge(ev, 7);
    // Without a key the chain is consistent again: nothing to see (the documented limit).
    expect(analyze({ events: ev }).verdict).toBe('complete');
    const r = analyze({ events: ev, publicKeys: [{ key: k.pub }] });
    expect(r.verdict).toBe('incomplete');
    const s = r.producers[0]?.signatures;
    expect(s?.altered).toMatchObject([
      { from: 6, to: 10, first_event_id: ev[5]?.event_id, head_event_id: ev[9]?.event_id },
    ]);
    expect(r.producers[0]?.chain_breaks).toEqual([]); // the hashes themselves are consistent
    expect(formatReport(r)).toContain('ALTERED: a record in seqs 6..10 was altered');
  });

  it('records after the last verified head are an unsigned stretch (judged with a key)', () => {
    const k = keyPair();
    const ev = trail(12);
    signAt(ev, 10, k.priv, T1);
    const noKey = analyze({ events: ev });
    expect(noKey.verdict).toBe('complete');
    expect(noKey.signatures_checked).toBe(false);
    expect(noKey.producers[0]?.signatures).toBeUndefined();
    const r = analyze({ events: ev, publicKeys: [{ key: k.pub }] });
    expect(r.verdict).toBe('incomplete');
    expect(r.producers[0]?.signatures?.unsigned).toEqual([{ from: 11, to: 12 }]);
    // Stripping every signature leaves nothing signed: all unsigned, never complete.
    for (const e of ev) delete provOf(e).signature;
    const stripped = analyze({ events: ev, publicKeys: [{ key: k.pub }] });
    expect(stripped.producers[0]?.signatures?.unsigned_count).toBe(12);
    expect(stripped.verdict).toBe('incomplete');
  });

  it('a head signed with a time that is not an RFC 3339 date-time is a problem, never verified', () => {
    const k = keyPair();
    for (const bad of ['2026-11-30', '2026-11-30T10:00:00', '2026-02-30T10:00:00Z', 'yesterday']) {
      const ev = trail(3);
      const h = signAt(ev, 3, k.priv, bad); // a valid signature over that text
      const r = analyze({ events: ev, publicKeys: [{ key: k.pub }] });
      const problems = r.producers[0]?.signatures?.problems;
      expect(problems, bad).toMatchObject([{ seq: 3, source: 'record' }]);
      expect(problems?.[0]?.reason).toContain('is not an RFC 3339 date-time');
      expect(r.verdict).not.toBe('complete');
      // In a digest log, also inside a window: kept and reported, not dropped by the window.
      const d = analyze({
        events: trail(3),
        publicKeys: [{ key: k.pub }],
        digestHeads: [h],
        window: { since: '2026-11-30T00:00:00Z', until: '2026-12-01T00:00:00Z' },
      });
      expect(d.producers[0]?.signatures?.problems, bad).toMatchObject([
        { seq: 3, source: 'digest' },
      ]);
    }
  });

  it('a deleted tail is reported against the digest log; a digest head covers a record whose signature was stripped', () => {
    const k = keyPair();
    const ev = trail(12);
    const h1 = signAt(ev, 6, k.priv, T1);
    const h2 = signAt(ev, 12, k.priv, T1);
    delete provOf(ev[5] as StoredEvent).signature;
    const kept = ev.slice(0, 9); // 10..12 deleted
    const r = analyze({ events: kept, publicKeys: [{ key: k.pub }], digestHeads: [h1, h2] });
    const s = r.producers[0]?.signatures;
    expect(s?.truncated).toMatchObject({ from: 10, to: 12, head_time: T1 });
    expect(s?.unsigned).toEqual([{ from: 7, to: 9 }]);
    expect(r.verdict).toBe('incomplete');
    expect(r.totals.truncated).toBe(3);
    // A forged digest line (bad signature) proves nothing: a problem, not a truncation.
    const forged = { ...h2, seq: 40, sig: h1.sig };
    const f = analyze({ events: ev, publicKeys: [{ key: k.pub }], digestHeads: [h1, h2, forged] });
    expect(f.producers[0]?.signatures?.truncated).toBeUndefined();
    expect(f.producers[0]?.signatures?.problems).toMatchObject([{ seq: 40, source: 'digest' }]);
    // Without keys the digest log still reports the tail.
    expect(
      analyze({ events: kept, digestHeads: [h2] }).producers[0]?.signatures?.truncated,
    ).toMatchObject({ from: 10, to: 12 });
    // Heads signed outside the window are not used.
    const outside = analyze({
      events: kept,
      digestHeads: [h2],
      window: { since: '2026-11-30T12:00:00Z', until: '2026-11-30T13:00:00Z' },
    });
    expect(outside.producers[0]?.signatures).toBeUndefined();
  });

  it('an expected producer that is absent fails verification (given, or named by a digest log)', () => {
    const k = keyPair();
    const ev = trail(3);
    signAt(ev, 3, k.priv, T1);
    const r = analyze({ events: ev, expectProducers: ['prod-s', 'prod-gone'] });
    expect(r.missing_producers).toEqual(['prod-gone']);
    expect(r.verdict).toBe('incomplete');
    const other = trail(2, 'prod-other');
    const h = signAt(other, 2, k.priv, T1);
    const d = analyze({ events: ev, digestHeads: [h] });
    expect(d.missing_producers).toEqual(['prod-other']);
    expect(d.verdict).toBe('incomplete');
    // Nothing read at all and a producer expected: INCOMPLETE, not "nothing verified".
    expect(analyze({ events: [], expectProducers: ['x'] }).verdict).toBe('incomplete');
    expect(formatReport(d)).toContain('EXPECTED PRODUCERS ABSENT');
  });

  it('key rotation: a new key from a given time verifies across the boundary; a head signed before its time does not', () => {
    const a = keyPair();
    const b = keyPair();
    const ev = trail(10);
    signAt(ev, 5, a.priv, T1);
    signAt(ev, 10, b.priv, '2026-11-30T11:30:00.000Z');
    const keys = [{ key: a.pub }, { key: b.pub, from: T2 }];
    const r = analyze({ events: ev, publicKeys: keys });
    expect(r.verdict).toBe('complete');
    expect(r.producers[0]?.signatures?.keys.sort()).toEqual(
      [keyIdOf(a.pub), keyIdOf(b.pub)].sort(),
    );
    // Only the old key: the second head is by an unknown key.
    const onlyA = analyze({ events: ev, publicKeys: [{ key: a.pub }] });
    expect(onlyA.verdict).toBe('incomplete');
    expect(onlyA.producers[0]?.signatures?.problems[0]?.reason).toContain(
      'not among the trusted keys',
    );
    // The new key claimed before its validity.
    signAt(ev, 10, b.priv, '2026-11-30T10:30:00.000Z');
    const early = analyze({ events: ev, publicKeys: keys });
    expect(early.producers[0]?.signatures?.problems[0]?.reason).toContain('before key');
    expect(early.verdict).toBe('incomplete');
  });
});

describe('verify --public-key, --digest-log, --expect-producer, --report (CLI options)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kn-verify-sig-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('usage errors: unreadable or wrong key, bad time, bad report name (exit 2)', async () => {
    const io = () => {
      const err: string[] = [];
      return { err, io: { stdout: () => undefined, stderr: (t: string) => err.push(t) } };
    };
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const rsaFile = join(dir, 'rsa.pem');
    writeFileSync(rsaFile, rsa.publicKey.export({ type: 'spki', format: 'pem' }));
    const cases: Array<[string[], RegExp]> = [
      [['--public-key', join(dir, 'none.pem')], /cannot read --public-key/],
      [['--public-key', rsaFile], /not an Ed25519 public key/],
      [['--public-key', `${rsaFile}@2026-13-45T00:00:00Z`], /not an RFC 3339 time/],
      [['--report', join(dir, 'r.pdf')], /must end in \.md or \.html/],
      [['--digest-log', join(dir, 'none.log')], /cannot read --digest-log/],
    ];
    for (const [args, re] of cases) {
      const c = io();
      const code = await main(['verify', '--url', 'http://127.0.0.1:9', ...args], c.io);
      expect(code, args.join(' ')).toBe(2);
      expect(c.err.join('')).toMatch(re);
    }
    expect(readFileSync(rsaFile, 'utf8')).toContain('PUBLIC KEY');
  });

  it("a key's FROM must be an RFC 3339 date-time: a date alone, a word, a number, an impossible date or a time without offset is a usage error naming the key (exit 2)", async () => {
    const file = join(dir, 'ed.pem');
    writeFileSync(file, keyPair().pub.export({ type: 'spki', format: 'pem' }));
    for (const from of [
      'tomorrow',
      '1',
      '2026-01-01',
      '2026-13-45',
      '2026-13-45T00:00:00Z',
      '2026-02-30T00:00:00Z',
      '2026-01-01T24:00:00Z',
      '2026-01-01T00:00:00',
      '2026-01-01T00:00',
      '',
    ]) {
      const err: string[] = [];
      const code = await main(
        ['verify', '--url', 'http://127.0.0.1:9', '--public-key', `${file}@${from}`],
        { stdout: () => undefined, stderr: (t: string) => err.push(t) },
      );
      expect(code, from).toBe(2);
      expect(err.join(''), from).toContain(
        `--public-key ${file}@${from}: FROM ${JSON.stringify(from)} is not an RFC 3339 time`,
      );
      expect(() => readPublicKeys([`${file}@${from}`]), from).toThrow(UsageError);
    }
    // Valid: any offset, normalised to UTC.
    expect(readPublicKeys([`${file}@2027-01-01T02:00:00+02:00`])[0]?.from).toBe(
      '2027-01-01T00:00:00.000Z',
    );
    // A file whose name holds an `@` is that file; so is an `@` in a directory name.
    const odd = join(dir, 'key@tomorrow');
    writeFileSync(odd, readFileSync(file));
    expect(readPublicKeys([odd])[0]).toMatchObject({ name: odd });
    expect(parsePublicKeyOption('/keys/u@x/k.pem')).toEqual({ file: '/keys/u@x/k.pem' });
  });

  it('analyze: a trusted key whose from is not an RFC 3339 date-time is a TypeError naming the key', () => {
    const k = keyPair();
    const ev = trail(2);
    signAt(ev, 2, k.priv, T1);
    for (const from of ['tomorrow', '1', '2026-01-01', '2026-13-45', '2026-02-30T00:00:00Z']) {
      expect(
        () => analyze({ events: ev, publicKeys: [{ key: k.pub, from, name: 'k-2026.pem' }] }),
        from,
      ).toThrow(
        new TypeError(
          `trusted key k-2026.pem: from ${JSON.stringify(from)} is not an RFC 3339 date-time (e.g. 2027-01-01T00:00:00Z)`,
        ),
      );
    }
    // Valid `from` with an offset: the head signed after it verifies.
    const ok = analyze({
      events: ev,
      publicKeys: [{ key: k.pub, from: '2026-01-01T00:00:00+01:00' }],
    });
    expect(ok.producers[0]?.signatures?.verified).toBe(1);
  });
});
