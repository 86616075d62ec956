// Ring (b): the package as a user installs it. `npm pack` this checkout, `npm install -g` the
// tarball into a private prefix (never the real global one), and run the installed command:
// --help, version, check-config on the packed example configuration, and a serve/stop cycle
// (which loads every runtime module, the access-map worker and the dependencies). Also the
// from-a-checkout install, `npm install -g .`, into another private prefix.
// Dependencies come from npm's cache where it has them (--prefer-offline; after `npm ci` it has
// them all) and from the registry otherwise. Without npm the test is skipped, under CI=true it fails.
import assert from 'node:assert/strict';
import type { SpawnSyncReturns } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, lstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { after, describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../../daemon/version.js';

const CI = process.env['CI'] === 'true';
const pkg = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  scripts?: Record<string, string>;
};
const work = mkdtempSync(path.join(os.tmpdir(), 'mp-install-'));
after(() => rmSync(work, { recursive: true, force: true }));

function npm(args: string[], cwd: string): SpawnSyncReturns<string> {
  return spawnSync('npm', [...args, '--no-audit', '--no-fund', '--no-update-notifier'], {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
  });
}

function haveNpm(t: TestContext): boolean {
  if (spawnSync('npm', ['--version'], { encoding: 'utf8' }).status === 0) return true;
  if (CI) assert.fail('npm is not on PATH');
  t.skip('npm is not on PATH: skipped outside CI');
  return false;
}

function run(bin: string, args: string[]): SpawnSyncReturns<string> {
  return spawnSync(bin, args, { encoding: 'utf8', timeout: 30_000 });
}

/** The installed command as a user runs it: --help, version, check-config, serve and stop. */
async function exercise(bin: string, packageDir: string): Promise<void> {
  accessSync(bin, constants.X_OK);
  const help = run(bin, ['--help']);
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^usage: milter-policy <command>/);
  assert.match(help.stdout, /check-config FILE/);
  const version = run(bin, ['version']);
  assert.equal(version.stdout, `milter-policy ${pkg.version}\n`);
  const example = path.join(packageDir, 'examples', 'milter-policy.yaml');
  const check = run(bin, ['check-config', example]);
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.equal(check.stdout, `${example}: configuration is valid\n`);

  // Not the example's own listeners (TCP 8894 may be in use on this machine): a scratch socket.
  const dir = mkdtempSync(path.join(work, 'serve-'));
  const log = path.join(dir, 'log.jsonl');
  const config = path.join(dir, 'c.yaml');
  await writeFile(config, `listen: ["unix:${path.join(dir, 'milter.sock')}"]\nlog: { file: ${log} }\n`);
  const child = spawn(bin, ['serve', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    for (const end = Date.now() + 10_000; ;) {
      const text = await readFile(log, 'utf8').catch(() => '');
      if (text.includes('"event":"started"')) break;
      if (Date.now() > end || child.exitCode !== null) assert.fail(`not started: ${stderr}${text}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
  } finally {
    child.kill('SIGKILL');
  }
}

describe('install', () => {
  it('package.json builds before packing (a fresh clone has no dist/)', () => {
    assert.match(pkg.scripts?.['prepack'] ?? '', /npm run build/);
  });

  it('npm pack, then npm install -g --prefix <private> the tarball: the command works', async (t) => {
    if (!haveNpm(t)) return;
    // --ignore-scripts: `npm test` has just built dist/, and prepack's tsc would rewrite it under
    // the test files running in parallel. The test above checks that prepack builds.
    let t0 = Date.now();
    const packed = npm(['pack', '--json', '--ignore-scripts', '--pack-destination', work], PACKAGE_ROOT);
    assert.equal(packed.status, 0, packed.stderr);
    const [info] = JSON.parse(packed.stdout) as {
      filename: string;
      size: number;
      files: { path: string }[];
    }[];
    assert.ok(info !== undefined);
    const files = info.files.map((f) => f.path);
    const packMs = Date.now() - t0;
    for (const needed of [
      'package.json',
      'README.md',
      'dist/cli/main.js',
      'dist/daemon/serve.js',
      'dist/daemon/access-worker.js',
      'examples/milter-policy.yaml',
      'systemd/milter-policy.service',
      'systemd/milter-policy.sysusers',
      'systemd/milter-policy.tmpfiles',
      'docs/systemd.md',
    ])
      assert.ok(files.includes(needed), `the package has ${needed}`);
    const unneeded = files.filter((f) =>
      /^(test|bench|dist\/test|dist\/bench|dist\/e2e-results|node_modules|run)\/|\.ts$|tsbuildinfo/.test(f),
    );
    assert.deepEqual(unneeded, [], 'tests, benchmarks, sources and build state stay out of the package');

    const prefix = path.join(work, 'prefix');
    t0 = Date.now();
    const installed = npm(
      ['install', '--global', '--prefix', prefix, '--prefer-offline', path.join(work, info.filename)],
      work,
    );
    const installMs = Date.now() - t0;
    assert.equal(installed.status, 0, installed.stderr);
    const summary = `npm pack ${packMs} ms (${files.length} files, ${info.size} bytes), npm install -g ${installMs} ms`;
    t.diagnostic(summary);
    console.log(`# install: ${summary}`);
    await exercise(
      path.join(prefix, 'bin', 'milter-policy'),
      path.join(prefix, 'lib', 'node_modules', pkg.name),
    );
  });

  it('from a checkout: npm install -g --prefix <private> . links it, the command works', async (t) => {
    if (!haveNpm(t)) return;
    // `npm ci && npm run build` has been done for this checkout (the test command builds first).
    const prefix = path.join(work, 'prefix-checkout');
    const t0 = Date.now();
    const installed = npm(['install', '--global', '--prefix', prefix, '--prefer-offline', '.'], PACKAGE_ROOT);
    assert.equal(installed.status, 0, installed.stderr);
    t.diagnostic(`npm install -g . ${Date.now() - t0} ms`);
    const linked = path.join(prefix, 'lib', 'node_modules', pkg.name);
    assert.ok(lstatSync(linked).isSymbolicLink(), 'a folder install is a link to the checkout');
    await exercise(path.join(prefix, 'bin', 'milter-policy'), linked);
  });
});
