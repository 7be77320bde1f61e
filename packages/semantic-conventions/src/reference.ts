// SPDX-License-Identifier: Apache-2.0
import { AUDIT_ATTRIBUTES, BORROWED_ATTRIBUTES } from './registry.ts';

export const REFERENCE_BEGIN =
  '<!-- BEGIN GENERATED REFERENCE: do not edit, run `npm run docs` -->';
export const REFERENCE_END = '<!-- END GENERATED REFERENCE -->';

const cell = (s: string | undefined): string => (s ?? '').replaceAll('|', '\\|');

/** Renders the README reference tables from the registry (the single source). */
export function renderReference(): string {
  const lines: string[] = [REFERENCE_BEGIN, ''];
  lines.push('### Audit attributes', '');
  lines.push('| Constant | Key | Type | Requirement | DataStorage field | Limits | Description |');
  lines.push('|---|---|---|---|---|---|---|');
  for (const a of AUDIT_ATTRIBUTES) {
    const limits = a.values ? a.values.map((v) => `\`${v}\``).join(', ') : a.limits;
    lines.push(
      `| \`${a.constant}\` | \`${a.key}\` | ${a.type} | ${a.requirement} | \`${a.field}\` | ${cell(limits)} | ${cell(a.brief)} |`,
    );
  }
  lines.push('', '### OpenTelemetry attributes read by the mapping', '');
  lines.push('| Key | DataStorage field | Limits | Description |', '|---|---|---|---|');
  for (const b of BORROWED_ATTRIBUTES) {
    lines.push(`| \`${b.key}\` | \`${b.field}\` | ${cell(b.limits)} | ${cell(b.brief)} |`);
  }
  lines.push('', REFERENCE_END);
  return lines.join('\n');
}

/** Replaces the generated block of a README with a freshly rendered one. */
export function spliceReference(readme: string): string {
  const start = readme.indexOf(REFERENCE_BEGIN);
  const end = readme.indexOf(REFERENCE_END);
  if (start < 0 || end < start) {
    throw new Error('README has no generated reference block');
  }
  return readme.slice(0, start) + renderReference() + readme.slice(end + REFERENCE_END.length);
}
