import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { computeStats, memoryTensorBytes } from '../../../../src/server/analysis/stats';
import { safetensorsFormat } from '../../../../src/server/formats/safetensors';
import { ModelFileError, type TensorEntry } from '../../../../src/server/formats/types';
import { computeTensorStats } from '../../../../src/server/jobs/computeStats';
import { isAbortError, WorkerPool } from '../../../../src/server/jobs/workerPool';
import { bytesOf, makeTempDir, writeSafetensors } from '../../../support/safetensorsBuilder';

let dir: string;
let removeDir: () => Promise<void>;
/** A worker script with jobs that echo, wait, fail, crash or run until cancelled. */
let testWorker: string;

type TestJob =
  | { readonly action: 'echo'; readonly value: number; readonly delayMs?: number }
  | { readonly action: 'untilCancelled' | 'throw' | 'exit' | 'uncaught' };
interface TestResult {
  readonly value: number;
  readonly threadId: number;
}

before(async () => {
  ({ dir, remove: removeDir } = await makeTempDir('layerlens-pool-'));
  testWorker = join(dir, 'testWorker.ts');
  const poolModule = resolve(__dirname, '../../../../src/server/jobs/workerPool.ts');
  await writeFile(
    testWorker,
    `import { threadId } from 'node:worker_threads';
import { serveJobs } from ${JSON.stringify(poolModule)};
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
type Job = { action: string; value?: number; delayMs?: number };
serveJobs<Job, { value: number; threadId: number }>(async (job, control) => {
  if (job.action === 'throw') throw new Error('the job failed on purpose');
  if (job.action === 'exit') process.exit(3);
  if (job.action === 'uncaught') {
    setTimeout(() => { throw new Error('uncaught in the worker'); });
    await sleep(10_000);
  }
  if (job.action === 'untilCancelled') {
    while (!control.isCancelled()) await sleep(2);
    return { value: -1, threadId };
  }
  if (job.delayMs) await sleep(job.delayMs);
  return { value: job.value ?? 0, threadId };
});
`,
  );
});
after(() => removeDir());

function testPool(size: number): WorkerPool<TestJob, TestResult> {
  return new WorkerPool<TestJob, TestResult>(size, testWorker);
}

test('runs jobs in parallel on distinct threads and answers each with its own result', async () => {
  const pool = testPool(2);
  try {
    const results = await Promise.all(
      [1, 2, 3, 4].map((value) => pool.run({ action: 'echo', value, delayMs: 50 })),
    );
    assert.deepEqual(
      results.map((result) => result.value),
      [1, 2, 3, 4],
    );
    assert.equal(new Set(results.map((result) => result.threadId)).size, 2);
  } finally {
    pool.dispose();
  }
});

test('start() starts every worker before any job; the jobs then run on them', async () => {
  const pool = testPool(2);
  try {
    assert.equal(pool.startedCount, 0, 'workers start on demand');
    pool.start();
    assert.equal(pool.startedCount, 2);
    const results = await Promise.all([1, 2].map((value) => pool.run({ action: 'echo', value })));
    assert.equal(new Set(results.map((result) => result.threadId)).size, 2);
    pool.start();
    assert.equal(pool.startedCount, 2, 'no third thread');
  } finally {
    pool.dispose();
  }
  assert.equal(pool.startedCount, 0);
});

test('a single worker takes queued jobs in FIFO order', async () => {
  const pool = testPool(1);
  try {
    const finished: number[] = [];
    await Promise.all(
      [5, 6, 7].map((value) =>
        pool.run({ action: 'echo', value, delayMs: 5 }).then((r) => finished.push(r.value)),
      ),
    );
    assert.deepEqual(finished, [5, 6, 7]);
  } finally {
    pool.dispose();
  }
});

test('aborting a queued job drops it without waiting for the running one', async () => {
  const pool = testPool(1);
  try {
    const running = pool.run({ action: 'echo', value: 1, delayMs: 300 });
    const controller = new AbortController();
    const queued = pool.run({ action: 'echo', value: 2 }, controller.signal);
    assert.equal(pool.queuedCount, 1);
    let runningDone = false;
    void running.then(() => (runningDone = true));
    controller.abort();
    await assert.rejects(queued, (error: unknown) => isAbortError(error));
    assert.equal(runningDone, false);
    assert.equal(pool.queuedCount, 0);
    assert.equal((await running).value, 1);
    const aborted = AbortSignal.abort();
    await assert.rejects(pool.run({ action: 'echo', value: 3 }, aborted), { name: 'AbortError' });
  } finally {
    pool.dispose();
  }
});

test('aborting a running job tells the worker to stop, and frees it for the next job', async () => {
  const pool = testPool(1);
  try {
    const controller = new AbortController();
    // This job only ends when the worker sees the cancellation flag.
    const running = pool.run({ action: 'untilCancelled' }, controller.signal);
    const next = pool.run({ action: 'echo', value: 9 });
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(running, { name: 'AbortError' });
    assert.equal((await next).value, 9);
  } finally {
    pool.dispose();
  }
});

test('a crashed worker fails its job clearly and is replaced', async () => {
  const pool = testPool(1);
  try {
    const before = await pool.run({ action: 'echo', value: 1 });
    await assert.rejects(
      pool.run({ action: 'exit' }),
      /worker thread running the job stopped unexpectedly \(exit code 3\)/,
    );
    await assert.rejects(
      pool.run({ action: 'uncaught' }),
      /stopped unexpectedly \(uncaught in the worker\)/,
    );
    const afterCrash = await pool.run({ action: 'echo', value: 2 });
    assert.equal(afterCrash.value, 2);
    assert.notEqual(afterCrash.threadId, before.threadId);
  } finally {
    pool.dispose();
  }
});

test('a job that throws rejects with its error and leaves the worker in service', async () => {
  const pool = testPool(1);
  try {
    const first = await pool.run({ action: 'echo', value: 1 });
    await assert.rejects(pool.run({ action: 'throw' }), /the job failed on purpose/);
    assert.equal((await pool.run({ action: 'echo', value: 2 })).threadId, first.threadId);
  } finally {
    pool.dispose();
  }
});

test('dispose() rejects running and queued jobs, and later runs', async () => {
  const pool = testPool(1);
  const running = pool.run({ action: 'untilCancelled' });
  const queued = pool.run({ action: 'echo', value: 1 });
  pool.dispose();
  await assert.rejects(running, /shut down/);
  await assert.rejects(queued, /shut down/);
  await assert.rejects(pool.run({ action: 'echo', value: 2 }), /shut down/);
  assert.throws(() => testPool(0), /positive integer/);
});

/** Opens a safetensors file of random float32 tensors. */
async function openModel(
  name: string,
  sizes: readonly number[],
): Promise<{ path: string; tensors: readonly TensorEntry[] }> {
  const path = await writeSafetensors(
    join(dir, name),
    sizes.map((size, i) => ({
      name: `layer${i}.weight`,
      dtype: 'F32' as const,
      shape: [size],
      data: Float32Array.from({ length: size }, (_, k) => Math.sin(k * (i + 1)) * (i + 1)),
    })),
  );
  return { path, tensors: (await safetensorsFormat.open(path)).tensors };
}

async function statsInProcess(entry: TensorEntry, chunkBytes?: number) {
  const data = entry.data;
  assert.equal(data.kind, 'file');
  const file =
    data.kind === 'file'
      ? (await readFile(data.path)).subarray(data.offset, data.offset + data.length)
      : new Uint8Array();
  return computeStats(
    'float32',
    entry.info.parameterCount,
    memoryTensorBytes(new Uint8Array(file)),
    { chunkBytes },
  );
}

test('computeTensorStats: file tensors are read by the workers, several at once', async () => {
  const pool = new WorkerPool(2);
  try {
    const { tensors } = await openModel('stats.safetensors', [1000, 20_000, 3, 70_001]);
    const results = await Promise.all(
      tensors.map((entry) => computeTensorStats(pool, entry, undefined, { chunkBytes: 4096 })),
    );
    for (const [i, entry] of tensors.entries()) {
      assert.deepEqual(results[i], await statsInProcess(entry, 4096), entry.info.name);
    }
  } finally {
    pool.dispose();
  }
});

test('computeTensorStats: in-memory tensors are copied to the worker; other dtypes are refused', async () => {
  const pool = new WorkerPool(1);
  try {
    const values = new Int16Array([-3, 0, 5, 0, 7]);
    const shared = bytesOf(values);
    const entry: TensorEntry = {
      info: { ...infoOf('mem', 'int16', 5), byteLength: 10 },
      data: { kind: 'memory', length: 10, load: () => shared },
    };
    const stats = await computeTensorStats(pool, entry);
    assert.equal(stats.mean, 9 / 5);
    assert.equal(stats.sparsity, 2 / 5);
    assert.deepEqual(Array.from(values), [-3, 0, 5, 0, 7], 'the caller keeps its buffer');
    const text: TensorEntry = {
      info: infoOf('names', 'string', 2),
      data: { kind: 'memory', length: 0, load: () => new Uint8Array() },
    };
    await assert.rejects(
      computeTensorStats(pool, text),
      /tensor "names" holds string values, which have no numeric statistics/,
    );
    const complex: TensorEntry = {
      info: infoOf('z', 'complex64', 1),
      data: { kind: 'memory', length: 8, load: () => new Uint8Array(8) },
    };
    await assert.rejects(computeTensorStats(pool, complex), /complex64/);
  } finally {
    pool.dispose();
  }
});

function infoOf(
  name: string,
  dtype: TensorEntry['info']['dtype'],
  count: number,
): TensorEntry['info'] {
  return {
    index: 0,
    name,
    dtype,
    shape: [count],
    parameterCount: count,
    byteLength: 0,
    node: name,
    op: null,
    location: 'initializer',
    graph: '',
    file: 'model.onnx',
    byteOffset: null,
  };
}

test('computeTensorStats: cancelling a long file job rejects it and the pool goes on', async () => {
  const pool = new WorkerPool(1);
  try {
    const { tensors } = await openModel('long.safetensors', [1_000_000, 10]);
    await computeTensorStats(pool, tensors[1]!);
    const controller = new AbortController();
    // 4 MB read 256 bytes at a time: far longer than the 30 ms before the abort.
    const long = computeTensorStats(pool, tensors[0]!, controller.signal, { chunkBytes: 256 });
    setTimeout(() => controller.abort(), 30);
    await assert.rejects(long, { name: 'AbortError' });
    assert.deepEqual(
      await computeTensorStats(pool, tensors[1]!),
      await statsInProcess(tensors[1]!),
    );
  } finally {
    pool.dispose();
  }
});

test('computeTensorStats: a file deleted underneath fails that job, not the pool', async () => {
  const pool = new WorkerPool(1);
  try {
    const { path, tensors } = await openModel('deleted.safetensors', [100, 200]);
    const { tensors: others } = await openModel('kept.safetensors', [50]);
    await rm(path);
    await assert.rejects(
      computeTensorStats(pool, tensors[0]!),
      (error: unknown) =>
        error instanceof ModelFileError && error.file === path && /ENOENT/.test(error.problem),
    );
    assert.equal((await computeTensorStats(pool, others[0]!)).count, 50);
  } finally {
    pool.dispose();
  }
});
