/**
 * The set-up most webview tests share, as `before`/`after` hooks of the calling test file:
 * a temporary folder, the headless-Chromium harness and a real server process, and, with
 * `model`, one page on the model it writes, open and loaded before the first test. Closed
 * and removed after the last test. The returned object's fields are read inside tests (they
 * are set once the hooks ran).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { startServer, type ServerProcess } from './serverProcess';
import {
  WebviewHarness,
  type ModelBackend,
  type OpenOptions,
  type WebviewSession,
} from './webviewHarness';

/** How long a page may take to load its model (`body[data-state="ready"]`). */
export const WEBVIEW_READY_TIMEOUT_MS = 60_000;

export interface WebviewFixtureOptions {
  /** Start of the temporary folder's name (`layerlens-<test>-`). */
  readonly folderPrefix: string;
  /** The server's `stats.workerCount` (default 1: the machine is shared). */
  readonly workers?: number;
  /**
   * The file's own preparation, run last in the same hook (the fixture's fields are set);
   * a second `before` of the file may run before this one has finished.
   */
  readonly setUp?: (fixture: WebviewFixture) => Promise<void>;
}

export interface WebviewFixture {
  readonly harness: WebviewHarness;
  readonly server: ServerProcess;
  /** The temporary folder, removed after the last test. */
  readonly folder: string;
  /** A page on `modelPath` answered by this fixture's server. */
  open(
    modelPath: string,
    options?: OpenOptions,
    backend?: Omit<ModelBackend, 'server' | 'modelPath'>,
  ): Promise<WebviewSession>;
}

export interface WebviewSessionFixture extends WebviewFixture {
  /** The page opened on `modelPath` before the first test, its model loaded. */
  readonly session: WebviewSession;
  readonly modelPath: string;
}

/** Waits until the page has loaded its model (or shown why it could not). */
export async function waitUntilReady(
  session: WebviewSession,
  timeout = WEBVIEW_READY_TIMEOUT_MS,
): Promise<void> {
  await session.page.locator('body[data-state="ready"]').waitFor({ state: 'attached', timeout });
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is set in before(); read it inside a test`);
  return value;
}

/** What a fixture adds to the shared set-up: run after it starts, and before it stops. */
interface Extra {
  setUp(fixture: WebviewFixture): Promise<void>;
  tearDown(): Promise<void>;
}

function fixtureHooks(options: WebviewFixtureOptions, extra?: Extra): WebviewFixture {
  let harness: WebviewHarness | undefined;
  let server: ServerProcess | undefined;
  let folder: string | undefined;
  const fixture: WebviewFixture = {
    get harness() {
      return required(harness, 'harness');
    },
    get server() {
      return required(server, 'server');
    },
    get folder() {
      return required(folder, 'folder');
    },
    open(modelPath, openOptions, backend) {
      return fixture.harness.open({ ...backend, server: fixture.server, modelPath }, openOptions);
    },
  };
  before(async () => {
    folder = await mkdtemp(path.join(tmpdir(), options.folderPrefix));
    harness = await WebviewHarness.start();
    server = await startServer({ 'stats.workerCount': options.workers ?? 1 });
    await extra?.setUp(fixture);
    await options.setUp?.(fixture);
  });
  after(async () => {
    await extra?.tearDown();
    await harness?.close();
    server?.stop();
    if (folder) await rm(folder, { recursive: true, force: true });
  });
  return fixture;
}

/** The harness, the server and a temporary folder, for the tests of the calling file. */
export function useWebviewHarness(options: WebviewFixtureOptions): WebviewFixture {
  return fixtureHooks(options);
}

/**
 * As useWebviewHarness, and one page on the model `model` writes into the folder (its
 * path returned), opened and loaded before the first test and closed after the last.
 */
export function useWebviewSession(
  options: WebviewFixtureOptions & { readonly model: (folder: string) => Promise<string> },
): WebviewSessionFixture {
  let session: WebviewSession | undefined;
  let modelPath: string | undefined;
  const fixture = fixtureHooks(options, {
    async setUp(started) {
      modelPath = await options.model(started.folder);
      session = await started.open(modelPath);
      await waitUntilReady(session);
    },
    async tearDown() {
      await session?.close();
    },
  });
  return {
    get harness() {
      return fixture.harness;
    },
    get server() {
      return fixture.server;
    },
    get folder() {
      return fixture.folder;
    },
    open: fixture.open,
    get session() {
      return required(session, 'session');
    },
    get modelPath() {
      return required(modelPath, 'modelPath');
    },
  };
}
