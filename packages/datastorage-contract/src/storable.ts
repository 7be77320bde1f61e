// SPDX-License-Identifier: Apache-2.0
/*
 * What PostgreSQL can store as given (DESIGN §5): DataStorage keeps every string of an event in
 * `text`/`varchar` columns and `event_data` in `jsonb`, which reject the NUL character and
 * unpaired UTF-16 surrogates (not UTF-8). A value with one passes the spec's schema but can never
 * be stored: a client must reject it before sending.
 */

// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is what is looked for.
const SUSPECT_RE = /[\u0000\ud800-\udfff]/;
// String.prototype.isWellFormed (ES2024; Node >= 20) is not in the es2023 lib typings.
type WellFormed = { isWellFormed(): boolean };

/** True when PostgreSQL can store `s` as it is: no NUL character, no unpaired surrogate. */
export function isStorableString(s: string): boolean {
  // Fast path: most strings hold neither NUL nor any surrogate.
  if (!SUSPECT_RE.test(s)) return true;
  return (s as unknown as WellFormed).isWellFormed() && !s.includes('\u0000');
}

/** What one walk over a JSON value finds. */
export interface JsonShape {
  /** Nesting depth, the outermost object/array counting 1 (0 for a scalar). */
  depth: number;
  /** False when a string or key cannot be stored (see isStorableString). */
  storable: boolean;
}

/**
 * Depth and storability of a JSON value in one iterative walk (a hostile payload cannot
 * overflow the stack). Stops early, with `depth` over `depthLimit`, once that is passed.
 * `checkStrings` false: the caller knows every string and key is storable (e.g. it parsed them
 * from JSON text with no `\u` escape); only the depth is walked, and `storable` is true.
 */
export function jsonShape(
  value: unknown,
  depthLimit = Number.POSITIVE_INFINITY,
  checkStrings = true,
): JsonShape {
  if (typeof value === 'string') {
    return { depth: 0, storable: !checkStrings || isStorableString(value) };
  }
  if (value === null || typeof value !== 'object') return { depth: 0, storable: true };
  let depth = 0;
  // (false from the start when strings need no check: `storable &&` then skips every check.)
  let storable = checkStrings;
  // Depth-first with an explicit stack (objects and their depths side by side), children
  // pushed in order and popped last first; strings are checked when their holder is visited.
  const objects: object[] = [value];
  const depths: number[] = [1];
  while (objects.length > 0) {
    const v = objects.pop()!;
    const d = depths.pop()!;
    if (d > depth) {
      depth = d;
      if (depth > depthLimit) return { depth, storable: storable || !checkStrings };
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const c: unknown = v[i];
        if (typeof c === 'string') {
          if (storable && !isStorableString(c)) storable = false;
        } else if (c !== null && typeof c === 'object') {
          objects.push(c);
          depths.push(d + 1);
        }
      }
    } else {
      const keys = Object.keys(v);
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        if (storable && !isStorableString(k)) storable = false;
        const c = (v as Record<string, unknown>)[k];
        if (typeof c === 'string') {
          if (storable && !isStorableString(c)) storable = false;
        } else if (c !== null && typeof c === 'object') {
          objects.push(c);
          depths.push(d + 1);
        }
      }
    }
  }
  return { depth, storable: storable || !checkStrings };
}
