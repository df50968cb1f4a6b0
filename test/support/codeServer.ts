/**
 * Starts a real VS Code (code-server, from the .layerlens-host/ cache, on Node 24) for the
 * end-to-end tests: loopback only, a fresh user-data, extensions and XDG folder per run, in
 * its own process group so that stopping it stops its extension hosts too.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  cpSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const projectRoot = path.resolve(__dirname, '..', '..');
export const testResultsDir = path.join(projectRoot, 'test-results');

/** What `scripts/ensure-host.mjs --json` prints (the fields the tests use). */
export interface HostPaths {
  readonly node: string;
  readonly codeServerEntry: string;
  readonly chromium: string;
  readonly nodeVersion: string;
  readonly codeServerVersion: string;
  /** The flags every LayerLens run starts code-server with. */
  readonly codeServerFlags: readonly string[];
}

/** User settings for the test runs: no chat side bar or AI features taking up the window. */
const TEST_USER_SETTINGS = {
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'chat.disableAIFeatures': true,
  'workbench.startupEditor': 'none',
  'telemetry.telemetryLevel': 'off',
  // The theme most VS Code users see; the screenshots show the webview in it.
  'workbench.colorTheme': 'Default Dark Modern',
};

const STARTUP_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 5_000;
const LISTENING_LINE = /HTTP server listening on http:\/\/127\.0\.0\.1:(\d+)/;

/** Installs the host on first use (minutes), then answers at once from its marker. */
export function ensureHost(): HostPaths {
  const result = spawnSync(
    process.execPath,
    [path.join(projectRoot, 'scripts', 'ensure-host.mjs'), '--json'],
    {
      cwd: projectRoot,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  if (result.status !== 0) {
    throw new Error(
      `scripts/ensure-host.mjs failed (exit status ${result.status}); see its output above`,
    );
  }
  return JSON.parse(result.stdout) as HostPaths;
}

/**
 * The path of this machine's VSIX, packaged by `scripts/package-vsix.mjs` unless it is newer
 * than every source it is built from (`npm test` packages every platform's just before the
 * e2e tests).
 */
export function ensureVsix(): string {
  const result = spawnSync(
    process.execPath,
    [
      path.join(projectRoot, 'scripts', 'package-vsix.mjs'),
      '--target',
      `${process.platform}-${process.arch}`,
      '--if-stale',
    ],
    { cwd: projectRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  if (result.status !== 0)
    throw new Error(`scripts/package-vsix.mjs failed (exit status ${result.status})`);
  return result.stdout.trim().split('\n').at(-1)!;
}

export interface CodeServerOptions {
  /** Names the run's log files in test-results/. */
  readonly name: string;
  /** VSIX files to install before starting. */
  readonly extensions: readonly string[];
  readonly host?: HostPaths;
}

export interface CodeServer {
  /** Base URL, e.g. http://127.0.0.1:40123/ */
  readonly url: string;
  readonly userDataDir: string;
  /** URL that opens `folder` as the workspace. */
  folderUrl(folder: string): string;
  /** The extension host logs written so far (what the extension printed, its errors). */
  extensionHostLog(): string;
  /** Ids of the running processes started from `relativePath` inside an installed extension. */
  extensionProcesses(relativePath: string): number[];
  /** Stops the whole process group and copies its logs to test-results/. */
  stop(): Promise<void>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function filesUnder(folder: string): string[] {
  if (!existsSync(folder)) return [];
  return readdirSync(folder, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name));
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone.
  }
}

/** Processes whose command line names a script under `folder` ending in `relativePath` (Linux /proc). */
function processesRunning(folder: string, relativePath: string): number[] {
  const ids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let commandLine: string[];
    try {
      commandLine = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // The process ended while we looked.
    }
    const script = commandLine.find((argument) => argument.startsWith(folder + path.sep));
    if (script?.endsWith(path.sep + relativePath)) ids.push(Number(entry));
  }
  return ids;
}

export async function startCodeServer(options: CodeServerOptions): Promise<CodeServer> {
  const host = options.host ?? ensureHost();
  mkdirSync(testResultsDir, { recursive: true });
  const runDir = mkdtempSync(path.join(os.tmpdir(), `layerlens-${options.name}-`));
  const userDataDir = path.join(runDir, 'user-data');
  const extensionsDir = path.join(runDir, 'extensions');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    XDG_CONFIG_HOME: path.join(runDir, 'config'),
    XDG_DATA_HOME: path.join(runDir, 'data'),
    XDG_CACHE_HOME: path.join(runDir, 'cache'),
  };
  const codeServer = (args: string[]): string[] => [
    host.codeServerEntry,
    '--user-data-dir',
    userDataDir,
    '--extensions-dir',
    extensionsDir,
    ...args,
  ];

  mkdirSync(path.join(userDataDir, 'User'), { recursive: true });
  writeFileSync(
    path.join(userDataDir, 'User', 'settings.json'),
    `${JSON.stringify(TEST_USER_SETTINGS, null, 2)}\n`,
  );

  for (const vsix of options.extensions) {
    const install = spawnSync(host.node, codeServer(['--install-extension', vsix]), {
      env,
      encoding: 'utf8',
    });
    if (install.status !== 0 || !/successfully installed/i.test(install.stdout)) {
      throw new Error(
        `installing ${vsix} into code-server failed:\n${install.stdout}\n${install.stderr}`,
      );
    }
  }

  const logFile = path.join(testResultsDir, `code-server-${options.name}.log`);
  const log = createWriteStream(logFile);
  const child = spawn(
    host.node,
    codeServer(['--bind-addr', '127.0.0.1:0', ...host.codeServerFlags]),
    { cwd: runDir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const port = new Promise<number>((resolve, reject) => {
    const collect = (chunk: Buffer): void => {
      log.write(chunk);
      output += chunk.toString('utf8');
      const listening = LISTENING_LINE.exec(output);
      if (listening) resolve(Number(listening[1]));
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      reject(new Error(`code-server exited (${signal ?? code}) before listening:\n${output}`)),
    );
  });

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    signalGroup(child, 'SIGTERM');
    const deadline = Date.now() + STOP_GRACE_MS;
    while (isRunning(child) && Date.now() < deadline) await sleep(100);
    // The extension hosts share the group; make sure none outlives the run.
    signalGroup(child, 'SIGKILL');
    log.end();
    const logsDir = path.join(userDataDir, 'logs');
    if (existsSync(logsDir)) {
      cpSync(logsDir, path.join(testResultsDir, `code-server-${options.name}-logs`), {
        recursive: true,
      });
    }
    rmSync(runDir, { recursive: true, force: true, maxRetries: 3 });
  };

  try {
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `code-server did not listen within ${STARTUP_TIMEOUT_MS / 1000} s:\n${output}`,
            ),
          ),
        STARTUP_TIMEOUT_MS,
      );
    });
    const listeningPort = await Promise.race([port, timeout]).finally(() => clearTimeout(timer));
    const url = `http://127.0.0.1:${listeningPort}/`;
    for (;;) {
      const health = await fetch(new URL('healthz', url)).catch(() => undefined);
      if (health?.ok) break;
      if (!isRunning(child) || Date.now() > deadline) {
        throw new Error(`code-server did not answer ${url}healthz:\n${output}`);
      }
      await sleep(100);
    }
    return {
      url,
      userDataDir,
      folderUrl: (folder) => `${url}?folder=${encodeURIComponent(folder)}`,
      extensionProcesses: (relativePath) => processesRunning(extensionsDir, relativePath),
      extensionHostLog: () =>
        filesUnder(path.join(userDataDir, 'logs'))
          .filter((file) => /exthost/i.test(file) && file.endsWith('.log'))
          .map((file) => `--- ${path.relative(userDataDir, file)}\n${readFileSync(file, 'utf8')}`)
          .join('\n'),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
