#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
/*
 * The `kubernaut-audit` command. It runs the package's build (build/esm/bin.js). In a checkout that has
 * not been built yet (right after `npm ci`), it runs the TypeScript sources instead, resolving the
 * workspace packages to their sources too: Node.js strips the types (22.18+), and a resolve hook
 * adds the `@kubernaut/source` export condition the packages declare for that.
 */
import { existsSync } from 'node:fs';
import module from 'node:module';

const built = new URL('../build/esm/bin.js', import.meta.url);
const source = new URL('../src/bin.ts', import.meta.url);
if (existsSync(built)) {
  await import(built.href);
} else if (existsSync(source) && process.features.typescript && module.registerHooks) {
  module.registerHooks({
    resolve: (specifier, context, nextResolve) =>
      nextResolve(specifier, {
        ...context,
        conditions: [...context.conditions, '@kubernaut/source'],
      }),
  });
  await import(source.href);
} else {
  process.stderr.write(
    `kubernaut-audit: this copy of the package is not built (no build/): run \`npm run build\` in the repository, or use Node.js >= 22.18 to run its sources\n`,
  );
  process.exit(2);
}
