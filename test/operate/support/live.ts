// SPDX-License-Identifier: Apache-2.0
/*
 * The metric list (deploy/metrics.json) against what the programs really expose on /metrics.
 *
 * Each entry's status:
 * - `live`: on the /metrics of a program that exposes it, with the documented unit (seconds and
 *   bytes are checked; annotations such as `{log_record}` are not) and no undocumented label;
 * - `wrong-unit` / `extra-labels`: on /metrics, but not as documented;
 * - `declared`: not on /metrics, but its OTel name is declared in the program's source (a
 *   counter is born with its first increment: an event the scenario did not cause);
 * - `absent`: neither.
 *
 * What is expected: `live` for what appears at start or once records flow; `live` or `declared`
 * for event counters. For an entry marked `awaiting`: `absent` or `wrong-unit`; or `declared`
 * when that does not mean it arrived — a metric that should appear at start or with use is
 * declared but not yet running, and one the current code has in another unit (`currentUnit`)
 * shows its unit only in samples. Any other combination is a difference between the list and
 * the code.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { PrometheusText } from '@kubernaut/test-kit';
import { type MetricEntry, ROOT } from './deploy.ts';

export type Status = 'live' | 'wrong-unit' | 'extra-labels' | 'declared' | 'absent';

/** Where each source's instruments are declared. */
const SOURCES: Record<MetricEntry['source'], string[]> = {
  library: ['packages/exporter-kubernaut-audit/src'],
  bridge: ['packages/otlp-bridge/src'],
  server: ['packages/datastorage-server/src'],
};

/** Labels every series may carry besides the documented ones. */
const ALWAYS = new Set(['otel_scope_name', 'otel_scope_version', 'otel_scope_schema_url', 'le']);

function sourceText(dirs: string[]): string {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.ts')) out.push(readFileSync(path, 'utf8'));
    }
  };
  for (const d of dirs) walk(join(ROOT, d));
  return out.join('\n');
}

/** The status of each entry, against the exposition of the program(s) that expose it. */
export function statuses(
  metrics: MetricEntry[],
  expositions: Record<MetricEntry['source'], PrometheusText>,
): Map<MetricEntry, { status: Status; detail: string }> {
  const sources = new Map<string, string>();
  const out = new Map<MetricEntry, { status: Status; detail: string }>();
  for (const m of metrics) {
    const text = expositions[m.source];
    const family = m.prometheus;
    const series = text.samples.filter(
      (s) =>
        s.name === family ||
        (m.type === 'histogram' &&
          ['_bucket', '_sum', '_count'].some((x) => s.name === family + x)),
    );
    if (series.length > 0) {
      const unit = text.units.get(family);
      if ((m.unit === 's' || m.unit === 'By') && unit !== m.unit) {
        out.set(m, {
          status: 'wrong-unit',
          detail: `unit ${unit ?? '(none)'}, documented ${m.unit}`,
        });
        continue;
      }
      const documented = new Set([...m.labels, ...ALWAYS]);
      const extra = [
        ...new Set(series.flatMap((s) => Object.keys(s.labels).filter((l) => !documented.has(l)))),
      ];
      out.set(
        m,
        extra.length
          ? { status: 'extra-labels', detail: `undocumented labels ${extra.join(', ')}` }
          : { status: 'live', detail: '' },
      );
      continue;
    }
    const key = m.source;
    if (!sources.has(key)) sources.set(key, sourceText(SOURCES[key]));
    out.set(
      m,
      sources.get(key)!.includes(`'${m.otel}'`)
        ? { status: 'declared', detail: 'declared in the source, not on /metrics' }
        : { status: 'absent', detail: 'neither on /metrics nor declared in the source' },
    );
  }
  return out;
}

/** Whether an entry's status is what the list says it should be. */
export function asExpected(m: MetricEntry, status: Status): boolean {
  if (m.awaiting === undefined) {
    return status === 'live' || (m.appears === 'event' && status === 'declared');
  }
  return (
    status === 'absent' ||
    status === 'wrong-unit' ||
    (status === 'declared' && (m.appears !== 'event' || m.currentUnit !== undefined))
  );
}
