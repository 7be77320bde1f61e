// SPDX-License-Identifier: Apache-2.0
/* The one rule set for configuration values: numbers, durations, booleans, times, messages. */
import {
  choiceFromEnv,
  describeRule,
  errorText,
  numberFromEnv,
  numberOption,
  parseBoolean,
  parseDuration,
  parseNumber,
  parseTime,
} from '@kubernaut/datastorage-contract/config';
import { describe, expect, it } from 'vitest';

describe('numbers', () => {
  it('parses decimal text that keeps the rule', () => {
    expect(parseNumber(' 42 ', { integer: true, min: 1 })).toBe(42);
    expect(parseNumber('1e3', { integer: true })).toBe(1000);
    expect(parseNumber('0.5', { min: 0, max: 1 })).toBe(0.5);
    for (const bad of ['', 'lots', '0x10', 'Infinity', '1.5', '-1', '70000']) {
      expect(parseNumber(bad, { integer: true, min: 0, max: 65535 }), bad).toBeUndefined();
    }
  });

  it('describes rules in words', () => {
    expect(describeRule({ integer: true, min: 1 })).toBe('an integer >= 1');
    expect(describeRule({ above: 0 })).toBe('a number > 0');
    expect(describeRule({ integer: true, min: 0, max: 65535 })).toBe('an integer from 0 to 65535');
  });

  it('reports an invalid option or variable by name, and gives undefined', () => {
    const lines: string[] = [];
    const report = (m: string) => lines.push(m);
    expect(numberOption('maxQueueSize', 0, { integer: true, min: 1 }, report)).toBeUndefined();
    expect(numberOption('maxQueueSize', 5, { integer: true, min: 1 }, report)).toBe(5);
    expect(numberOption('maxQueueSize', undefined, { min: 1 }, report)).toBeUndefined();
    const env = { A: 'lots', B: ' 7 ', C: '', D: 'SYNC', E: 'sometimes' };
    expect(numberFromEnv(env, 'A', { integer: true, min: 1 }, report)).toBeUndefined();
    expect(numberFromEnv(env, 'B', { integer: true, min: 1 }, report)).toBe(7);
    expect(numberFromEnv(env, 'C', { integer: true, min: 1 }, report)).toBeUndefined();
    expect(choiceFromEnv(env, 'D', ['batch', 'sync'], report)).toBe('sync');
    expect(choiceFromEnv(env, 'E', ['batch', 'sync'], report)).toBeUndefined();
    expect(lines).toEqual([
      'invalid maxQueueSize (0): expected an integer >= 1',
      'ignoring A="lots": expected an integer >= 1',
      'ignoring E="sometimes": expected "batch" or "sync"',
    ]);
  });
});

describe('durations, booleans and times', () => {
  it.each([
    ['24h', 86_400_000],
    ['90m', 5_400_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1500],
    ['7d', 604_800_000],
    ['500us', 0.5],
  ])('duration %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('rejects what is not a duration', () => {
    for (const bad of ['', '24', 'h', '-1h', '1 h', 'yesterday']) {
      expect(parseDuration(bad), bad).toBeUndefined();
    }
  });

  it('booleans', () => {
    expect([' TRUE', 'yes', '1', 'on'].map(parseBoolean)).toEqual([true, true, true, true]);
    expect(['false', 'No', '0', 'off'].map(parseBoolean)).toEqual([false, false, false, false]);
    expect(parseBoolean('maybe')).toBeUndefined();
  });

  it('a time is a duration before now or an RFC 3339 date-time', () => {
    const now = Date.parse('2026-11-22T12:00:00Z');
    expect(parseTime('24h', now)).toBe(Date.parse('2026-11-21T12:00:00Z'));
    expect(parseTime('2026-11-20T01:02:03+01:00', now)).toBe(Date.parse('2026-11-20T00:02:03Z'));
    expect(parseTime('2026-02-30T00:00:00Z', now)).toBeUndefined();
    expect(parseTime('soon', now)).toBeUndefined();
  });
});

describe('errorText', () => {
  it("is an Error's message or the value as text, cut when asked, and never throws", () => {
    expect(errorText(new TypeError('bad'))).toBe('bad');
    expect(errorText('plain')).toBe('plain');
    expect(errorText('x'.repeat(10), 4)).toBe('xxxx…');
    const hostile = {
      toString() {
        throw new Error('no');
      },
    };
    expect(errorText(hostile)).toBe('unknown error');
    // An Error whose message is not a string: made one, or 'unknown error' when it cannot be.
    const withMessage = (message: unknown) =>
      Object.defineProperty(new Error(), 'message', { get: () => message });
    expect(errorText(withMessage(42))).toBe('42');
    expect(typeof errorText(withMessage({ a: 1 }), 5)).toBe('string');
    expect(errorText(withMessage(hostile))).toBe('unknown error');
  });
});
