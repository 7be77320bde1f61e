// SPDX-License-Identifier: Apache-2.0
/*
 * The chain-head signer (issue 16): an Ed25519 private key read once, at construction, from a
 * PEM (PKCS#8) file. It signs the head of the provenance chain — {producer_id, session_id, seq,
 * hash, time, key_id}, the canonical form of @kubernaut/audit-provenance — once per drain and on
 * shutdown, never per record.
 *
 * Invariants: never throws. A missing, unreadable or non-Ed25519 key is one diag error at
 * construction and no signer (the processor runs unsigned); a failing signature is a counted,
 * rate-limited warning and that head stays unsigned.
 */

import type { KeyObject } from 'node:crypto';
import {
  type ChainHead,
  keyIdOf,
  loadSigningKey,
  type SignedChainHead,
  signChainHead,
} from '@kubernaut/audit-provenance';
import { readRegularFileSync } from '@kubernaut/audit-spool-format';
import { errorText } from '@kubernaut/datastorage-contract/config';
import { ComponentDiag } from '../measure/diag.ts';

const log = new ComponentDiag('kubernaut-audit provenance');

export class HeadSigner {
  /** First 16 hex of the SHA-256 of the raw public key. */
  readonly keyId: string;
  private readonly _key: KeyObject;

  private constructor(key: KeyObject) {
    this._key = key;
    this.keyId = keyIdOf(key);
  }

  /** The signer of the key in `path`; undefined (with one diag error) when it cannot be used. */
  static fromKeyFile(path: string): HeadSigner | undefined {
    try {
      return new HeadSigner(loadSigningKey(readRegularFileSync(path)));
    } catch (err) {
      log.error(
        `signingKeyFile ${path} cannot be used (${errorText(err, 200)}): chain heads are NOT signed; expected an Ed25519 private key in PEM (PKCS#8), e.g. from \`openssl genpkey -algorithm ed25519\``,
      );
      return undefined;
    }
  }

  /** Signs the head of (producer, session) at (seq, hash), now. Undefined when signing failed. */
  sign(
    producerId: string,
    sessionId: string,
    seq: number,
    hash: string,
  ): SignedChainHead | undefined {
    try {
      const head: ChainHead = {
        producer_id: producerId,
        session_id: sessionId,
        seq,
        hash,
        time: new Date().toISOString(),
        key_id: this.keyId,
      };
      return { ...head, sig: signChainHead(head, this._key) };
    } catch (err) {
      log.report('warn', 'sign', `signing a chain head failed: ${errorText(err, 200)}`);
      return undefined;
    }
  }
}
