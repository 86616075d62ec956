// The private world an MTA runs in: a mount namespace (unshare -m, plus -u for sendmail's
// hostname) with its own /etc/hosts (optionally naming more loopback clients) and
// /etc/resolv.conf (nameserver 127.0.0.1, where nothing listens, so no lookup ever leaves the
// machine or waits; or the testbed's own DNS server, dns-server.ts), and for sendmail a tmpfs
// /dev whose /dev/log is the testbed's syslog socket. Called by postfix.ts and sendmail.ts, which
// run their start commands through the shell script built here; nothing on the real machine is
// changed.
// Fails when unshare or mount fail: the script runs under `set -e` and its stderr is reported.

import { writeFileSync } from 'node:fs';

export interface NamespaceOptions {
  /** Directory for the private hosts/resolv.conf files. */
  dir: string;
  /** Names for 127.0.0.1 in the private /etc/hosts, besides localhost. */
  localNames: string[];
  /** More /etc/hosts lines (other loopback clients with names: PTR and forward-confirmed). */
  hosts?: readonly HostsEntry[];
  /** The resolver's address (default 127.0.0.1, where nothing answers: lookups fail at once). */
  nameserver?: string;
  /** Set the UTS hostname (needs `unshare -u`). */
  hostname?: string;
  /** Make /dev a small tmpfs with the usual character devices, /dev/log -> this socket. */
  devLog?: string;
  /** Directory bind-mounts, each only where the mount point already exists as a directory. */
  bindDirs?: Array<{ source: string; onto: string }>;
}

/** One /etc/hosts line: an address and its names (the first is the canonical one). */
export interface HostsEntry {
  address: string;
  names: readonly string[];
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Shell lines that set up the namespace; run them under `unshare -m[u] --propagation private`. */
export function namespaceSetup(opts: NamespaceOptions): string {
  const hosts = `${opts.dir}/hosts`;
  const resolv = `${opts.dir}/resolv.conf`;
  const extra = (opts.hosts ?? []).map((h) => `${h.address}\t${h.names.join(' ')}\n`).join('');
  writeFileSync(
    hosts,
    `127.0.0.1\tlocalhost ${opts.localNames.join(' ')}\n::1\tlocalhost ip6-localhost\n${extra}`,
  );
  writeFileSync(resolv, `nameserver ${opts.nameserver ?? '127.0.0.1'}\noptions timeout:1 attempts:1\n`);
  const lines = [
    'set -e',
    `mount --bind ${shellQuote(hosts)} /etc/hosts`,
    `mount --bind ${shellQuote(resolv)} /etc/resolv.conf`,
  ];
  for (const { source, onto } of opts.bindDirs ?? []) {
    lines.push(
      `if [ -d ${shellQuote(onto)} ]; then mount --bind ${shellQuote(source)} ${shellQuote(onto)}; fi`,
    );
  }
  if (opts.hostname !== undefined) lines.push(`hostname ${shellQuote(opts.hostname)}`);
  if (opts.devLog !== undefined) {
    lines.push(
      'mount -t tmpfs -o size=64k,mode=0755 tb-dev /dev',
      'mknod -m 666 /dev/null c 1 3',
      'mknod -m 666 /dev/zero c 1 5',
      'mknod -m 666 /dev/full c 1 7',
      'mknod -m 666 /dev/random c 1 8',
      'mknod -m 666 /dev/urandom c 1 9',
      'ln -s /proc/self/fd /dev/fd',
      `ln -s ${shellQuote(opts.devLog)} /dev/log`,
    );
  }
  return lines.join('\n');
}

export { shellQuote };
