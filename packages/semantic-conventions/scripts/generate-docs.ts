// SPDX-License-Identifier: Apache-2.0
import { readFileSync, writeFileSync } from 'node:fs';
import { spliceReference } from '../src/reference.ts';

const path = new URL('../README.md', import.meta.url);
const before = readFileSync(path, 'utf8');
const after = spliceReference(before);
if (after !== before) writeFileSync(path, after);
console.log(after === before ? 'README reference is up to date' : 'README reference regenerated');
