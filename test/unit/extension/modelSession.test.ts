/**
 * The model editor's request session (src/extension/modelSession.ts) with stand-ins for
 * VS Code and the server: what it forwards, what it adds, what it refuses, how it maps
 * errors and cancellations, and that a change of the model file reloads the webview.
 * The webview tests drive the same code with Chromium and the real server process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModelSession, type ModelSessionHost } from '../../../src/extension/modelSession';
import { LspMethods, MODEL_ERROR_CODE, type LspMethod } from '../../../src/shared/lsp';
import type { HostToWebview, WebviewToHost } from '../../../src/shared/protocol';

const URI = 'file:///models/net.onnx';

interface Sent {
  readonly method: LspMethod<unknown, unknown>;
  readonly params: object;
  readonly signal: AbortSignal;
}

function fakeHost(answer: (sent: Sent) => Promise<unknown>) {
  const posted: HostToWebview[] = [];
  const sent: Sent[] = [];
  let fileChanged = (): void => undefined;
  let watching = false;
  const host: ModelSessionHost = {
    uri: URI,
    post: (message) => posted.push(message),
    sendRequest: (method, params, signal) => {
      const request = { method, params, signal };
      sent.push(request);
      return answer(request);
    },
    sampleInputs: () => ({ inputsFolder: '/inputs' }),
    watchModelFile: (onChange) => {
      fileChanged = onChange;
      watching = true;
      return { dispose: () => (watching = false) };
    },
  };
  return {
    host,
    posted,
    sent,
    changeFile: () => fileChanged(),
    get watching() {
      return watching;
    },
  };
}

/** Resolves once the session has posted `count` messages. */
async function postedCount(posted: readonly HostToWebview[], count: number): Promise<void> {
  while (posted.length < count) await new Promise((resolve) => setImmediate(resolve));
}

function request(id: number, name: string, params: object): WebviewToHost {
  return { type: 'request', id, name, params } as WebviewToHost;
}

test('forwards a request with the model URI, and the sample inputs only where declared', async () => {
  const fake = fakeHost(async () => ({ ok: true }));
  const session = new ModelSession(fake.host);
  assert.equal(session.onMessage(request(1, 'tensors', { offset: 0, limit: 10 })), true);
  assert.equal(
    session.onMessage(request(2, 'sensitivity', { request: { measured: false } })),
    true,
  );
  await postedCount(fake.posted, 2);
  assert.equal(fake.sent[0]!.method, LspMethods.tensors);
  assert.deepEqual(fake.sent[0]!.params, { offset: 0, limit: 10, uri: URI });
  assert.equal(fake.sent[1]!.method, LspMethods.sensitivity);
  assert.deepEqual(fake.sent[1]!.params, {
    request: { measured: false },
    inputsFolder: '/inputs',
    uri: URI,
  });
  assert.deepEqual(fake.posted, [
    { type: 'response', id: 1, result: { ok: true } },
    { type: 'response', id: 2, result: { ok: true } },
  ]);
  session.dispose();
});

test('leaves the editor its own messages', () => {
  const session = new ModelSession(fakeHost(async () => undefined).host);
  assert.equal(session.onMessage({ type: 'ready' }), false);
  assert.equal(session.onMessage({ type: 'compress', indices: [] }), false);
  session.dispose();
});

test('refuses methods not declared for the webview, without asking the server', async () => {
  const fake = fakeHost(async () => undefined);
  const session = new ModelSession(fake.host);
  for (const [id, name] of [
    [1, 'pack'],
    [2, 'applyPlan'],
    [3, 'toString'],
  ] as const)
    session.onMessage(request(id, name, {}));
  await postedCount(fake.posted, 3);
  assert.equal(fake.sent.length, 0);
  for (const reply of fake.posted) {
    assert.ok(reply.type === 'response' && 'error' in reply);
    assert.match(reply.error.message, /may not ask for/);
  }
  session.dispose();
});

test('maps a model-file error to the file and the problem, anything else to its message', async () => {
  const fake = fakeHost(async ({ method }) => {
    if (method === LspMethods.openModel) {
      throw Object.assign(new Error('/models/net.onnx: not an ONNX model'), {
        code: MODEL_ERROR_CODE,
        data: { file: '/models/net.onnx', problem: 'not an ONNX model' },
      });
    }
    throw new Error('out of memory');
  });
  const session = new ModelSession(fake.host);
  session.onMessage(request(1, 'openModel', {}));
  session.onMessage(request(2, 'tensors', { offset: 0, limit: 1 }));
  await postedCount(fake.posted, 2);
  assert.deepEqual(fake.posted, [
    {
      type: 'response',
      id: 1,
      error: {
        message: '/models/net.onnx: not an ONNX model',
        file: '/models/net.onnx',
        problem: 'not an ONNX model',
      },
    },
    { type: 'response', id: 2, error: { message: 'out of memory' } },
  ]);
  session.dispose();
});

/** A server that answers only when the request is cancelled, with an error. */
const untilCancelled = ({ signal }: Sent) =>
  new Promise((_resolve, reject) =>
    signal.addEventListener('abort', () => reject(new Error('Request cancelled'))),
  );

test('a cancel from the webview aborts that request, which comes back as cancelled', async () => {
  const fake = fakeHost(untilCancelled);
  const session = new ModelSession(fake.host);
  session.onMessage(request(1, 'spectrum', { index: 0 }));
  session.onMessage(request(2, 'spectrum', { index: 1 }));
  session.onMessage({ type: 'cancel', id: 2 });
  await postedCount(fake.posted, 1);
  assert.deepEqual(fake.posted, [
    { type: 'response', id: 2, error: { message: 'cancelled', cancelled: true } },
  ]);
  assert.equal(fake.sent[0]!.signal.aborted, false);
  session.dispose();
  await postedCount(fake.posted, 2);
  assert.deepEqual(fake.posted[1], {
    type: 'response',
    id: 1,
    error: { message: 'cancelled', cancelled: true },
  });
});

test('a change of the model file cancels what is in flight and reloads the webview', async () => {
  const fake = fakeHost(untilCancelled);
  const session = new ModelSession(fake.host);
  assert.equal(fake.watching, true);
  session.onMessage(request(1, 'tensorStats', { indices: [0] }));
  fake.changeFile();
  await postedCount(fake.posted, 2);
  assert.deepEqual(fake.posted, [
    { type: 'reload', reason: 'the file changed on disk' },
    { type: 'response', id: 1, error: { message: 'cancelled', cancelled: true } },
  ]);
  session.dispose();
  assert.equal(fake.watching, false);
});
