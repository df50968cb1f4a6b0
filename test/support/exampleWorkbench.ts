/**
 * The set-up every end-to-end test file shares: a copy of the example workspace, a
 * code-server with the packaged VSIX installed, and a browser on the workbench.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import {
  ensureHost,
  ensureVsix,
  projectRoot,
  startCodeServer,
  type CodeServer,
} from './codeServer';
import type { Page } from 'playwright-core';
import { openWorkbench, type Workbench } from './vscodeBrowser';

/** Installing the host and building the VSIX on first use takes minutes. */
export const E2E_SETUP_TIMEOUT_MS = 10 * 60_000;

export interface ExampleWorkbench {
  readonly server: CodeServer;
  readonly workbench: Workbench;
  /** The workspace copy the workbench has open. */
  readonly workspace: string;
  close(): Promise<void>;
}

/**
 * Opens a fresh copy of the example workspace in a real VS Code; `name` labels its files.
 * `prepare` adds files to the copy before VS Code starts (so that it knows them from the
 * first scan).
 */
/**
 * The tests open their own files: the example's `layerlens.openOnStartup` (which `npm start`
 * relies on, tested in start.e2e.test.ts) would put another model's editor in front of them.
 */
function withoutOpenOnStartup(workspace: string): void {
  const file = path.join(workspace, '.vscode', 'settings.json');
  if (!existsSync(file)) return;
  const settings = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  delete settings['layerlens.openOnStartup'];
  writeFileSync(file, `${JSON.stringify(settings, null, 2)}\n`);
}

export async function openExampleWorkbench(
  name: string,
  prepare?: (workspace: string) => Promise<void>,
): Promise<ExampleWorkbench> {
  const host = ensureHost();
  const vsix = ensureVsix();
  const workspace = mkdtempSync(path.join(os.tmpdir(), `layerlens-e2e-${name}-`));
  const removeWorkspace = () => rmSync(workspace, { recursive: true, force: true });
  let server: CodeServer | undefined;
  try {
    const copy = spawnSync(
      process.execPath,
      [path.join(projectRoot, 'scripts', 'example-workspace.mjs'), '--copy', workspace],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    assert.equal(copy.status, 0, 'scripts/example-workspace.mjs --copy failed');
    withoutOpenOnStartup(workspace);
    await prepare?.(workspace);
    server = await startCodeServer({ name, extensions: [vsix], host });
    const workbench = await openWorkbench(server.folderUrl(workspace), name);
    const started = server;
    return {
      server: started,
      workbench,
      workspace,
      async close() {
        await workbench.close();
        await started.stop();
        removeWorkspace();
      },
    };
  } catch (error) {
    await server?.stop();
    removeWorkspace();
    throw error;
  }
}

/**
 * Opens an example workbench before the file's tests and closes it after them. The
 * returned function gives it to a test, failing the test when the set-up did not start it.
 */
export function useExampleWorkbench(
  name: string,
  prepare?: (workspace: string) => Promise<void>,
): () => ExampleWorkbench {
  let example: ExampleWorkbench | undefined;
  before(
    async () => {
      example = await openExampleWorkbench(name, prepare);
    },
    { timeout: E2E_SETUP_TIMEOUT_MS },
  );
  after(() => example?.close());
  return () => {
    assert.ok(example, 'code-server and the browser did not start');
    return example;
  };
}

/** Runs `body`; on failure adds a screenshot (`<name>-failure`) and the end of the extension host's log. */
export async function withDiagnostics(
  { server, workbench }: ExampleWorkbench,
  name: string,
  body: () => Promise<void>,
): Promise<void> {
  try {
    await body();
  } catch (error) {
    const screenshot = await workbench.screenshot(`${name}-failure`).catch(() => 'none');
    const log = server.extensionHostLog().split('\n').slice(-60).join('\n');
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}\n\nscreenshot: ${screenshot}\n\nextension host log (end):\n${log}`,
      { cause: error },
    );
  }
}

/** Types `query` into the open quick pick until its first row shows `expected`, then picks it. */
export async function pickQuickItem(
  page: Page,
  query: string,
  expected: string,
  timeoutMs: number,
): Promise<void> {
  const input = page.locator('.quick-input-widget input.input');
  await input.waitFor({ state: 'visible', timeout: timeoutMs });
  await input.fill(query);
  await page
    .locator('.quick-input-list .monaco-list-row[data-index="0"]', { hasText: expected })
    .waitFor({ state: 'visible', timeout: timeoutMs });
  await page.keyboard.press('Enter');
}

/** LayerLens: Plan Compression… from the palette, with `target` typed into its input box. */
export async function startPlanCompression(
  page: Page,
  target: string,
  timeoutMs: number,
): Promise<void> {
  // Not workbench.runCommand: the command's own input box follows the palette at once.
  await page.keyboard.press('F1');
  const palette = page.locator('.quick-input-widget input.input');
  await palette.waitFor({ state: 'visible', timeout: timeoutMs });
  await palette.fill('>LayerLens: Plan Compression');
  await page
    .locator('.quick-input-list .monaco-list-row[data-index="0"]', {
      hasText: 'Plan Compression…',
    })
    .waitFor({ state: 'visible', timeout: timeoutMs });
  await page.keyboard.press('Enter');
  const input = page.locator('.quick-input-widget input[aria-label^="Plan the compression"]');
  await input.waitFor({ state: 'visible', timeout: timeoutMs });
  await input.fill(target);
  await page.keyboard.press('Enter');
}
