// SPDX-License-Identifier: Apache-2.0
/*
 * Builds the workspace package in the current directory to dual ESM and CommonJS with
 * type declarations. Run by each package's `build` script (turbo orders them).
 *
 * - build/esm: `tsc -p tsconfig.build.json --noCheck`; the package is "type": "module".
 * - build/cjs: the same sources compiled from a copy that sits in a "type": "commonjs"
 *   scope, so that `module: nodenext` emits CommonJS and resolves dependencies' types
 *   through their `require` conditions, exactly as a CommonJS consumer will.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');
const cwd = process.cwd();
const build = join(cwd, 'build');
const cjsSrc = join(build, 'cjs-src');

const tscRun = (project: string, args: string[] = []) =>
  execFileSync(process.execPath, [tsc, '-p', project, ...args], { cwd, stdio: 'inherit' });

rmSync(build, { recursive: true, force: true });
// The ESM emit skips type checking (same output, a third less time): the CommonJS pass below
// checks the same sources, and `npm test` checks everything with `tsc -b` before it builds.
tscRun('tsconfig.build.json', ['--outDir', 'build/esm', '--noCheck']);

cpSync(join(cwd, 'src'), cjsSrc, { recursive: true });
writeFileSync(join(cjsSrc, 'package.json'), '{ "type": "commonjs" }\n');
writeFileSync(
  join(cjsSrc, 'tsconfig.json'),
  JSON.stringify({
    extends: '../../tsconfig.build.json',
    compilerOptions: { rootDir: '.', outDir: '../cjs', verbatimModuleSyntax: false },
    include: ['.'],
  }),
);
try {
  tscRun(join(cjsSrc, 'tsconfig.json'));
} finally {
  rmSync(cjsSrc, { recursive: true, force: true });
}
rmSync(join(build, 'cjs', 'package.json'), { force: true });
rmSync(join(build, 'cjs', 'tsconfig.json'), { force: true });
writeFileSync(join(build, 'cjs', 'package.json'), '{ "type": "commonjs" }\n');
