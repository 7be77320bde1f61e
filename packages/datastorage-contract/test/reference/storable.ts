// SPDX-License-Identifier: Apache-2.0
/*
 * REFERENCE COPY (tests only): the straightforward implementation of src/storable.ts as it was before
 * its hot paths were optimised. The differential tests (test/reference.test.ts) check that the
 * package's implementation gives the same answers on generated inputs. Do not optimise this copy.
 */
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
 */
export function jsonShape(value: unknown, depthLimit = Number.POSITIVE_INFINITY): JsonShape {
  if (typeof value === 'string') return { depth: 0, storable: isStorableString(value) };
  let depth = 0;
  let storable = true;
  const visit = (c: unknown, d: number) => {
    if (typeof c === 'string') {
      if (storable && !isStorableString(c)) storable = false;
    } else if (c !== null && typeof c === 'object') {
      stack.push([c, d]);
    }
  };
  const stack: Array<[object, number]> = [];
  visit(value, 1);
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (d > depth) {
      depth = d;
      if (depth > depthLimit) return { depth, storable };
    }
    if (Array.isArray(v)) {
      for (const c of v) visit(c, d + 1);
    } else {
      for (const k of Object.keys(v)) {
        if (storable && !isStorableString(k)) storable = false;
        visit((v as Record<string, unknown>)[k], d + 1);
      }
    }
  }
  return { depth, storable };
}
