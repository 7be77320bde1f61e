// SPDX-License-Identifier: Apache-2.0
/*
 * What a scenario reports: tables and notes as JSON. A scenario process writes its result
 * to the file named by `--result-file <path>` (run.ts passes one), else prints it.
 */
import { writeFileSync } from 'node:fs';
import { loadAverage } from './machine.ts';

export interface Table {
  title: string;
  headers: string[];
  rows: string[][];
}

/** A goal of the issue and what this run measured against it. */
export interface Goal {
  goal: string;
  measured: string;
  met: boolean;
}

export interface ScenarioResult {
  id: string;
  title: string;
  tables: Table[];
  goals?: Goal[];
  notes: string[];
  /** 1-minute load average at start and end of the scenario. */
  load: { start: number; end: number };
  seconds: number;
  quick: boolean;
}

export const QUICK = process.argv.includes('--quick');

/** Collects a scenario's tables and notes, then writes them out. */
export class Reporter {
  private readonly _result: ScenarioResult;
  private readonly _started = performance.now();

  constructor(id: string, title: string) {
    this._result = {
      id,
      title,
      tables: [],
      goals: [],
      notes: [],
      load: { start: loadAverage(), end: 0 },
      seconds: 0,
      quick: QUICK,
    };
  }

  table(t: Table): void {
    this._result.tables.push(t);
  }

  goal(goal: string, measured: string, met: boolean): void {
    this._result.goals?.push({ goal, measured, met });
  }

  note(text: string): void {
    this._result.notes.push(text);
  }

  /** Progress on stderr (the tables come from run.ts). */
  progress(text: string): void {
    process.stderr.write(`  [${this._result.id}] ${text}\n`);
  }

  finish(): void {
    this._result.load.end = loadAverage();
    this._result.seconds = Math.round((performance.now() - this._started) / 100) / 10;
    const i = process.argv.indexOf('--result-file');
    const file = i >= 0 ? process.argv[i + 1] : undefined;
    const json = JSON.stringify(this._result, null, 2);
    if (file) writeFileSync(file, json);
    else process.stdout.write(`${json}\n`);
  }
}

// ---- number formatting --------------------------------------------------------------

/** `1234.5` → `1,235`; small numbers keep `digits` decimals. */
export function fmt(x: number, digits = 2): string {
  if (!Number.isFinite(x)) return 'n/a';
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en');
  if (Math.abs(x) >= 100) return x.toFixed(Math.min(digits, 1));
  return x.toFixed(digits);
}

/** `median (min–max)` */
export function fmtRange(s: { median: number; min: number; max: number }, digits = 2): string {
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
}

export function fmtRatio(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a';
}

export function fmtPct(x: number): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(x === 1 ? 0 : 1)} %` : 'n/a';
}
