// SPDX-License-Identifier: Apache-2.0
/*
 * The Grafana dashboard: well-formed (unique panel ids, every panel queries the chosen
 * Prometheus data source), every query uses only metrics of the metric list, and every metric an
 * alert relies on is on a panel. That those metrics are really exposed by the programs is checked
 * against their live /metrics by prometheus.e2e.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  alertRules,
  dashboardPanels,
  dashboardQueries,
  entryOf,
  metricNamesIn,
  PROMETHEUS_BUILTINS,
  readDashboard,
  readMetrics,
} from './support/deploy.ts';

/** Grafana's reference to the dashboard's data source variable. */
const DATASOURCE_VARIABLE = ['$', '{datasource}'].join('');

describe('Grafana dashboard', () => {
  const dashboard = readDashboard();
  const metrics = readMetrics();

  it('has unique panel ids, and every panel queries the chosen Prometheus', () => {
    const panels = dashboardPanels(dashboard);
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    expect(dashboard.uid).toBe('kubernaut-audit');
    const datasource = dashboard.templating.list.find((v) => v.name === 'datasource');
    expect(datasource?.type).toBe('datasource');
    for (const p of panels.filter((p) => p.type !== 'row')) {
      expect(p.targets?.length, `panel "${p.title}"`).toBeGreaterThan(0);
      const raw = p as { datasource?: { uid?: string } };
      expect(raw.datasource?.uid, `panel "${p.title}"`).toBe(DATASOURCE_VARIABLE);
      const refIds = p.targets!.map((t) => t.refId);
      expect(new Set(refIds).size).toBe(refIds.length);
    }
  });

  it('queries only metrics of the metric list', () => {
    const queries = dashboardQueries(dashboard);
    expect(queries.length).toBeGreaterThan(30);
    const unknown = queries.flatMap((q) =>
      metricNamesIn(q.expr)
        .filter((n) => !PROMETHEUS_BUILTINS.has(n) && !entryOf(n, metrics))
        .map((n) => `${q.where}: ${n}`),
    );
    expect(unknown).toEqual([]);
  });

  it('shows every metric an alert relies on', () => {
    const shown = new Set(
      dashboardQueries(dashboard).flatMap((q) =>
        metricNamesIn(q.expr).map((n) => entryOf(n, metrics)?.otel),
      ),
    );
    const missing = alertRules().flatMap((r) =>
      metricNamesIn(r.expr)
        .map((n) => entryOf(n, metrics)?.otel)
        .filter((otel) => otel !== undefined && !shown.has(otel))
        .map((otel) => `${r.alert}: ${otel}`),
    );
    expect(missing).toEqual([]);
  });

  it('selects its producers and DataStorage by metrics that exist from the first scrape on', () => {
    const variables = dashboardQueries(dashboard).filter((q) => q.where.startsWith('variable'));
    expect(variables.map((v) => v.where).sort()).toEqual([
      'variable $datastorage',
      'variable $instance',
      'variable $job',
    ]);
    for (const v of variables) {
      for (const name of metricNamesIn(v.expr)) {
        expect(entryOf(name, metrics)?.appears, `${v.where}: ${name}`).not.toBe('event');
      }
    }
  });
});
