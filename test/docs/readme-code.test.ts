// SPDX-License-Identifier: Apache-2.0
/*
 * Every TypeScript and JavaScript code block of every README (and of docs/, when there is one)
 * compiles: type-checked as a module of its own, strict, against the workspace packages' sources
 * and the installed libraries, as a user pasting it into a file would get it. Blocks in other
 * languages (sh, yaml, json, text) are not code to compile.
 *
 * A block that is an excerpt on purpose (it uses names defined around it) starts with a comment
 * line `// excerpt` and is checked for syntax only. Use sparingly: a block a user copies should
 * compile as it stands.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '@kubernaut/test-kit';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';

const LANGUAGES: Record<string, 'ts' | 'js'> = {
  ts: 'ts',
  typescript: 'ts',
  js: 'js',
  javascript: 'js',
  mjs: 'js',
};
const EXCERPT = /^\/\/ excerpt\b/;

export interface CodeBlock {
  file: string;
  line: number;
  language: 'ts' | 'js';
  code: string;
  excerpt: boolean;
}

/** The fenced ts/js blocks of a Markdown text. */
export function codeBlocks(file: string, markdown: string): CodeBlock[] {
  const out: CodeBlock[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/.exec(lines[i] as string);
    if (!open) continue;
    const [, indent = '', fence = '```', info = ''] = open;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !(lines[j] as string).trim().startsWith(fence); j++) {
      body.push((lines[j] as string).slice(indent.length));
    }
    const language = LANGUAGES[info.toLowerCase()];
    if (language !== undefined) {
      const code = body.join('\n');
      out.push({ file, line: i + 1, language, code, excerpt: EXCERPT.test(code.trimStart()) });
    }
    i = j;
  }
  return out;
}

function documents(): string[] {
  return execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.md'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  })
    .split('\n')
    .filter((f) => /(^|\/)README\.md$/.test(f) || f.startsWith('docs/'));
}

const blocks = documents().flatMap((f) => codeBlocks(f, readFileSync(join(REPO_ROOT, f), 'utf8')));

// The blocks are written into a folder inside node_modules so that they resolve the workspace
// packages (through the `@kubernaut/source` condition: no build needed) and the libraries.
const dir = mkdtempSync(join(REPO_ROOT, 'node_modules', '.readme-blocks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function compile(): Map<string, string[]> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  const names = new Map<string, CodeBlock>();
  for (const [n, b] of blocks.entries()) {
    const name = join(dir, `block-${n}.${b.language === 'ts' ? 'ts' : 'js'}`);
    // A module of its own (top-level await, no clashes between blocks).
    writeFileSync(name, `${b.code}\nexport {};\n`);
    names.set(name, b);
  }
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2023,
    lib: ['lib.es2023.d.ts'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    allowJs: true,
    checkJs: true,
    skipLibCheck: true,
    allowImportingTsExtensions: true,
    customConditions: ['@kubernaut/source'],
    types: ['node'],
    typeRoots: [join(REPO_ROOT, 'node_modules', '@types')],
    esModuleInterop: true,
  };
  const program = ts.createProgram([...names.keys()], options);
  const errors = new Map<string, string[]>();
  for (const [name, b] of names) {
    const source = program.getSourceFile(name);
    const diagnostics = b.excerpt
      ? program.getSyntacticDiagnostics(source)
      : [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)];
    const key = `${b.file}:${b.line}`;
    errors.set(
      key,
      diagnostics.map((d) => {
        const { line } = d.file?.getLineAndCharacterOfPosition(d.start ?? 0) ?? { line: 0 };
        return `line ${line + 1} of the block: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      }),
    );
  }
  return errors;
}

describe('README code blocks', () => {
  it('finds the code blocks of the READMEs (and marks excerpts)', () => {
    expect(blocks.length).toBeGreaterThan(20);
    const found = codeBlocks(
      'x.md',
      '```ts\n// excerpt: uses sdk\nsdk.start();\n```\n```sh\nls\n```\n',
    );
    expect(found).toEqual([
      {
        file: 'x.md',
        line: 1,
        language: 'ts',
        code: '// excerpt: uses sdk\nsdk.start();',
        excerpt: true,
      },
    ]);
  });

  it('every ts/js block compiles as it stands (excerpts: syntax only)', () => {
    const errors = compile();
    const failing = [...errors].filter(([, e]) => e.length > 0);
    expect(
      failing.map(([where, e]) => `${where}\n  ${e.join('\n  ')}`).join('\n'),
      'blocks that do not compile',
    ).toBe('');
    // Excerpts stay the exception.
    expect(blocks.filter((b) => b.excerpt).length).toBeLessThanOrEqual(3);
  }, 120_000);
});
