// SPDX-License-Identifier: Apache-2.0
// `npm start`: runs the end-to-end demo (examples/demo).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const demo = fileURLToPath(new URL('../examples/demo/src/main.ts', import.meta.url));
const r = spawnSync(process.execPath, ['--conditions=@kubernaut/source', demo], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
