// Runs the compiled test files (dist/test/<ring>/**/*.test.js) with node's built-in test runner.
// Usage: node test/run-tests.mjs [ring ...]   rings: unit integration e2e (default: all three).
// End-to-end files run one at a time (they start real MTAs); the other rings run in parallel.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const rings = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['unit', 'integration', 'e2e'];

function find(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return find(p);
    return name.endsWith('.test.js') ? [p] : [];
  });
}

let failed = false;
for (const ring of rings) {
  const files = find(path.join(root, 'dist', 'test', ring)).sort();
  if (files.length === 0) continue;
  console.log(`\n# ${ring}: ${files.length} file(s)`);
  const args = ['--test', '--test-reporter=spec', `--test-concurrency=${ring === 'e2e' ? 1 : 2}`, ...files];
  const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
