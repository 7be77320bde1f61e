// SPDX-License-Identifier: Apache-2.0
import { generateKeyPairSync, sign } from 'node:crypto';
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

  it('accepts only the one base64 text of a 64-byte signature (as a strict decoder would)', () => {
    // Node's base64 decoder is lenient; a Go or Python verifier with a strict decoder is not.
    // The same head must verify, or not, whoever checks it.
    const sig = signChainHead(head, priv);
    expect(sig).toMatch(/^[A-Za-z0-9+/]{86}==$/);
    const bytes = Buffer.from(sig, 'base64');
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    // The 86th character carries 4 bits of the signature and 2 padding bits that must be zero.
    const padBitsSet = `${sig.slice(0, 85)}${alphabet[alphabet.indexOf(sig[85]!) | 1]}==`;
    expect(Buffer.from(padBitsSet, 'base64')).toEqual(bytes);
    for (const variant of [
      bytes.toString('base64url'),
      sig.replace(/=+$/, ''),
      `${sig.slice(0, 40)}\n${sig.slice(40)}`,
      ` ${sig}`,
      `${sig}AAAA`,
      `${sig}!`,
      padBitsSet,
    ]) {
      expect(variant).not.toBe(sig);
      expect(verifyChainHead(head, variant, pub)).toBe(false);
    }
    expect(verifyChainHead(head, sig, pub)).toBe(true);
  });

  it('rejects signatures of the wrong length, and keys of another algorithm', () => {
    const sig = Buffer.from(signChainHead(head, priv), 'base64');
    expect(verifyChainHead(head, sig.subarray(0, 63).toString('base64'), pub)).toBe(false);
    expect(
      verifyChainHead(head, Buffer.concat([sig, Buffer.alloc(1)]).toString('base64'), pub),
    ).toBe(false);
    expect(verifyChainHead(head, '', pub)).toBe(false);
    // S + L (the group order) is the same signature to a lax verifier: refused (RFC 8032 §5.1.7).
    const L = (1n << 252n) + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(sig[32 + i]!);
    const malleated = Buffer.from(sig);
    let t = s + L;
    for (let i = 0; i < 32; i++) {
      malleated[32 + i] = Number(t & 0xffn);
      t >>= 8n;
    }
    expect(t).toBe(0n);
    expect(verifyChainHead(head, malleated.toString('base64'), pub)).toBe(false);
    // A 512-bit RSA key also makes 64-byte signatures: a key of another algorithm never verifies.
    const rsa = generateKeyPairSync('rsa', { modulusLength: 512 });
    const rsaSig = sign(null, Buffer.from(chainHeadText(head), 'utf8'), rsa.privateKey);
    expect(rsaSig).toHaveLength(64);
    expect(verifyChainHead(head, rsaSig.toString('base64'), rsa.publicKey)).toBe(false);
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
