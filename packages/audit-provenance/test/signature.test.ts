// SPDX-License-Identifier: Apache-2.0
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type ChainHead,
  chainHeadText,
  computeProvenanceHash,
  keyIdOf,
  loadPublicKey,
  loadSigningKey,
  signChainHead,
  verifyChainHead,
} from '../src/index.ts';

function keys() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    priv: loadSigningKey(privateKey.export({ type: 'pkcs8', format: 'pem' })),
    pub: loadPublicKey(publicKey.export({ type: 'spki', format: 'pem' })),
  };
}

describe('signed chain heads', () => {
  const { priv, pub } = keys();
  const head: ChainHead = {
    producer_id: 'p',
    session_id: 's',
    seq: 7,
    hash: 'a'.repeat(64),
    time: '2026-11-30T12:00:00.000Z',
    key_id: keyIdOf(pub),
  };

  it('signs the canonical JSON of the six members; any change fails verification', () => {
    expect(chainHeadText(head)).toBe(
      `{"hash":"${'a'.repeat(64)}","key_id":"${head.key_id}","producer_id":"p","seq":7,"session_id":"s","time":"2026-11-30T12:00:00.000Z"}`,
    );
    const sig = signChainHead(head, priv);
    expect(verifyChainHead(head, sig, pub)).toBe(true);
    expect(verifyChainHead({ ...head, hash: 'b'.repeat(64) }, sig, pub)).toBe(false);
    expect(verifyChainHead({ ...head, seq: 8 }, sig, pub)).toBe(false);
    expect(verifyChainHead(head, sig, keys().pub)).toBe(false);
    expect(verifyChainHead(head, 'not base64!', pub)).toBe(false);
  });

  it('key_id: 16 hex of the SHA-256 of the raw public key, the same from either half', () => {
    expect(keyIdOf(pub)).toMatch(/^[0-9a-f]{16}$/);
    expect(keyIdOf(priv)).toBe(keyIdOf(pub));
  });

  it('refuses keys that are not Ed25519', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expect(() => loadSigningKey(rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }))).toThrow(
      /not an Ed25519 key/,
    );
    expect(() => loadSigningKey('garbage')).toThrow();
  });

  it('the signature member is not part of the provenance hash', () => {
    const event = {
      version: '1.0',
      event_type: 't',
      event_timestamp: '2026-11-30T12:00:00.000Z',
      event_category: 'gateway',
      event_action: 'a',
      event_outcome: 'success',
      correlation_id: 'c',
      event_data: {
        audit_provenance: { producer_id: 'p', session_id: 's', seq: 1, prev_hash: null },
      },
    };
    const signed = structuredClone(event) as Record<string, unknown> & typeof event;
    (signed.event_data.audit_provenance as Record<string, unknown>).signature = {
      key_id: 'k',
      time: 't',
      sig: 'x',
    };
    expect(computeProvenanceHash(signed)).toBe(computeProvenanceHash(event));
  });
});
