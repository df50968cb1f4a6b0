/**
 * Drives the code-server workbench in Debian's Chromium through playwright-core: open a
 * folder, open files with Quick Open, find a webview's frame, save screenshots.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Frame, type Page } from 'playwright-core';
import { testResultsDir } from './codeServer';
import { CHROMIUM_ARGS, CHROMIUM_EXECUTABLE } from './chromium';

const WORKBENCH_TIMEOUT_MS = 60_000;
const QUICK_OPEN_TIMEOUT_MS = 20_000;
const FRAME_POLL_MS = 200;

export interface Workbench {
  readonly page: Page;
  /** Opens a workspace file by name through Quick Open (Ctrl+P, type, Enter). */
  openFile(fileName: string): Promise<void>;
  /** Runs a command by its label through the Command Palette (F1, type, Enter). */
  runCommand(label: string): Promise<void>;
  /** The first frame (page or nested webview iframe) whose document holds `selector`. */
  frameWith(selector: string, timeoutMs?: number): Promise<Frame>;
  /** Saves a screenshot of the whole window as test-results/<name>.png; returns its path. */
  screenshot(name: string): Promise<string>;
  /** Console lines of the page and all its frames, for failure messages. */
  consoleLog(): string;
  close(): Promise<void>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Opens the quick input with `shortcut`, types `query`, waits until the first row shows
 * `expected` (Enter picks the first row) and presses Enter.
 */
async function pickInQuickInput(
  page: Page,
  shortcut: string,
  query: string,
  expected: string,
): Promise<void> {
  await page.keyboard.press(shortcut);
  const input = page.locator('.quick-input-widget input.input');
  await input.waitFor({ state: 'visible', timeout: QUICK_OPEN_TIMEOUT_MS });
  await input.fill(query);
  await page
    .locator('.quick-input-list .monaco-list-row[data-index="0"]', { hasText: expected })
    .waitFor({ state: 'visible', timeout: QUICK_OPEN_TIMEOUT_MS });
  await page.keyboard.press('Enter');
  await input.waitFor({ state: 'hidden', timeout: QUICK_OPEN_TIMEOUT_MS });
}

/** Opens `url` (a code-server folder URL) and waits until the workbench is there. */
export async function openWorkbench(url: string, name: string): Promise<Workbench> {
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'layerlens-chromium-'));
  let context: BrowserContext | undefined;
  const consoleLines: string[] = [];
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_EXECUTABLE,
      headless: true,
      args: CHROMIUM_ARGS,
      // A common desktop size: wide enough for the table and the histogram side by side.
      viewport: { width: 1920, height: 1080 },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (message) => consoleLines.push(`[${message.type()}] ${message.text()}`));
    page.on('pageerror', (error) => consoleLines.push(`[pageerror] ${error.message}`));
    await page.goto(url, { timeout: WORKBENCH_TIMEOUT_MS, waitUntil: 'domcontentloaded' });
    await page
      .locator('.monaco-workbench')
      .waitFor({ state: 'visible', timeout: WORKBENCH_TIMEOUT_MS });
    // The explorer lists the folder once the workbench has connected to its server.
    await page
      .locator('.explorer-folders-view .monaco-list-row')
      .first()
      .waitFor({ state: 'visible', timeout: WORKBENCH_TIMEOUT_MS });
    const openedContext = context;

    return {
      page,
      openFile: (fileName) => pickInQuickInput(page, 'Control+P', fileName, fileName),
      runCommand: (label) => pickInQuickInput(page, 'F1', `>${label}`, label),
      async frameWith(selector, timeoutMs = 30_000) {
        const deadline = Date.now() + timeoutMs;
        while (Date.now() < deadline) {
          for (const frame of page.frames()) {
            const found = await frame.$(selector).catch(() => null);
            if (found) return frame;
          }
          await sleep(FRAME_POLL_MS);
        }
        const frames = page.frames().map((frame) => frame.url());
        throw new Error(
          `no frame holds ${selector} after ${timeoutMs} ms; frames:\n  ${frames.join('\n  ')}`,
        );
      },
      async screenshot(screenshotName) {
        mkdirSync(testResultsDir, { recursive: true });
        const file = path.join(testResultsDir, `${screenshotName}.png`);
        await page.screenshot({ path: file });
        return file;
      },
      consoleLog: () => consoleLines.join('\n'),
      async close() {
        mkdirSync(testResultsDir, { recursive: true });
        writeFileSync(
          path.join(testResultsDir, `browser-console-${name}.log`),
          `${consoleLines.join('\n')}\n`,
        );
        await openedContext.close();
        rmSync(userDataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await context?.close();
    rmSync(userDataDir, { recursive: true, force: true });
    throw error;
  }
}
