// The package version, read once from package.json (so `milter-policy version`, the added header
// and log lines agree with what npm installed).

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository / package root: dist/daemon/version.js -> ../.. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export const VERSION = readVersion();

/** The bundled example configuration `serve` uses when no --config is given. */
export const EMBEDDED_CONFIG = path.join(PACKAGE_ROOT, 'examples', 'milter-policy.yaml');
