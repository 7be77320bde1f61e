// SPDX-License-Identifier: Apache-2.0
/*
 * The destination a spool belongs to: the normalised DataStorage base URL. Two spellings of
 * one DataStorage (`HTTP://DS:80/`, `http://ds`) normalise alike; a different scheme, host,
 * port or path prefix is a different destination. Pure.
 */

/** Normalised base URL (`scheme://host[:port][/prefix]`, no trailing slash); throws when not http(s). */
export function normalizeDestination(url: string): string {
  const u = new URL(url.trim());
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new TypeError('the DataStorage URL is not http(s)');
  }
  // URL lower-cases the scheme and host and drops a default port.
  const path = u.pathname.replace(/\/+$/, '');
  return `${u.protocol}//${u.host}${path}`;
}

/** True when both name the same DataStorage (undefined or unparsable never matches). */
export function sameDestination(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  try {
    return normalizeDestination(a) === normalizeDestination(b);
  } catch {
    return false;
  }
}
