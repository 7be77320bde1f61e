// SPDX-License-Identifier: Apache-2.0
/*
 * Public API of @kubernaut/audit-provenance: the completeness and integrity evidence format of
 * DESIGN §11 (canonical JSON, canonical timestamps, the provenance stamp and its hash view),
 * shared by whoever stamps, stores or verifies audit events. Explicit named exports only.
 */
export { canonicalize } from './canonical-json.ts';
export {
  asProvenance,
  computeProvenanceHash,
  hashView,
  type Provenance,
  readProvenance,
  sha256Hex,
} from './hash.ts';
export {
  asSignedChainHead,
  asStampSignature,
  type ChainHead,
  chainHeadText,
  keyIdOf,
  loadPublicKey,
  loadSigningKey,
  type SignedChainHead,
  type StampSignature,
  signChainHead,
  verifyChainHead,
} from './signature.ts';
export { canonicalTimestamp } from './timestamp.ts';
