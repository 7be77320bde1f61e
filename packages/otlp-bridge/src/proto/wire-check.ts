// SPDX-License-Identifier: Apache-2.0
/*
 * Wire-type check of a protobuf message against its schema, before it is decoded.
 *
 * protobufjs decodes a known field by its number alone: a varint where the schema has a
 * message is read as a length, a length-delimited value where it has an enum is read as a
 * varint, and so on, so a body that is not an OTLP logs request (another message, junk that
 * happens to be well-formed protobuf) can decode as an empty or partial request, and the bridge
 * would answer 200 for records it never saw.
 *
 * It also counts the messages the body would decode into. Decoding costs memory per message,
 * not per byte: an empty log record or attribute is two bytes on the wire and several hundred
 * bytes once decoded and converted, so a 16 MiB body of them would take gigabytes and block the
 * event loop for tens of seconds. The count is known before anything is allocated.
 *
 * Invariants:
 * - Every known field of every message, at every depth, has a wire type its schema type allows:
 *   length-delimited for messages, strings, bytes and maps; the scalar's own wire type for
 *   scalars and enums; for a repeated scalar of a packable type, also length-delimited (packed).
 * - Unknown fields are skipped whatever their wire type (forward compatibility), as the
 *   protobuf specification requires; field number 0 and wire types 6 and 7 are errors.
 * - A length that runs past its enclosing message is an error. Messages nest at most
 *   `protobuf.util.recursionLimit` (100, protoc's default) deep, as protobufjs decodes them.
 * - More than `maxMessages` embedded messages (the request itself not counted) throws
 *   `DecodeLimitError` as soon as the count passes the bound.
 * - Reads only; throws an Error that names the field, its number and the wire types; never
 *   allocates per byte.
 */
import protobuf from 'protobufjs';

const WIRE_VARINT = 0;
const WIRE_LENGTH = 2;

/** The body would decode into more messages (protobuf) or containers (JSON) than allowed. */
export class DecodeLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecodeLimitError';
  }
}

export interface WireCheckOptions {
  /** Most embedded messages the body may hold [unbounded]. */
  maxMessages?: number;
}

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
 * allow, or when the body holds more messages than `options.maxMessages` (see the invariants
 * above). Returns the number of embedded messages.
 */
export function checkWireTypes(
  type: protobuf.Type,
  bytes: Uint8Array,
  options: WireCheckOptions = {},
): number {
  const reader = protobuf.Reader.create(bytes);
  const count = { messages: 0, max: options.maxMessages ?? Number.POSITIVE_INFINITY };
  walk(type, reader, bytes.length, 0, count);
  return count.messages;
}

function walk(
  type: protobuf.Type,
  r: protobuf.Reader,
  end: number,
  depth: number,
  count: { messages: number; max: number },
): void {
  if (depth > protobuf.util.recursionLimit) throw new Error('max depth exceeded');
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
      if (r.pos > end) throw new Error(`${type.name}: field ${id} runs past its message`);
      continue;
    }
    const ok = allowed(field);
    if (!ok.includes(wire)) {
      throw new Error(
        `${type.name}.${field.name} (field ${id}) has wire type ${wire}, expected ${ok.join(' or ')}`,
      );
    }
    if (wire === WIRE_LENGTH && field.resolvedType instanceof protobuf.Type && !field.map) {
      if (++count.messages > count.max) {
        throw new DecodeLimitError(`the request holds more than ${count.max} messages`);
      }
      const length = r.uint32();
      const stop = r.pos + length;
      if (stop > end) throw new Error(`${type.name}.${field.name}: length runs past its message`);
      walk(field.resolvedType, r, stop, depth + 1, count);
      r.pos = stop;
      continue;
    }
    r.skipType(wire);
    if (r.pos > end) throw new Error(`${type.name}.${field.name}: value runs past its message`);
  }
}
