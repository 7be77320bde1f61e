// SPDX-License-Identifier: Apache-2.0
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as semconv from '../src/index.ts';
import { spliceReference } from '../src/reference.ts';

describe('audit semantic conventions', () => {
  it('documents every exported ATTR_ constant in the registry, with the same key', () => {
    const exported = Object.entries(semconv).filter(([name]) => name.startsWith('ATTR_'));
    expect(exported.length).toBe(18); // 15 DataStorage fields + 3 OTEP 0267 names
    for (const [name, key] of exported) {
      const def = semconv.AUDIT_ATTRIBUTES.find((a) => a.constant === name);
      expect(def, `${name} missing from the registry`).toBeDefined();
      expect(def?.key).toBe(key);
    }
    expect(semconv.AUDIT_ATTRIBUTES.length).toBe(exported.length);
  });

  it('keeps every key in the audit. namespace and unique', () => {
    const keys = semconv.AUDIT_ATTRIBUTES.map((a) => a.key);
    expect(new Set(keys).size).toBe(keys.length);
    for (const k of keys) expect(k).toMatch(/^audit\.[a-z_.]+$/);
  });

  it('lists the 14 categories and 3 outcomes of the DataStorage spec as _VALUE_ constants', () => {
    const categories = Object.entries(semconv)
      .filter(([n]) => n.startsWith('AUDIT_EVENT_CATEGORY_VALUE_'))
      .map(([, v]) => v);
    expect(categories.sort()).toEqual([...semconv.AUDIT_EVENT_CATEGORY_VALUES].sort());
    expect(categories).toHaveLength(14);
    expect(semconv.AUDIT_EVENT_OUTCOME_VALUES).toEqual(['success', 'failure', 'pending']);
  });

  it('README reference table matches the registry (run `npm run docs` to regenerate)', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    expect(spliceReference(readme)).toBe(readme);
  });
});
