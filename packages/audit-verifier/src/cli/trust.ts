// SPDX-License-Identifier: Apache-2.0
/*
 * What `verify` is told to trust and expect (issue 16): `--public-key FILE[@FROM]` (an Ed25519
 * public key in PEM, valid for heads signed at or after the RFC 3339 time FROM; repeatable for
 * key rotation) and `--digest-log FILE` (JSON lines of signed heads, as the processor writes
 * `<spool>/digest.log`; repeatable). Unreadable files are usage errors (exit 2); malformed digest
 * lines are counted and reported on stderr, never fatal.
 */

import { existsSync } from 'node:fs';
import { sep } from 'node:path';
import {
  asSignedChainHead,
  loadPublicKey,
  type SignedChainHead,
} from '@kubernaut/audit-provenance';
import { readRegularFileSync } from '@kubernaut/audit-spool-format';
import { parseDateTime } from '@kubernaut/datastorage-contract';
import { errorText } from '@kubernaut/datastorage-contract/config';
import type { TrustedKey } from '../signed.ts';
import { UsageError } from './command.ts';

/**
 * `FILE` or `FILE@FROM`. FROM is an RFC 3339 date-time with an offset (`2027-01-01T00:00:00Z`):
 * a date alone, a time without offset, `tomorrow`, a number or an impossible date (month 13,
 * Feb 30, 24:00) is a usage error, never read leniently. A value that names an existing file is
 * that file, `@` and all; so is one whose part after the last `@` holds a `/` (a directory name).
 */
export function parsePublicKeyOption(
  value: string,
  exists: (file: string) => boolean = existsSync,
): { file: string; from?: string } {
  const at = value.lastIndexOf('@');
  if (at <= 0) return { file: value };
  const from = value.slice(at + 1);
  if (from.includes('/') || from.includes(sep) || exists(value)) return { file: value };
  const t = parseDateTime(from);
  if (t === undefined) {
    throw new UsageError(
      `--public-key ${value}: FROM ${JSON.stringify(from)} is not an RFC 3339 time ` +
        '(FILE@FROM takes a date-time with an offset, e.g. key.pem@2027-01-01T00:00:00Z)',
    );
  }
  return { file: value.slice(0, at), from: new Date(t).toISOString() };
}

/** Loads the trusted keys. Throws UsageError on an unreadable or wrong key. */
export function readPublicKeys(values: readonly string[]): TrustedKey[] {
  return values.map((v) => {
    const { file, from } = parsePublicKeyOption(v);
    let text: Buffer;
    try {
      text = readRegularFileSync(file);
    } catch (err) {
      throw new UsageError(
        `cannot read --public-key ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    try {
      return { key: loadPublicKey(text), name: file, ...(from ? { from } : {}) };
    } catch (err) {
      throw new UsageError(
        `--public-key ${file} is not an Ed25519 public key in PEM (${errorText(err, 120)})`,
      );
    }
  });
}

/** The signed heads of the digest logs, and how many lines were malformed per file. */
export function readDigestLogs(files: readonly string[]): {
  heads: SignedChainHead[];
  malformed: Array<{ file: string; lines: number }>;
} {
  const heads: SignedChainHead[] = [];
  const malformed: Array<{ file: string; lines: number }> = [];
  for (const file of files) {
    let text: string;
    try {
      text = readRegularFileSync(file).toString('utf8');
    } catch (err) {
      throw new UsageError(
        `cannot read --digest-log ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    let bad = 0;
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      let h: SignedChainHead | undefined;
      try {
        h = asSignedChainHead(JSON.parse(line));
      } catch {
        h = undefined;
      }
      if (h === undefined) bad++;
      else heads.push(h);
    }
    if (bad > 0) malformed.push({ file, lines: bad });
  }
  return { heads, malformed };
}
