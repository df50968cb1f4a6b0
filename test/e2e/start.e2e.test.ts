/**
 * End to end: `npm start` (scripts/run-layerlens.mjs) in a real code-server and a real
 * browser. It is run twice — the first run installs the VSIX, the second (warm) finds
 * everything up to date — and each prints its time to the ready URL (printed here, not
 * asserted: timings belong in bench/). The page it prints opens on LayerLens content — the
 * example model in the LayerLens editor — and not on VS Code's Welcome page.
 *
 *   node --import tsx --test --test-concurrency=1 test/e2e/start.e2e.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ensureHost, ensureVsix, projectRoot } from '../support/codeServer';
import { openWorkbench } from '../support/vscodeBrowser';

const TEST_TIMEOUT_MS = 240_000;
const READY_TIMEOUT_MS = 90_000;
const EDITOR_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

interface Started {
  readonly child: ChildProcess;
  readonly url: string;
  /** What the script printed as its time to ready. */
  readonly readySeconds: number;
  /** Measured here, from spawning `npm start` to the URL. */
  readonly wallSeconds: number;
  readonly output: () => string;
}

/** Runs `npm start` on `port` with its state in `runDir` until it prints the URL. */
async function npmStart(port: number, runDir: string): Promise<Started> {
  const spawned = performance.now();
  const child = spawn('npm', ['start', '--silent'], {
    cwd: projectRoot,
    env: { ...process.env, LAYERLENS_PORT: String(port), LAYERLENS_RUN_DIR: runDir },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const url = /Open (http:\/\/\S+)/.exec(text)?.[1];
    const ready = /Ready in ([\d.]+) s/.exec(text)?.[1];
    if (url && ready) {
      return {
        child,
        url,
        readySeconds: Number(ready),
        wallSeconds: (performance.now() - spawned) / 1000,
        output: () => text,
      };
    }
    if (child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  stop(child);
  throw new Error(`npm start printed no ready URL:\n${text}`);
}

/** Stops `npm start` and everything it started (its own process group). */
function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  try {
    process.kill(-child.pid!, 'SIGTERM');
  } catch {
    // Already gone.
  }
  const kill = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }, STOP_TIMEOUT_MS);
  return exited.finally(() => clearTimeout(kill));
}

test(
  'npm start: warm start time printed; the first screen is the model in LayerLens, not the Welcome page',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    // Packaging is not what is timed: the VSIX is made up to date first, as a warm machine has it.
    ensureHost();
    ensureVsix();
    const runDir = mkdtempSync(path.join(os.tmpdir(), 'layerlens-e2e-start-'));
    try {
      const first = await npmStart(await freePort(), runDir);
      await stop(first.child);
      assert.match(first.output(), /installing layerlens-/);

      const port = await freePort();
      const warm = await npmStart(port, runDir);
      const load = os.loadavg().map((value) => value.toFixed(2));
      console.log(
        `npm start: first run ready in ${first.readySeconds} s (${first.wallSeconds.toFixed(1)} s wall); ` +
          `warm run ${warm.readySeconds} s (${warm.wallSeconds.toFixed(1)} s wall); load average ${load.join(' ')}`,
      );
      try {
        // Nothing rebuilt or reinstalled on the warm run.
        assert.match(warm.output(), /is installed already/);
        assert.doesNotMatch(warm.output(), /installing |webpack|vsce/);
        assert.ok(warm.url.startsWith(`http://127.0.0.1:${port}/?folder=`), warm.url);

        const workbench = await openWorkbench(warm.url, 'start');
        try {
          const tab = workbench.page.locator('.tabs-container .tab.active', {
            hasText: 'silero_vad_v5.onnx',
          });
          await tab.waitFor({ state: 'visible', timeout: EDITOR_TIMEOUT_MS });
          const frame = await workbench.frameWith('[data-testid="tensor-row"]', EDITOR_TIMEOUT_MS);
          assert.ok((await frame.locator('[data-testid="tensor-row"]').count()) > 0);
          const tabs = await workbench.page.locator('.tabs-container .tab').allTextContents();
          assert.ok(!tabs.some((title) => /Welcome/.test(title)), `tabs: ${tabs.join(', ')}`);
          // No git prompt for the example folder (git is off in its settings).
          const toasts = await workbench.page.locator('.notifications-toasts').allTextContents();
          assert.ok(
            !toasts.some((text) => /git/i.test(text)),
            `notifications: ${toasts.join(' | ')}`,
          );
          await workbench.screenshot('e2e-start-first-screen');
        } finally {
          await workbench.close();
        }
      } finally {
        await stop(warm.child);
      }
    } finally {
      rmSync(runDir, { recursive: true, force: true });
    }
  },
);
