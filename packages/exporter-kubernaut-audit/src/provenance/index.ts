/* Provenance for completeness and integrity evidence (DESIGN §11). */
export { canonicalize } from './canonical-json.ts';
export {
  asProvenance,
  canonicalTimestamp,
  computeProvenanceHash,
  hashView,
  type Provenance,
  readProvenance,
  sha256Hex,
} from './hash.ts';
export {
  ProvenanceStamper,
  type ProvenanceStamperOptions,
  type ReservedSeq,
} from './stamper.ts';
export { STATE_FILE as PROVENANCE_STATE_FILE } from './state-file.ts';
