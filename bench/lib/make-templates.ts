// SPDX-License-Identifier: Apache-2.0
/* Writes the benchmark record templates (from the upstream spec) to the file in argv[2]. */
import { writeFileSync } from 'node:fs';
import { makeTemplates } from './records.ts';

const file = process.argv[2];
if (!file) throw new Error('usage: make-templates.ts <file>');
writeFileSync(file, JSON.stringify(await makeTemplates()));
