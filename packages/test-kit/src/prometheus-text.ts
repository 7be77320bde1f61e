// SPDX-License-Identifier: Apache-2.0
/*
 * Reading the Prometheus text exposition format (what the programs' /metrics answer): samples
 * with their labels, and the `# TYPE` / `# UNIT` metadata of each family. Enough of the format
 * for OTel's Prometheus exporter: label values are double-quoted with `\\`, `\"` and `\n`
 * escapes; no timestamps are expected but tolerated.
 */

/** One sample line. */
export interface PrometheusSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A parsed exposition. */
export interface PrometheusText {
  samples: PrometheusSample[];
  /** `# TYPE` of each family. */
  types: Map<string, string>;
  /** `# UNIT` of each family that has one. */
  units: Map<string, string>;
  /** The first sample of `name` whose labels include `labels`, or undefined. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** Every family and sample name that appears (samples, and families declared without any). */
  names(): Set<string>;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/y;

function unescapeLabel(value: string): string {
  return value.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const start = LABEL.lastIndex;
    const m = LABEL.exec(text);
    if (!m) throw new Error(`unparsable labels at ${start}: {${text}}`);
    labels[m[1]!] = unescapeLabel(m[2]!);
  }
  return labels;
}

function parseValue(text: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(text);
}

/** Parses an exposition; throws on a line it cannot read. */
export function parsePrometheusText(text: string): PrometheusText {
  const samples: PrometheusSample[] = [];
  const types = new Map<string, string>();
  const units = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const [, kind, name, ...rest] = line.split(/\s+/);
      if (kind === 'TYPE' && name) types.set(name, rest.join(' '));
      if (kind === 'UNIT' && name) units.set(name, rest.join(' '));
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`unparsable sample line: ${line}`);
    samples.push({
      name: m[1]!,
      labels: m[3] ? parseLabels(m[3]) : {},
      value: parseValue(m[4]!),
    });
  }
  return {
    samples,
    types,
    units,
    value(name, labels = {}) {
      const found = samples.find(
        (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
      );
      return found?.value;
    },
    names() {
      return new Set([...types.keys(), ...samples.map((s) => s.name)]);
    },
  };
}

/** GETs `${url}/metrics` and parses it; throws unless it answers 200 text/plain. */
export async function scrape(url: string): Promise<PrometheusText> {
  const res = await fetch(`${url}/metrics`);
  const text = await res.text();
  if (res.status !== 200 || !/^text\/plain/.test(res.headers.get('content-type') ?? '')) {
    throw new Error(`${url}/metrics answered ${res.status}: ${text.slice(0, 200)}`);
  }
  return parsePrometheusText(text);
}
