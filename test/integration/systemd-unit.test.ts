// Ring (b): the files in systemd/ are checked by systemd itself and run against this CLI.
// - `systemd-analyze verify` reports nothing about the unit (as shipped, and with the documented
//   Postfix-chroot option switched on);
// - `systemd-analyze security --offline=yes` scores its exposure at most MAX_EXPOSURE;
// - the unit's ExecStart / ExecReload / KillSignal / RestartPreventExitStatus / TimeoutStopSec
//   agree with what the daemon does (start, reload, drain, start-up error code, drain deadline);
// - the sysusers and tmpfiles snippets create the user, group and directories in a scratch root.
// Without systemd-analyze (Debian package systemd, which .ci/run installs) the systemd checks are
// skipped, and under CI=true they fail.
import assert from 'node:assert/strict';
import type { ChildProcess, SpawnSyncReturns } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { describe, it } from 'node:test';
import { loadConfig } from '../../daemon/config.js';
import { PACKAGE_ROOT } from '../../daemon/version.js';

const UNIT_NAME = 'milter-policy.service';
const UNIT_TEXT = readFileSync(path.join(PACKAGE_ROOT, 'systemd', UNIT_NAME), 'utf8');
const SYSUSERS = path.join(PACKAGE_ROOT, 'systemd', 'milter-policy.sysusers');
const TMPFILES_TEXT = readFileSync(path.join(PACKAGE_ROOT, 'systemd', 'milter-policy.tmpfiles'), 'utf8');
const CLI = path.join(PACKAGE_ROOT, 'dist', 'cli', 'main.js');
/** Where the unit expects the command (`npm install -g --prefix /usr`) and its configuration. */
const INSTALLED_BIN = '/usr/bin/milter-policy';
const INSTALLED_CONFIG = '/etc/milter-policy/milter-policy.yaml';
/**
 * Measured with systemd 252 (Debian 12): 1.5 "OK". A hardening line removed from the unit raises
 * the score and fails here. Another systemd release weighs the checks differently: re-measure
 * there rather than raise this blindly.
 */
const MAX_EXPOSURE = 1.5;
const CI = process.env['CI'] === 'true';

/** An executable on PATH (or in the sbin directories, which a non-root PATH may lack). */
function which(name: string): string | null {
  const dirs = [...(process.env['PATH'] ?? '').split(':'), '/usr/bin', '/bin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const p = path.join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** The tool, or null after skipping the test (failing it under CI=true). */
function tool(t: TestContext, name: string): string | null {
  const p = which(name);
  if (p !== null) return p;
  if (CI) assert.fail(`${name} is not installed (Debian package systemd; .ci/run installs it)`);
  t.skip(`${name} is not installed (Debian package systemd): skipped outside CI`);
  return null;
}

/**
 * The unit as it would be installed from this checkout. `systemd-analyze verify` checks that
 * every Exec command exists and is executable, and /usr/bin/milter-policy exists only once the
 * package is installed there. So the command is replaced by what that npm bin runs — this node
 * and this checkout's dist/cli/main.js — rather than by a stub: the verified command lines are
 * then the ones the "command lines" test below executes, and nothing else in the unit changes.
 */
function localUnit(text: string): string {
  return text.replaceAll(INSTALLED_BIN, `${process.execPath} ${CLI}`);
}

/** The unit with the documented chroot option (ReadWritePaths=/var/spool/postfix/...) on. */
function withChrootOption(text: string): string {
  const on = text.replace(/^#(ReadWritePaths=\/var\/spool\/postfix\/milter-policy)$/m, '$1');
  assert.notEqual(on, text, 'the unit documents the chroot option as a commented ReadWritePaths= line');
  return on;
}

/** Values of the directives of one section, in order (comments and blank lines skipped). */
function directives(text: string, section: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const head = /^\[(.+)\]$/.exec(line);
    if (head !== null) {
      current = head[1] as string;
      continue;
    }
    if (current !== section) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq);
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

const SERVICE = directives(UNIT_TEXT, 'Service');
function one(key: string): string {
  const v = SERVICE.get(key);
  assert.ok(v !== undefined && v.length === 1, `exactly one ${key}= in [Service]`);
  return v[0] as string;
}

/** systemd time span, the forms a unit would use here: 45, 45s, 500ms, 2min. */
function timeSpanMs(v: string): number {
  const m = /^([0-9]+)\s*(ms|s|min|)$/.exec(v.trim());
  assert.ok(m !== null, `a time span: ${v}`);
  return Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'min' ? 60_000 : 1000);
}

function scratch(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

async function writeUnit(text: string): Promise<{ dir: string; file: string }> {
  const dir = scratch('mp-unit-');
  const file = path.join(dir, UNIT_NAME);
  await writeFile(file, text);
  return { dir, file };
}

/** The unit as shipped and with the documented chroot option on, both for this checkout. */
const VARIANTS: readonly (readonly [variant: string, text: string])[] = [
  ['as shipped', localUnit(UNIT_TEXT)],
  ['with the Postfix-chroot option', withChrootOption(localUnit(UNIT_TEXT))],
];

describe('systemd unit', () => {
  for (const [variant, text] of VARIANTS) {
    it(`systemd-analyze verify: nothing to say about the unit (${variant})`, async (t) => {
      const analyze = tool(t, 'systemd-analyze');
      if (analyze === null) return;
      const { dir, file } = await writeUnit(text);
      try {
        // --recursive-errors=no: only this unit's problems fail the verification, not those of
        // the host's units it is ordered against (network.target, postfix.service, ...).
        const r = spawnSync(analyze, ['verify', '--recursive-errors=no', file], { encoding: 'utf8' });
        const output = `${r.stdout}${r.stderr}`.trim();
        if (output !== '') t.diagnostic(output);
        // Unknown keys and bad values are only warnings (exit 0): no line may name the unit.
        const aboutUnit = output.split('\n').filter((l) => l.includes(UNIT_NAME));
        assert.deepEqual(aboutUnit, [], 'systemd-analyze verify output about the unit');
        assert.equal(r.status, 0, output);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it(`systemd-analyze security --offline=yes: exposure at most ${MAX_EXPOSURE}`, async (t) => {
    const analyze = tool(t, 'systemd-analyze');
    if (analyze === null) return;
    for (const [variant, text] of VARIANTS) {
      const { dir, file } = await writeUnit(text);
      try {
        const r: SpawnSyncReturns<string> = spawnSync(
          analyze,
          ['security', '--offline=yes', '--no-pager', file],
          {
            encoding: 'utf8',
          },
        );
        assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
        const m = /Overall exposure level for milter-policy\.service: ([0-9]+(?:\.[0-9]+)?) (\S+)/.exec(
          r.stdout,
        );
        assert.ok(m !== null, `an overall exposure line in:\n${r.stdout}`);
        const score = Number(m[1]);
        // The checks the unit does not pass, with their weight: what the score is made of.
        const open = r.stdout
          .split('\n')
          .filter((l) => l.startsWith('✗'))
          .map((l) => l.replace(/^✗\s+(\S+)\s.*?([0-9.]+)\s*$/, '$1 $2'));
        const summary = `exposure ${score} ${m[2]} (${variant}; at most ${MAX_EXPOSURE}); open: ${open.join(', ')}`;
        t.diagnostic(summary);
        console.log(`# systemd-analyze security: ${summary}`);
        assert.ok(score <= MAX_EXPOSURE, summary);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  it('its command lines run this CLI: start, reload (checked first), stop within TimeoutStopSec, exit 2 not restarted', async () => {
    // No sd_notify in the daemon, so no Type=notify (it would wait forever for READY=1).
    const notifies = readdirSync(path.join(PACKAGE_ROOT, 'daemon'))
      .filter((f) => f.endsWith('.ts'))
      .some((f) => readFileSync(path.join(PACKAGE_ROOT, 'daemon', f), 'utf8').includes('NOTIFY_SOCKET'));
    assert.equal(one('Type') === 'notify', notifies, 'Type=notify exactly when the daemon speaks sd_notify');

    // TimeoutStopSec above the default drain deadline, with room for the exit itself.
    const empty = path.join(scratch('mp-unit-'), 'empty.yaml');
    await writeFile(empty, '');
    const defaults = await loadConfig(empty);
    assert.ok(defaults.ok);
    const drainMs = defaults.config.shutdown.drain_timeout;
    const stopMs = timeSpanMs(one('TimeoutStopSec'));
    assert.ok(stopMs >= drainMs + 10_000, `TimeoutStopSec ${stopMs} ms vs drain_timeout ${drainMs} ms`);

    const dir = scratch('mp-unit-run-');
    const config = path.join(dir, 'milter-policy.yaml');
    const log = path.join(dir, 'log.jsonl');
    const good = `listen: ["unix:${path.join(dir, 'milter.sock')}"]\nlog: { file: ${log} }\nshutdown: { drain_timeout: 300ms }\n`;
    await writeFile(config, good);
    /** A command line of the unit, for this checkout and the scratch configuration. */
    const argv = (line: string, mainPid = 0): string[] =>
      line
        .split(/\s+/)
        .flatMap((w) => (w === INSTALLED_BIN ? [process.execPath, CLI] : [w]))
        .map((w) => (w === INSTALLED_CONFIG ? config : w === '$MAINPID' ? String(mainPid) : w));
    const events = async (): Promise<Record<string, unknown>[]> =>
      (await readFile(log, 'utf8').catch(() => ''))
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const waitFor = async (pred: (l: Record<string, unknown>) => boolean): Promise<void> => {
      for (const end = Date.now() + 5000; !(await events()).some(pred);) {
        if (Date.now() > end) throw new Error(`log line not seen in ${log}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    };

    const start = argv(one('ExecStart'));
    assert.deepEqual(start.slice(1), [CLI, 'serve', '--config', config]);
    const child: ChildProcess = spawn(start[0] as string, start.slice(1), { stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      await waitFor((l) => l.event === 'started');
      const reload = SERVICE.get('ExecReload') ?? [];
      assert.equal(reload.length, 2, 'ExecReload: check-config, then SIGHUP');
      // systemd runs the ExecReload lines in order and stops at the first that fails.
      const runReload = (): number => {
        for (const line of reload) {
          const [cmd, ...args] = argv(line, child.pid);
          const r = spawnSync(cmd as string, args, { encoding: 'utf8' });
          if (r.status !== 0) return r.status ?? -1;
        }
        return 0;
      };
      assert.equal(runReload(), 0);
      await waitFor((l) => l.event === 'reload' && l.ok === true);
      await writeFile(config, `${good}bogus: 1\n`);
      assert.equal(runReload(), 1, 'a broken file fails `systemctl reload` before any signal');
      assert.equal((await events()).filter((l) => l.event === 'reload').length, 1, 'no second reload');
      await writeFile(config, good);

      const signal = one('KillSignal') as NodeJS.Signals;
      const t0 = Date.now();
      child.kill(signal);
      assert.equal(await exited, 0, `${signal}: drain and exit 0`);
      assert.ok(Date.now() - t0 < stopMs);
    } finally {
      child.kill('SIGKILL');
    }

    // A start-up error exits with the code systemd is told not to restart on.
    await writeFile(config, 'listen: [nowhere]\n');
    const bad = spawnSync(start[0] as string, start.slice(1), { encoding: 'utf8' });
    assert.equal(one('Restart'), 'on-failure');
    assert.ok(
      one('RestartPreventExitStatus').split(/\s+/).includes(String(bad.status)),
      `RestartPreventExitStatus= has the start-up error code ${bad.status}`,
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('systemd-sysusers --dry-run accepts the sysusers snippet', (t) => {
    const sysusers = tool(t, 'systemd-sysusers');
    if (sysusers === null) return;
    const root = scratch('mp-root-');
    try {
      const r = spawnSync(sysusers, ['--dry-run', `--root=${root}`, SYSUSERS], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout + r.stderr, /Creating group 'milter-policy'/);
      assert.match(r.stdout + r.stderr, /Creating user 'milter-policy'/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('sysusers then tmpfiles in a scratch root: the user, /etc/milter-policy, and the chroot socket directory', async (t) => {
    const sysusers = tool(t, 'systemd-sysusers');
    const tmpfiles = tool(t, 'systemd-tmpfiles');
    if (sysusers === null || tmpfiles === null) return;
    if (process.getuid?.() !== 0) {
      t.skip('needs root: systemd-tmpfiles gives the directories their owners in the scratch root');
      return;
    }
    const root = scratch('mp-root-');
    try {
      await mkdir(path.join(root, 'etc'));
      const users = spawnSync(sysusers, [`--root=${root}`, SYSUSERS], { encoding: 'utf8' });
      assert.equal(users.status, 0, users.stderr);
      // What installing Postfix adds, for the chroot option's group.
      const pf = spawnSync(sysusers, [`--root=${root}`, '--inline', 'g postfix -'], { encoding: 'utf8' });
      assert.equal(pf.status, 0, pf.stderr);
      const passwd = await readFile(path.join(root, 'etc', 'passwd'), 'utf8');
      const group = await readFile(path.join(root, 'etc', 'group'), 'utf8');
      const user = /^milter-policy:x:([0-9]+):([0-9]+):[^:]*:\/:(\S+)$/m.exec(passwd);
      assert.ok(user !== null, passwd);
      const [uid, gid] = [Number(user[1]), Number(user[2])];
      assert.ok(uid < 1000, 'a system user');
      assert.match(user[3] as string, /nologin$/);
      assert.match(group, new RegExp(`^milter-policy:x:${gid}:`, 'm'));
      const postfixGid = Number(/^postfix:x:([0-9]+):/m.exec(group)?.[1]);

      // The snippet as shipped, then with the chroot option on (a superset of it).
      const chrootOn = TMPFILES_TEXT.replace(/^#(d\s+\/var\/spool\/postfix\/milter-policy\s.*)$/m, '$1');
      assert.notEqual(chrootOn, TMPFILES_TEXT, 'the tmpfiles snippet documents the chroot directory');
      const snippets: [name: string, text: string][] = [
        ['shipped.conf', TMPFILES_TEXT],
        ['chroot.conf', chrootOn],
      ];
      for (const [name, text] of snippets) {
        const file = path.join(root, name);
        await writeFile(file, text);
        const r: SpawnSyncReturns<string> = spawnSync(tmpfiles, [`--root=${root}`, '--create', file], {
          encoding: 'utf8',
        });
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stderr, '', `${name}: no warnings`);
      }
      const etc = statSync(path.join(root, 'etc', 'milter-policy'));
      assert.deepEqual([etc.mode & 0o7777, etc.uid, etc.gid], [0o750, 0, gid], '/etc/milter-policy');
      const spool = statSync(path.join(root, 'var', 'spool', 'postfix', 'milter-policy'));
      assert.deepEqual(
        [spool.mode & 0o7777, spool.uid, spool.gid],
        [0o2750, uid, postfixGid],
        '/var/spool/postfix/milter-policy',
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
