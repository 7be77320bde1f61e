// SPDX-License-Identifier: Apache-2.0
/*
 * The runbook covers every alert: one section each, saying what it means, how to confirm it,
 * what to do and what must never be done; its PromQL uses only metrics of the metric list; the
 * rules every alert shares (never delete a spool, verify completeness) are stated once.
 */
import { describe, expect, it } from 'vitest';
import {
  alertRules,
  entryOf,
  metricNamesIn,
  PROMETHEUS_BUILTINS,
  promqlBlocks,
  RUNBOOK_PATH,
  readMetrics,
  readText,
} from './support/deploy.ts';

const runbook = readText(RUNBOOK_PATH);

/** The body of each `## ` section, by heading. */
function sections(): Map<string, string> {
  const out = new Map<string, string>();
  const parts = runbook.split(/^## /m).slice(1);
  for (const part of parts) {
    const nl = part.indexOf('\n');
    out.set(part.slice(0, nl).trim(), part.slice(nl + 1));
  }
  return out;
}

describe('runbook', () => {
  const alerts = [...new Set(alertRules().map((r) => r.alert))];
  const bySection = sections();

  it('has a section for every alert, and none for an alert that does not exist', () => {
    expect(alerts.filter((a) => !bySection.has(a))).toEqual([]);
    const alertSections = [...bySection.keys()].filter((h) => /^Audit[A-Za-z]+$/.test(h));
    expect(alertSections.sort()).toEqual([...alerts].sort());
  });

  it('says for each alert what it means, how to confirm it, what to do and what never to do', () => {
    for (const alert of alerts) {
      const text = bySection.get(alert) ?? '';
      for (const part of ['**Meaning.**', '**Confirm.**', '**Act.**', '**Never.**']) {
        expect(text, `${alert}: ${part}`).toContain(part);
      }
      const confirm = text.slice(text.indexOf('**Confirm.**'), text.indexOf('**Act.**'));
      expect(confirm, `${alert}: a query to confirm it`).toMatch(/```promql\n/);
    }
  });

  it('queries only metrics of the metric list', () => {
    const metrics = readMetrics();
    const blocks = promqlBlocks(runbook);
    expect(blocks.length).toBeGreaterThanOrEqual(alerts.length);
    const unknown = blocks.flatMap((b) =>
      b
        .split('\n')
        .filter((line) => line.trim() !== '')
        .flatMap((line) => metricNamesIn(line))
        .filter((n) => !PROMETHEUS_BUILTINS.has(n) && !entryOf(n, metrics)),
    );
    expect(unknown).toEqual([]);
  });

  it('states the rules every alert shares: the spool is never deleted, completeness is verified', () => {
    const shared = bySection.get('Rules that hold for every alert') ?? '';
    expect(shared).toMatch(/Never delete, truncate, edit or move a spool directory/);
    expect(shared).toMatch(/Never delete dead-letter files/);
    expect(shared).toMatch(/verify completeness/);
    expect(runbook).toMatch(/kubernaut-audit verify --url/);
    expect(runbook).toMatch(/kubernaut-audit dead-letters replay/);
  });
});
