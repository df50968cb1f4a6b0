#!/usr/bin/env node
// `npm start`: runs LayerLens in a real VS Code (code-server) in your browser, with the
// example workspace open on a model in the LayerLens editor. Installs the host on first use,
// packages this platform's VSIX only when its sources changed, installs it only when it is
// not the one installed, serves on 127.0.0.1:${LAYERLENS_PORT:-8080}, prints the time it
// took to be ready and stays in the foreground until Ctrl+C.
// LAYERLENS_RUN_DIR: another folder for code-server's state (the end-to-end test uses one).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ensureHost } from './ensure-host.mjs';
import { prepareExampleWorkspace } from './example-workspace.mjs';
import { ensureHostVsix } from './package-vsix.mjs';

const DEFAULT_PORT = 8080;
/** The model the browser opens on, in the example workspace's models/ folder. */
export const START_MODEL = 'silero_vad_v5.onnx';
/** Written into the extensions folder: which VSIX is installed there (path, size, time). */
const INSTALLED_MARKER = '.layerlens-installed.json';
/** First-run user settings: the model editor gets the room, not the chat side bar. */
const INITIAL_USER_SETTINGS = {
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'chat.disableAIFeatures': true,
  'telemetry.telemetryLevel': 'off',
};

function log(line) {
  console.error(`run-layerlens: ${line}`);
}

function parsePort(value) {
  const port = Number(value ?? DEFAULT_PORT);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`LAYERLENS_PORT must be a port number (1-65535), got "${value}"`);
  }
  return port;
}

/** What identifies a built VSIX: a rebuilt one differs in time or size. */
function vsixStamp(vsix) {
  const { size, mtimeMs } = statSync(vsix);
  return { vsix, size, mtimeMs };
}

function installedStamp(extensionsDir) {
  try {
    return JSON.parse(readFileSync(path.join(extensionsDir, INSTALLED_MARKER), 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * User settings: a first run writes INITIAL_USER_SETTINGS; later runs keep the user's file
 * as it is (layout, theme), only adding settings it does not have when it is plain JSON.
 */
function ensureUserSettings(settingsFile) {
  mkdirSync(path.dirname(settingsFile), { recursive: true });
  let current = {};
  if (existsSync(settingsFile)) {
    try {
      current = JSON.parse(readFileSync(settingsFile, 'utf8'));
    } catch {
      return; // Comments or trailing commas: the user edits it; leave it alone.
    }
  }
  const missing = Object.entries(INITIAL_USER_SETTINGS).filter(([key]) => !(key in current));
  if (missing.length === 0) return;
  writeFileSync(
    settingsFile,
    `${JSON.stringify({ ...current, ...Object.fromEntries(missing) }, null, 2)}\n`,
  );
}

/**
 * The page to open: the example workspace, whose settings (`layerlens.openOnStartup`) open
 * START_MODEL in the LayerLens editor. (Opening it through the URL would pick the text
 * editor: a file opened with the page is resolved before extensions register their editors.)
 */
export function startUrl(port, workspace) {
  return `http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`;
}

async function main() {
  const started = performance.now();
  const port = parsePort(process.env.LAYERLENS_PORT);
  const host = await ensureHost({ log });
  const vsix = ensureHostVsix({ log });
  const { workspace } = prepareExampleWorkspace({ log: (line) => log(`example: ${line}`) });

  const runDir = process.env.LAYERLENS_RUN_DIR
    ? path.resolve(process.env.LAYERLENS_RUN_DIR)
    : host.runDir;
  const userDataDir = path.join(runDir, 'user-data');
  const extensionsDir = path.join(runDir, 'extensions');
  const env = {
    ...process.env,
    XDG_CONFIG_HOME: path.join(runDir, 'config'),
    XDG_DATA_HOME: path.join(runDir, 'data'),
    XDG_CACHE_HOME: path.join(runDir, 'cache'),
  };
  const codeServerArgs = (args) => [
    host.codeServerEntry,
    '--user-data-dir',
    userDataDir,
    '--extensions-dir',
    extensionsDir,
    ...args,
  ];

  // User data persists between runs (layout, settings).
  ensureUserSettings(path.join(userDataDir, 'User', 'settings.json'));

  // A fresh extensions folder whenever the VSIX changed: the one just built is the one that
  // runs, even at the same version. Unchanged: nothing to install (the warm start).
  const stamp = vsixStamp(vsix);
  const installed = installedStamp(extensionsDir);
  if (JSON.stringify(installed) === JSON.stringify(stamp)) {
    log(`${path.basename(vsix)} is installed already`);
  } else {
    rmSync(extensionsDir, { recursive: true, force: true });
    mkdirSync(extensionsDir, { recursive: true });
    log(`installing ${path.basename(vsix)}`);
    const install = spawnSync(host.node, codeServerArgs(['--install-extension', vsix]), {
      env,
      encoding: 'utf8',
    });
    if (install.status !== 0) {
      throw new Error(
        `code-server --install-extension failed:\n${install.stdout}${install.stderr}`,
      );
    }
    writeFileSync(path.join(extensionsDir, INSTALLED_MARKER), `${JSON.stringify(stamp)}\n`);
  }

  const codeServer = spawn(
    host.node,
    codeServerArgs(['--bind-addr', `127.0.0.1:${port}`, ...host.codeServerFlags, workspace]),
    // Its own process group: stopping LayerLens stops code-server and its extension hosts.
    { env, detached: true, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const stop = (signal) => {
    try {
      process.kill(-codeServer.pid, signal);
    } catch {
      // Already gone.
    }
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      log('stopping code-server');
      stop('SIGTERM');
      setTimeout(() => stop('SIGKILL'), 5000).unref();
    });
  }
  codeServer.on('exit', (code, signal) => {
    stop('SIGKILL');
    log(`code-server exited (${signal ?? code})`);
    process.exit(code ?? 0);
  });

  const url = startUrl(port, workspace);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const health = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
    if (health?.ok) {
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      console.log(`\n  LayerLens is running in VS Code (code-server ${host.codeServerVersion}).\n`);
      console.log(`  Open ${url}\n`);
      console.log(
        `  Ready in ${seconds} s. It opens on models/${START_MODEL} in the LayerLens editor;`,
      );
      console.log('  "Get started with LayerLens" is under Help > Welcome > Walkthroughs.');
      console.log('  Press Ctrl+C to stop.\n');
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  stop('SIGKILL');
  throw new Error(`code-server did not answer on port ${port} within 60 s (is the port in use?)`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(`run-layerlens: FAILED: ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  });
}
