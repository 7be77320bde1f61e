// SPDX-License-Identifier: Apache-2.0
/*
 * A record's attributes, own properties only.
 *
 * Invariant: no attribute value read by select/ or map/ comes from a prototype. The SDK assigns
 * each attribute (`attributes[key] = value`), so an attribute key `__proto__` with a map value
 * (untrusted input spread into a log's attributes: `{ ...JSON.parse(body) }`) becomes the
 * attributes object's prototype: its members would read as the record's own and could make a
 * plain log an audit record, or supply the actor or resource of one. The SDK's attributes are
 * plain objects; an object whose prototype is neither Object.prototype nor null is read through
 * an own-properties copy (its prototype's members are not the record's attributes).
 */

type Attrs = Record<string, unknown>;

const EMPTY: Attrs = Object.freeze(Object.create(null)) as Attrs;

/** True when reading `attrs[key]` reads only own properties (a plain or null-prototype object). */
export function hasPlainPrototype(attrs: object): boolean {
  const proto = Object.getPrototypeOf(attrs) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * `attributes` when it is a plain (or null-prototype) object; an own-properties copy when its
 * prototype is anything else; an empty map when it is not an object. May throw (a Proxy).
 */
export function ownAttributes(attributes: unknown): Attrs {
  if (attributes === null || typeof attributes !== 'object') return EMPTY;
  if (hasPlainPrototype(attributes)) return attributes as Attrs;
  const own = Object.create(null) as Attrs;
  for (const key of Object.keys(attributes)) own[key] = (attributes as Attrs)[key];
  return own;
}
