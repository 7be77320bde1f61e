// SPDX-License-Identifier: Apache-2.0
/*
 * Turns a TypeScript file of the benchmark (and the benchmark files it refers to) into plain
 * JavaScript under bench/build/, for a child process that must weigh what an application weighs:
 * an application ships JavaScript, while a child that loads a .ts file also loads Node's type
 * stripper (≈ 18 MB of resident memory on Node 24, in every such process).
 *
 * Types are stripped by Node's own stripper (module.stripTypeScriptTypes, in this process), so
 * the JavaScript is the same code the child would otherwise run. Relative references to other
 * .ts files (imports, and `new URL('./x.ts', import.meta.url)` for forked children) are
 * compiled as well and rewritten to their .mjs copies; package imports stay as they are.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = resolve(fileURLToPath(new URL('..', import.meta.url)));
const OUT = join(BENCH, 'build');

/** A relative string literal naming a .ts file: './x.ts', "../lib/y.ts". */
const RELATIVE_TS = /(['"])(\.\.?\/[^'"\n]+)\.ts\1/g;

/** Compiles `file` (a .ts file under bench/) and what it refers to; returns the .mjs path. */
export function compileForChild(file: string, done = new Map<string, string>()): string {
  const source = resolve(file);
  const known = done.get(source);
  if (known !== undefined) return known;
  const rel = relative(BENCH, source);
  if (rel.startsWith('..') || !rel.endsWith('.ts')) {
    throw new Error(`compileForChild: ${file} is not a .ts file of the benchmark`);
  }
  const target = join(OUT, rel.replace(/\.ts$/, '.mjs'));
  done.set(source, target);
  const js = quietly(() => stripTypeScriptTypes(readFileSync(source, 'utf8'), { mode: 'strip' }));
  const rewritten = js.replace(RELATIVE_TS, (_match, quote: string, path: string) => {
    compileForChild(join(dirname(source), `${path}.ts`), done);
    return `${quote}${path}.mjs${quote}`;
  });
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, rewritten);
  return target;
}

/**
 * Runs `f` without the ExperimentalWarning Node prints at the first stripTypeScriptTypes()
 * (noise in the benchmark's output); every other warning passes.
 */
function quietly<T>(f: () => T): T {
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === 'string' ? warning : warning.message;
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string })?.type;
    const name = typeof warning === 'string' ? type : warning.name;
    if (name === 'ExperimentalWarning' && /stripTypeScriptTypes/.test(text)) return;
    (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return f();
  } finally {
    process.emitWarning = emit;
  }
}
