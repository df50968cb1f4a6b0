#!/usr/bin/env node
// `npm start`: runs LayerLens in a real VS Code (code-server) in your browser, with the
// example workspace open. Installs the host on first use, packages this platform's VSIX
// when its sources changed, installs it,
// serves on 127.0.0.1:${LAYERLENS_PORT:-8080} and stays in the foreground until Ctrl+C.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ensureHost } from './ensure-host.mjs';
import { prepareExampleWorkspace } from './example-workspace.mjs';
import { ensureHostVsix } from './package-vsix.mjs';

const DEFAULT_PORT = 8080;
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

async function main() {
  const port = parsePort(process.env.LAYERLENS_PORT);
  const host = await ensureHost({ log });
  const vsix = ensureHostVsix({ log });
  const { workspace } = prepareExampleWorkspace({ log: (line) => log(`example: ${line}`) });

  const userDataDir = path.join(host.runDir, 'user-data');
  const extensionsDir = path.join(host.runDir, 'extensions');
  const env = {
    ...process.env,
    XDG_CONFIG_HOME: path.join(host.runDir, 'config'),
    XDG_DATA_HOME: path.join(host.runDir, 'data'),
    XDG_CACHE_HOME: path.join(host.runDir, 'cache'),
  };
  const codeServerArgs = (args) => [
    host.codeServerEntry,
    '--user-data-dir',
    userDataDir,
    '--extensions-dir',
    extensionsDir,
    ...args,
  ];

  // User data persists between runs (layout, settings); only a first run gets these settings.
  const settingsFile = path.join(userDataDir, 'User', 'settings.json');
  if (!existsSync(settingsFile)) {
    mkdirSync(path.dirname(settingsFile), { recursive: true });
    writeFileSync(settingsFile, `${JSON.stringify(INITIAL_USER_SETTINGS, null, 2)}\n`);
  }

  // A fresh extensions folder: the VSIX just built is the one that runs, even at the same version.
  rmSync(extensionsDir, { recursive: true, force: true });
  mkdirSync(extensionsDir, { recursive: true });
  log(`installing ${path.basename(vsix)}`);
  const install = spawnSync(host.node, codeServerArgs(['--install-extension', vsix]), {
    env,
    encoding: 'utf8',
  });
  if (install.status !== 0) {
    throw new Error(`code-server --install-extension failed:\n${install.stdout}${install.stderr}`);
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

  const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const health = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
    if (health?.ok) {
      console.log(`\n  LayerLens is running in VS Code (code-server ${host.codeServerVersion}).\n`);
      console.log(`  Open ${url}\n`);
      console.log('  Open a file under models/ to see it in LayerLens. Press Ctrl+C to stop.\n');
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  stop('SIGKILL');
  throw new Error(`code-server did not answer on port ${port} within 60 s (is the port in use?)`);
}

main().catch((error) => {
  console.error(`run-layerlens: FAILED: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
});
