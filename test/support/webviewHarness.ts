/**
 * Runs the LayerLens webview in headless Chromium the way VS Code hosts it: the same HTML
 * shell and strict CSP, an `acquireVsCodeApi()` defined before the bundle, and requests
 * answered from Node (through a Playwright binding) by the extension's own session code
 * (`ModelSession`: forwarding, cancelling, error mapping, reload when the file changes),
 * talking to the real server process.
 *
 * Every CSP violation, console error and uncaught page error is recorded, so a test can
 * fail on them.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, statSync, watch } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import { ModelSession, type Disposable } from '../../src/extension/modelSession';
import { LspMethods, type LspMethod, type SampleInputsParams } from '../../src/shared/lsp';
import type { HostToWebview, WebviewToHost } from '../../src/shared/protocol';
import { webviewDocument } from '../../src/extension/webviewDocument';
import { CHROMIUM_ARGS, CHROMIUM_EXECUTABLE } from './chromium';
import { LAYOUT_WORKER_BUNDLE } from '../../src/shared/graph';
import type { ServerProcess } from './serverProcess';
import { themeStylesheet, type Theme } from '../../src/shared/themeColors';

const projectRoot = path.resolve(__dirname, '..', '..');
export const testResultsDir = path.join(projectRoot, 'test-results');

/**
 * The bundle the harness serves. It is built apart from `dist/`: the development build
 * there uses webpack's eval-based source maps, which the webview's CSP (no 'unsafe-eval')
 * refuses, and other builds may be writing `dist/` at the same time.
 */
const BUNDLE_DIR = path.join(projectRoot, '.tmp', 'webview-test-bundle');
const BUNDLE_FILE = path.join(BUNDLE_DIR, 'main.js');
const BUNDLE_SOURCES = [
  path.join(projectRoot, 'webview-ui'),
  path.join(projectRoot, 'src', 'shared'),
  path.join(projectRoot, 'webpack.config.js'),
];
const STYLESHEET = path.join(projectRoot, 'media', 'layerlens.css');

/** Sends one request to the server; the session's `signal` aborts when the webview cancels. */
export type ServerRequest = (
  method: LspMethod<unknown, unknown>,
  params: object,
  signal: AbortSignal,
) => Promise<unknown>;

/** The model a page shows and the server that answers its requests. */
export interface ModelBackend {
  /** The real server process (test/support/serverProcess.ts). */
  readonly server: Pick<ServerProcess, 'request'>;
  /** Path of the model file (the session sends it as a `file:` URI, as the editor does). */
  readonly modelPath: string;
  /** The sample inputs chosen for the model, as Choose Sample Inputs… remembers them. */
  readonly sampleInputs?: SampleInputsParams;
  /**
   * Stands between the session and the server, e.g. to hold a request back; `forward`
   * sends it on. Without it, every request goes straight to the server.
   */
  readonly intercept?: (
    method: LspMethod<unknown, unknown>,
    params: object,
    signal: AbortSignal,
    forward: () => Promise<unknown>,
  ) => Promise<unknown>;
}

/** Calls `onChange` whenever the file is written or created (as VS Code's file watcher does). */
function watchFile(file: string, onChange: () => void): Disposable {
  const watcher = watch(path.dirname(file), (_event, name) => {
    if (name === path.basename(file)) onChange();
  });
  return { dispose: () => watcher.close() };
}

/** Newest modification time under `paths` (files and folders, recursively). */
function newestModification(paths: readonly string[]): number {
  let newest = 0;
  for (const entry of paths) {
    const info = statSync(entry);
    if (info.isDirectory()) {
      const children = readdirSync(entry).map((child) => path.join(entry, child));
      newest = Math.max(newest, newestModification(children));
    } else {
      newest = Math.max(newest, info.mtimeMs);
    }
  }
  return newest;
}

/** Builds the webview bundle unless it is newer than all of its sources; returns its path. */
export function ensureWebviewBundle(): string {
  let builtAt = 0;
  try {
    builtAt = statSync(BUNDLE_FILE).mtimeMs;
  } catch {
    builtAt = 0;
  }
  if (builtAt > newestModification(BUNDLE_SOURCES)) return BUNDLE_FILE;
  execFileSync(
    process.execPath,
    [
      path.join(projectRoot, 'node_modules', 'webpack-cli', 'bin', 'cli.js'),
      '--mode',
      'development',
      '--config-name',
      'webview',
      '--no-devtool',
      '--output-path',
      BUNDLE_DIR,
    ],
    { cwd: projectRoot, stdio: 'pipe' },
  );
  return BUNDLE_FILE;
}

export { themeStylesheet };
export type { Theme };

/** The page the extension generates (same builder), plus the harness's own bootstrap script. */
function webviewPage(origin: string, nonce: string, savedState: unknown, theme: Theme): string {
  // Stands in for VS Code's own webview host script: the API object, and a report of every
  // CSP violation (the console shows them too, but this also catches them in workers).
  const bootstrap = `
    (() => {
      let state = ${JSON.stringify(savedState ?? null)} ?? undefined;
      let acquired = false;
      document.addEventListener('securitypolicyviolation', (event) => {
        window.__layerlensViolation(event.violatedDirective + ' blocked ' + (event.blockedURI || 'inline') +
          ' at ' + event.sourceFile + ':' + event.lineNumber);
      });
      window.acquireVsCodeApi = () => {
        if (acquired) throw new Error('acquireVsCodeApi may only be called once');
        acquired = true;
        return Object.freeze({
          postMessage: (message) => { window.__layerlensPost(message); },
          getState: () => state,
          setState: (next) => { state = next; window.__layerlensSetState(next); return next; },
        });
      };
    })();`;
  return webviewDocument({
    cspSource: origin,
    nonce,
    stylesheets: [`${origin}/theme/${theme}-modern.css`, `${origin}/media/layerlens.css`],
    scripts: [{ inline: bootstrap }, { src: `${origin}/dist/webview/main.js` }],
    bodyAttributes: `class="vscode-${theme}" data-vscode-theme-kind="vscode-${theme}"`,
  });
}

export interface OpenOptions {
  /** What `getState()` returns at start, as VS Code keeps it across reloads of a panel. */
  readonly savedState?: unknown;
  readonly viewport?: { readonly width: number; readonly height: number };
  /** VS Code's Dark Modern (the default) or Light Modern colours. */
  readonly theme?: Theme;
}

/** One open webview page and what it did. */
export interface WebviewSession {
  readonly page: Page;
  /** Every message the webview posted, in order. */
  readonly posted: readonly WebviewToHost[];
  /** Every message the host sent the webview (responses, reloads…), in order. */
  readonly received: readonly HostToWebview[];
  /**
   * The next message of this type the webview posts. Call it before the action that posts
   * it: a click resolves before the message has crossed to the test, and background
   * requests may come in between.
   */
  nextPosted<T extends WebviewToHost['type']>(
    type: T,
    timeoutMs?: number,
  ): Promise<Extract<WebviewToHost, { type: T }>>;
  /** The last state the webview saved with `setState`. */
  readonly savedState: unknown;
  /** CSP violations, console errors and uncaught exceptions. */
  readonly problems: readonly string[];
  /** Most `tensorStats` requests in flight at the same time. */
  readonly maxStatsInFlight: number;
  /** Send a host message (e.g. `{ type: 'reload' }`) to the webview. */
  postToWebview(message: HostToWebview): Promise<void>;
  /** Saves a screenshot as test-results/webview-<name>.png; returns its path. */
  screenshot(name: string): Promise<string>;
  close(): Promise<void>;
}

/** A browser and a loopback server for webview pages; close it when the tests are done. */
export class WebviewHarness {
  private constructor(
    private readonly browser: Browser,
    private readonly server: Server,
    readonly origin: string,
    private readonly pages: Map<string, string>,
  ) {}

  static async start(): Promise<WebviewHarness> {
    const bundle = ensureWebviewBundle();
    const pages = new Map<string, string>();
    const server = createServer((request, response) => {
      const url = new URL(request.url ?? '/', 'http://127.0.0.1');
      const reply = (status: number, type: string, body: string | Buffer): void => {
        response.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
        response.end(body);
      };
      if (url.pathname === '/dist/webview/main.js')
        return reply(200, 'text/javascript', readFileSync(bundle));
      if (url.pathname === `/dist/webview/${LAYOUT_WORKER_BUNDLE}`)
        return reply(
          200,
          'text/javascript',
          readFileSync(path.join(BUNDLE_DIR, LAYOUT_WORKER_BUNDLE)),
        );
      if (url.pathname === '/media/layerlens.css')
        return reply(200, 'text/css', readFileSync(STYLESHEET));
      if (url.pathname === '/theme/dark-modern.css')
        return reply(200, 'text/css', themeStylesheet('dark'));
      if (url.pathname === '/theme/light-modern.css')
        return reply(200, 'text/css', themeStylesheet('light'));
      const page = pages.get(url.pathname);
      if (page !== undefined) return reply(200, 'text/html; charset=utf-8', page);
      if (url.pathname === '/favicon.ico') return reply(204, 'image/x-icon', '');
      return reply(404, 'text/plain', 'not found');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const browser = await chromium.launch({
      executablePath: CHROMIUM_EXECUTABLE,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    return new WebviewHarness(browser, server, `http://127.0.0.1:${port}`, pages);
  }

  /**
   * Opens a webview page whose requests the extension's session code answers from the
   * backend's server; resolves once the bundle has loaded.
   */
  async open(backend: ModelBackend, options: OpenOptions = {}): Promise<WebviewSession> {
    const pagePath = `/webview-${randomBytes(6).toString('hex')}.html`;
    this.pages.set(
      pagePath,
      webviewPage(
        this.origin,
        randomBytes(16).toString('base64'),
        options.savedState,
        options.theme ?? 'dark',
      ),
    );
    const context = await this.browser.newContext({
      viewport: options.viewport ?? { width: 1400, height: 1000 },
    });
    const page = await context.newPage();

    const posted: WebviewToHost[] = [];
    const received: HostToWebview[] = [];
    const waiters = new Set<(message: WebviewToHost) => boolean>();
    const problems: string[] = [];
    let savedState: unknown = options.savedState;
    let statsInFlight = 0;
    let maxStatsInFlight = 0;

    const deliver = async (message: HostToWebview): Promise<void> => {
      if (page.isClosed()) return;
      received.push(message);
      // A string, not a function: this file is compiled without the DOM's types.
      await page
        .evaluate(
          `window.dispatchEvent(new MessageEvent('message', { data: ${JSON.stringify(message)} }))`,
        )
        .catch((error: unknown) => {
          if (!page.isClosed()) throw error;
        });
    };

    const send: ServerRequest = async (method, params, signal) => {
      const cancellation = new CancellationTokenSource();
      signal.addEventListener('abort', () => cancellation.cancel(), { once: true });
      const isStats = method === LspMethods.tensorStats;
      if (isStats) maxStatsInFlight = Math.max(maxStatsInFlight, ++statsInFlight);
      const forward = () => backend.server.request(method, params, cancellation.token);
      try {
        return await (backend.intercept
          ? backend.intercept(method, params, signal, forward)
          : forward());
      } finally {
        if (isStats) statsInFlight--;
        cancellation.dispose();
      }
    };
    const modelSession = new ModelSession({
      uri: pathToFileURL(backend.modelPath).href,
      post: (message) => {
        deliver(message).catch((error: unknown) => problems.push(`harness: ${String(error)}`));
      },
      sendRequest: send,
      sampleInputs: () => backend.sampleInputs ?? {},
      watchModelFile: (onChange) => watchFile(backend.modelPath, onChange),
    });

    await page.exposeBinding('__layerlensPost', (_source, message: WebviewToHost) => {
      posted.push(message);
      for (const waiter of waiters) if (waiter(message)) waiters.delete(waiter);
      modelSession.onMessage(message);
    });
    await page.exposeBinding('__layerlensSetState', (_source, state: unknown) => {
      savedState = state;
    });
    await page.exposeBinding('__layerlensViolation', (_source, violation: string) => {
      problems.push(`CSP violation: ${violation}`);
    });
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));

    await page.goto(`${this.origin}${pagePath}`);

    const pages = this.pages;
    const session: WebviewSession = {
      page,
      posted,
      received,
      get savedState() {
        return savedState;
      },
      problems,
      get maxStatsInFlight() {
        return maxStatsInFlight;
      },
      nextPosted<T extends WebviewToHost['type']>(type: T, timeoutMs = 10_000) {
        return new Promise<Extract<WebviewToHost, { type: T }>>((resolve, reject) => {
          const timer = setTimeout(() => {
            waiters.delete(waiter);
            reject(new Error(`the webview posted no '${type}' message within ${timeoutMs} ms`));
          }, timeoutMs);
          const waiter = (message: WebviewToHost): boolean => {
            if (message.type !== type) return false;
            clearTimeout(timer);
            resolve(message as Extract<WebviewToHost, { type: T }>);
            return true;
          };
          waiters.add(waiter);
        });
      },
      postToWebview: deliver,
      async screenshot(name) {
        mkdirSync(testResultsDir, { recursive: true });
        const file = path.join(testResultsDir, `webview-${name}.png`);
        await page.screenshot({ path: file, fullPage: true });
        return file;
      },
      async close() {
        modelSession.dispose();
        await context.close();
        pages.delete(pagePath);
      },
    };
    return session;
  }

  async close(): Promise<void> {
    await this.browser.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
