/**
 * Runs the LayerLens webview in headless Chromium the way VS Code hosts it: the same HTML
 * shell and strict CSP, an `acquireVsCodeApi()` defined before the bundle, and requests
 * answered from Node (through a Playwright binding) by a handler the test supplies —
 * normally the real server core, `ModelService`.
 *
 * Every CSP violation, console error and uncaught page error is recorded, so a test can
 * fail on them.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { setMaxListeners } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { ModelService } from '../../src/server/modelService';
import { AnalysisService } from '../../src/server/analysisService';
import { ModelFileError } from '../../src/server/formats/types';
import { LosslessService } from '../../src/server/lossless/service';
import { computeSensitivity } from '../../src/server/sensitivity';
import { MAX_STATS_BATCH } from '../../src/shared/limits';
import type {
  HostToWebview,
  RequestError,
  WebviewRequestName,
  WebviewRequests,
  WebviewToHost,
} from '../../src/shared/protocol';
import { webviewDocument } from '../../src/extension/webviewDocument';
import { CHROMIUM_ARGS, CHROMIUM_EXECUTABLE } from './chromium';

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

/** A webview request as the handler sees it: the name, with the params that go with it. */
export type WebviewRequest = {
  [N in WebviewRequestName]: { readonly name: N; readonly params: WebviewRequests[N]['params'] };
}[WebviewRequestName];

/** Answers one request; rejects to send an error. `signal` aborts when the webview cancels. */
export type RequestHandler = (request: WebviewRequest, signal: AbortSignal) => Promise<unknown>;

/** Answers requests for one model file from the real server core, as the extension does through the server. */
export function modelServiceHandler(
  service: ModelService,
  modelPath: string,
  analysis = new AnalysisService(service),
): RequestHandler {
  return (request, signal) => {
    switch (request.name) {
      case 'summary':
        return service.openModel(modelPath);
      case 'tensors':
        return service.tensors(modelPath, request.params.offset, request.params.limit);
      case 'tensorStats':
        return service.tensorStats(modelPath, request.params.indices, signal);
      case 'spectrum':
        return analysis.spectrum(modelPath, request.params.index, request.params.options, signal);
      case 'heatmapInfo':
        return analysis.heatmapInfo(modelPath, request.params.index, request.params.layer, signal);
      case 'heatmapTile': {
        const { index, layer, level, tileX, tileY } = request.params;
        return analysis.heatmapTile(modelPath, index, layer, level, tileX, tileY, signal);
      }
      case 'compressibility':
        return losslessFor(service).compressibility(modelPath, request.params.indices, signal);
      case 'deltaStats':
        return losslessFor(service).deltaStats(modelPath, request.params.indices);
      case 'sensitivity':
        return computeSensitivity(modelPath, request.params.request, { signal });
    }
  };
}

/** One lossless service per model service (its idle workers do not keep the process alive). */
const losslessServices = new WeakMap<ModelService, LosslessService>();

function losslessFor(service: ModelService): LosslessService {
  let lossless = losslessServices.get(service);
  if (!lossless) {
    lossless = new LosslessService(service, 1);
    losslessServices.set(service, lossless);
  }
  return lossless;
}

function toRequestError(error: unknown, signal: AbortSignal): RequestError {
  if (signal.aborted) return { message: 'cancelled', cancelled: true };
  if (error instanceof ModelFileError)
    return { message: error.message, file: error.file, problem: error.problem };
  return { message: error instanceof Error ? error.message : String(error) };
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

/**
 * A plausible subset of VS Code's Dark Modern theme colours, served as a stylesheet
 * (VS Code injects the real ones itself; the CSP would refuse an inline style here).
 */
const DARK_MODERN_THEME: Readonly<Record<string, string>> = {
  'font-family': "system-ui, 'Ubuntu', 'Droid Sans', sans-serif",
  'font-size': '13px',
  'font-weight': 'normal',
  'editor-font-family': "'Droid Sans Mono', 'monospace', monospace",
  foreground: '#cccccc',
  'editor-background': '#1f1f1f',
  'editor-foreground': '#cccccc',
  descriptionForeground: '#9d9d9d',
  errorForeground: '#f85149',
  focusBorder: '#0078d4',
  'panel-border': '#2b2b2b',
  'widget-border': '#313131',
  'sideBar-background': '#181818',
  'editorWidget-background': '#202020',
  'badge-background': '#616161',
  'badge-foreground': '#f8f8f8',
  'button-background': '#0078d4',
  'button-foreground': '#ffffff',
  'button-hoverBackground': '#026ec1',
  'button-border': '#ffffff12',
  'button-secondaryBackground': '#313131',
  'button-secondaryForeground': '#cccccc',
  'button-secondaryHoverBackground': '#3c3c3c',
  'input-background': '#313131',
  'input-foreground': '#cccccc',
  'input-border': '#3c3c3c',
  'input-placeholderForeground': '#989898',
  'list-activeSelectionBackground': '#04395e',
  'list-activeSelectionForeground': '#ffffff',
  'list-inactiveSelectionBackground': '#37373d',
  'list-hoverBackground': '#2a2d2e',
  'list-focusOutline': '#0078d4',
  'progressBar-background': '#0078d4',
  'charts-blue': '#3794ff',
  'charts-green': '#89d185',
  'charts-orange': '#d18616',
  'charts-purple': '#b180d7',
  'charts-red': '#f14c4c',
  'charts-yellow': '#cca700',
  'editorWarning-foreground': '#cca700',
  'inputValidation-errorBackground': '#5a1d1d',
  'inputValidation-errorBorder': '#be1100',
  'inputValidation-warningBackground': '#352a05',
  'symbolIcon-classForeground': '#ee9d28',
};

function themeStylesheet(): string {
  const declarations = Object.entries(DARK_MODERN_THEME)
    .map(([name, value]) => `  --vscode-${name}: ${value};`)
    .join('\n');
  return `:root {\n${declarations}\n}\n`;
}

/** The page the extension generates (same builder), plus the harness's own bootstrap script. */
function webviewPage(origin: string, nonce: string, savedState: unknown): string {
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
    stylesheets: [`${origin}/theme/dark-modern.css`, `${origin}/media/layerlens.css`],
    scripts: [{ inline: bootstrap }, { src: `${origin}/dist/webview/main.js` }],
    bodyAttributes: 'class="vscode-dark" data-vscode-theme-kind="vscode-dark"',
  });
}

export interface OpenOptions {
  /** What `getState()` returns at start, as VS Code keeps it across reloads of a panel. */
  readonly savedState?: unknown;
  readonly viewport?: { readonly width: number; readonly height: number };
}

/** One open webview page and what it did. */
export interface WebviewSession {
  readonly page: Page;
  /** Every message the webview posted, in order. */
  readonly posted: readonly WebviewToHost[];
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
      if (url.pathname === '/media/layerlens.css')
        return reply(200, 'text/css', readFileSync(STYLESHEET));
      if (url.pathname === '/theme/dark-modern.css')
        return reply(200, 'text/css', themeStylesheet());
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

  /** Opens a webview page whose requests `handler` answers; resolves once the bundle has loaded. */
  async open(handler: RequestHandler, options: OpenOptions = {}): Promise<WebviewSession> {
    const pagePath = `/webview-${randomBytes(6).toString('hex')}.html`;
    this.pages.set(
      pagePath,
      webviewPage(this.origin, randomBytes(16).toString('base64'), options.savedState),
    );
    const context = await this.browser.newContext({
      viewport: options.viewport ?? { width: 1400, height: 1000 },
    });
    const page = await context.newPage();

    const posted: WebviewToHost[] = [];
    const waiters = new Set<(message: WebviewToHost) => boolean>();
    const problems: string[] = [];
    const inFlight = new Map<number, AbortController>();
    let savedState: unknown = options.savedState;
    let statsInFlight = 0;
    let maxStatsInFlight = 0;

    const deliver = async (message: HostToWebview): Promise<void> => {
      if (page.isClosed()) return;
      // A string, not a function: this file is compiled without the DOM's types.
      await page
        .evaluate(
          `window.dispatchEvent(new MessageEvent('message', { data: ${JSON.stringify(message)} }))`,
        )
        .catch((error: unknown) => {
          if (!page.isClosed()) throw error;
        });
    };

    const answer = async (id: number, request: WebviewRequest): Promise<void> => {
      const controller = new AbortController();
      // The server core listens on the signal once per tensor of a batch.
      setMaxListeners(MAX_STATS_BATCH, controller.signal);
      inFlight.set(id, controller);
      const isStats = request.name === 'tensorStats';
      if (isStats) maxStatsInFlight = Math.max(maxStatsInFlight, ++statsInFlight);
      let reply: HostToWebview;
      try {
        reply = { type: 'response', id, result: await handler(request, controller.signal) };
      } catch (error) {
        reply = { type: 'response', id, error: toRequestError(error, controller.signal) };
      } finally {
        inFlight.delete(id);
        if (isStats) statsInFlight--;
      }
      await deliver(reply);
    };

    await page.exposeBinding('__layerlensPost', (_source, message: WebviewToHost) => {
      posted.push(message);
      for (const waiter of waiters) if (waiter(message)) waiters.delete(waiter);
      if (message.type === 'cancel') inFlight.get(message.id)?.abort();
      if (message.type === 'request') {
        const request = { name: message.name, params: message.params } as WebviewRequest;
        answer(message.id, request).catch((error: unknown) =>
          problems.push(`harness: ${String(error)}`),
        );
      }
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
        for (const controller of inFlight.values()) controller.abort();
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
