// SPDX-License-Identifier: Apache-2.0
/*
 * Wire-type check of a protobuf message against its schema, before it is believed.
 *
 * protobufjs decodes a known field by its number alone: a varint where the schema has a
 * message is read as a length, a length-delimited value where it has an enum is read as a
 * varint, and so on, so a body that is not an OTLP logs request (another message, junk that
 * happens to be well-formed protobuf) can decode as an empty or partial request, and the bridge
 * would answer 200 for records it never saw.
 *
 * Invariants:
 * - Every known field of every message, at every depth, has a wire type its schema type allows:
 *   length-delimited for messages, strings, bytes and maps; the scalar's own wire type for
 *   scalars and enums; for a repeated scalar of a packable type, also length-delimited (packed).
 * - Unknown fields are skipped whatever their wire type (forward compatibility), as the
 *   protobuf specification requires; field number 0 and wire types 6 and 7 are errors.
 * - A length that runs past its enclosing message is an error. Reads only; throws an Error
 *   that names the field, its number and the wire types; never allocates per byte.
 */
import protobuf from 'protobufjs';

const WIRE_VARINT = 0;
const WIRE_LENGTH = 2;

/** The wire types `field` may arrive with. */
function allowed(field: protobuf.Field): readonly number[] {
  if (field.map || field.resolvedType instanceof protobuf.Type) return [WIRE_LENGTH];
  const scalar =
    field.resolvedType instanceof protobuf.Enum
      ? WIRE_VARINT
      : (protobuf.types.basic as Record<string, number | undefined>)[field.type];
  if (scalar === undefined || scalar === WIRE_LENGTH) return [WIRE_LENGTH]; // string, bytes
  return field.repeated ? [scalar, WIRE_LENGTH] : [scalar];
}

/**
 * Throws when a known field of `bytes`, read as `type`, has a wire type its schema does not
 * allow (see the invariants above).
 */
export function checkWireTypes(type: protobuf.Type, bytes: Uint8Array): void {
  const reader = protobuf.Reader.create(bytes);
  walk(type, reader, bytes.length);
}

function walk(type: protobuf.Type, r: protobuf.Reader, end: number): void {
  while (r.pos < end) {
    const tag = r.uint32();
    const id = tag >>> 3;
    const wire = tag & 7;
    if (id === 0 || wire > 5) {
      throw new Error(`${type.name}: invalid tag (field ${id}, wire type ${wire})`);
    }
    const field = type.fieldsById[id];
    if (field === undefined) {
      r.skipType(wire);
      continue;
    }
    const ok = allowed(field);
    if (!ok.includes(wire)) {
      throw new Error(
        `${type.name}.${field.name} (field ${id}) has wire type ${wire}, expected ${ok.join(' or ')}`,
      );
    }
    if (wire === WIRE_LENGTH && field.resolvedType instanceof protobuf.Type && !field.map) {
      const length = r.uint32();
      const stop = r.pos + length;
      if (stop > end) throw new Error(`${type.name}.${field.name}: length runs past its message`);
      walk(field.resolvedType, r, stop);
      r.pos = stop;
      continue;
    }
    r.skipType(wire);
    if (r.pos > end) throw new Error(`${type.name}.${field.name}: value runs past its message`);
  }
}
