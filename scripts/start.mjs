// SPDX-License-Identifier: Apache-2.0
// `npm start`'s entry, in plain JavaScript so that any Node.js can run it: the demo runs the
// TypeScript sources of the repository, which a Node.js without type stripping cannot even
// load (`node scripts/start.ts` under Node 20 fails with ERR_UNKNOWN_FILE_EXTENSION). Such a
// Node gets one line saying what is needed; any other runs the demo's launcher, start.ts.
// `npm start` itself runs under the project's own Node (the `node` devDependency, Node 24).

/** Type stripping on by default: Node.js 22.18+ (22.x) or 23.6+ (23.x), and every later one. */
function stripsTypes() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  const features = /** @type {{ typescript?: unknown }} */ (process.features);
  if (!features.typescript) return false;
  if (major === 22) return minor >= 18;
  if (major === 23) return minor >= 6;
  return major > 23;
}

if (!stripsTypes()) {
  process.stderr.write(
    `npm start: the demo needs Node.js >= 22.18 with TypeScript type stripping; this is ${process.version} (${process.execPath}). Run \`npm start\`, which uses the project's own Node.\n`,
  );
  process.exit(1);
}
await import('./start.ts');
