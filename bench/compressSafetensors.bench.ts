/**
 * End-to-end time to compress a safetensors file with each method (read, compress, write
 * the new file, re-read its header, write the report), next to NumPy doing the same
 * arithmetic and writing the values to a file, in the same run.
 *
 *   node --import tsx bench/compressSafetensors.bench.ts [megabytes] [side]
 *                                                   (defaults 64 and 1024)
 *
 * The file holds float32 matrices of side × side; low rank runs on one of them (the SVD is
 * the cost there). A second table times the rank-64 SVD alone on that matrix: LayerLens's
 * randomized SVD against NumPy's full LAPACK SVD and NumPy running the same randomized
 * algorithm, each with its error ‖W − Ŵ‖_F/‖W‖_F (the full SVD's is the optimum). NumPy's
 * columns are skipped when python3 with numpy is missing. Best of a few repetitions; each
 * run's output is removed before the next.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { truncatedSvd, type TruncatedSvd } from '../src/server/analysis/truncatedSvd';
import { compressModel } from '../src/server/compress';
import { relativeFrobeniusError } from '../src/server/compress/kernels';
import { encodeHeader } from '../src/server/formats/safetensorsWriter';
import type { CompressionOptions, CompressionReport } from '../src/shared/compress';
import { describeOptions } from '../src/shared/compressText';
import { sharedMatMulRuntime } from '../src/server/runtime/matmul';

const REPETITIONS = 3;
let SIDE = 1024;
/** The rank of the low-rank rows. */
const RANK = 64;

const CASES: readonly { options: CompressionOptions; numpy: string; pattern?: string }[] = [
  { options: { method: 'prune', sparsity: 0.5 }, numpy: 'prune' },
  { options: { method: 'nm', n: 2, m: 4 }, numpy: 'nm' },
  { options: { method: 'int8' }, numpy: 'int8' },
  { options: { method: 'int8', storeQuantized: true }, numpy: 'int8q' },
  { options: { method: 'int4', blockSize: 32 }, numpy: 'int4' },
  { options: { method: 'fp16' }, numpy: 'fp16' },
  { options: { method: 'bf16' }, numpy: 'bf16' },
  { options: { method: 'lowrank', rank: RANK }, numpy: 'lowrank', pattern: '^w0$' },
];

/** The same arithmetic in NumPy, each writing its result with tofile; seconds per case. */
const NUMPY_SCRIPT = String.raw`
import json, sys, time
import numpy as np
path, count, side, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
out = path + '.numpy.out'
mats = [np.fromfile(path, dtype='<f4', count=side * side, offset=int(sys.argv[5]) + i * side * side * 4).reshape(side, side) for i in range(count)]
def prune(w):
    k = w.size // 2
    t = np.partition(np.abs(w).ravel(), k)[k]
    return np.where(np.abs(w) < t, 0, w)
def nm(w):
    g = w.reshape(w.shape[0], -1, 4)
    order = np.argsort(-np.abs(g), axis=2, kind='stable')
    mask = np.zeros_like(g, dtype=bool)
    np.put_along_axis(mask, order[:, :, :2], True, axis=2)
    return np.where(mask, g, 0).reshape(w.shape)
def int8(w, keep=False):
    s = np.abs(w).max(axis=1, keepdims=True) / 127
    s[s == 0] = 1
    q = np.clip(np.rint(w / s), -127, 127).astype(np.int8)
    return (q, s.astype(np.float32)) if keep else (q * s).astype(np.float32)
def int4(w):
    b = w.reshape(w.shape[0], -1, 32)
    s = np.abs(b).max(axis=2, keepdims=True) / 7
    s[s == 0] = 1
    return (np.clip(np.rint(b / s), -7, 7) * s).astype(np.float32).reshape(w.shape)
def bf16(w):
    u = w.view(np.uint32)
    return ((u + 0x7fff + ((u >> 16) & 1)) >> 16).astype(np.uint16)
def lowrank(w):
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
    return ((u[:, :64] * s[:64]) @ vt[:64]).astype(np.float32)
def svd_full(w):
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    return u[:, :64] * s[:64], vt[:64]
def svd_randomized(w, r=64, iterations=4):
    width = min(min(w.shape), r + max(10, -(-r // 8)))
    omega = np.random.default_rng(0).standard_normal((w.shape[1], width)).astype(np.float32)
    q, _ = np.linalg.qr(w @ omega)
    for _ in range(iterations):
        z, _ = np.linalg.qr(w.T @ q)
        q, _ = np.linalg.qr(w @ z)
    ub, s, vt = np.linalg.svd(q.T @ w, full_matrices=False)
    return (q @ ub[:, :r]) * s[:r], vt[:r]
def svd_error(w, f):
    left, right = f
    return float(np.linalg.norm(w - left @ right) / np.linalg.norm(w))
ops = {
  'prune': prune, 'nm': nm, 'int8': int8, 'int8q': lambda w: int8(w, True), 'int4': int4,
  'fp16': lambda w: w.astype(np.float16), 'bf16': bf16,
}
def run(name):
    with open(out, 'wb') as f:
        if name == 'lowrank':
            lowrank(mats[0]).tofile(f)
            return
        for w in mats:
            r = ops[name](w)
            for part in (r if isinstance(r, tuple) else (r,)):
                part.tofile(f)
result = {'version': np.__version__, 'seconds': {}}
for name in list(ops) + ['lowrank']:
    best = float('inf')
    for _ in range(reps):
        t = time.perf_counter(); run(name); best = min(best, time.perf_counter() - t)
    result['seconds'][name] = best
for name, f in (('svd_full', svd_full), ('svd_randomized', svd_randomized)):
    best = float('inf')
    for _ in range(reps):
        t = time.perf_counter(); factors = f(mats[0]); best = min(best, time.perf_counter() - t)
    result['seconds'][name] = best
    result['seconds'][name + '_error'] = svd_error(mats[0], factors)
print(json.dumps(result))
`;

function numpySeconds(
  file: string,
  count: number,
  dataOffset: number,
): { version: string; seconds: Record<string, number> } | string {
  const result = spawnSync(
    'python3',
    [
      '-c',
      NUMPY_SCRIPT,
      file,
      String(count),
      String(SIDE),
      String(REPETITIONS),
      String(dataOffset),
    ],
    { encoding: 'utf8' },
  );
  if (result.status !== 0)
    return (result.stderr || result.error?.message || 'python3 failed').trim().split('\n').pop()!;
  return JSON.parse(result.stdout) as { version: string; seconds: Record<string, number> };
}

/** Deterministic normal-ish weights (sum of three uniforms). */
function weights(count: number, seed: number): Float32Array {
  const values = new Float32Array(count);
  let state = seed | 1;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
  for (let i = 0; i < count; i++) values[i] = (next() + next() + next() - 1.5) * 0.05;
  return values;
}

/** Columns padded to their widest cell, the first left-aligned, the others right-aligned. */
function printTable(headers: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => row[column]!.length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) =>
        column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!),
      )
      .join('  ');
  console.log(line(headers));
  for (const row of rows) console.log(line(row));
}

async function main(): Promise<void> {
  const megabytes = Number(process.argv[2] ?? 64);
  SIDE = Number(process.argv[3] ?? SIDE);
  const count = Math.max(1, Math.round((megabytes * 1024 * 1024) / (SIDE * SIDE * 4)));
  const folder = await mkdtemp(join(tmpdir(), 'layerlens-bench-compress-st-'));
  try {
    const tensors = Array.from({ length: count }, (_, index) => ({
      name: `w${index}`,
      dtype: 'float32' as const,
      shape: [SIDE, SIDE],
    }));
    const { header } = encodeHeader(tensors, { format: 'pt' });
    const source = join(folder, 'model.safetensors');
    await writeFile(
      source,
      Buffer.concat([
        header,
        ...tensors.map((_, index) => Buffer.from(weights(SIDE * SIDE, index + 1).buffer)),
      ]),
    );
    const fileMiB = (count * SIDE * SIDE * 4) / 1024 / 1024;
    console.log(
      `safetensors compression: ${count} float32 tensors of ${SIDE}×${SIDE} (${fileMiB} MiB)`,
    );
    const numpy = numpySeconds(source, count, header.byteLength);
    const rows: string[][] = [];
    for (const { options, numpy: key, pattern } of CASES) {
      let best = Infinity;
      let report: CompressionReport | undefined;
      for (let i = 0; i < REPETITIONS; i++) {
        const start = process.hrtime.bigint();
        report = await compressModel(source, {
          tensors: [],
          tensorPattern: pattern,
          options,
          outPath: join(folder, `out-${i}-${options.method}.safetensors`),
        });
        best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
        for (const name of await readdir(folder)) {
          if (name.startsWith('out-')) await rm(join(folder, name), { force: true });
        }
      }
      const compressed = report!.tensors.filter((tensor) => !tensor.skipped);
      const worst = Math.max(...compressed.map((tensor) => tensor.relativeError));
      const reference = typeof numpy === 'string' ? undefined : numpy.seconds[key];
      rows.push([
        describeOptions(options),
        best.toFixed(3),
        reference === undefined ? '—' : reference.toFixed(3),
        reference === undefined ? '—' : (best / reference).toFixed(2),
        (report!.fileBytesAfter / 1024 / 1024).toFixed(1),
        worst.toExponential(2),
      ]);
    }
    printTable(['method', 'LayerLens s', 'NumPy s', 'ratio', 'MiB after', 'max rel. error'], rows);
    console.log(
      typeof numpy === 'string'
        ? `NumPy reference skipped: ${numpy}`
        : `NumPy ${numpy.version}: the same arithmetic and a tofile() of the result (LayerLens also reads the file, re-reads the header and writes the report). Low rank: one ${SIDE}×${SIDE} tensor (NumPy: LAPACK SVD in float64). Best of ${REPETITIONS}.`,
    );
    await svdTable(weights(SIDE * SIDE, 1), numpy);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/** The rank-RANK SVD alone on the first matrix, next to NumPy's (see the module comment). */
async function svdTable(
  matrix: Float32Array,
  numpy: { version: string; seconds: Record<string, number> } | string,
): Promise<void> {
  const runtime = sharedMatMulRuntime('cpu');
  let best = Infinity;
  let svd: TruncatedSvd | undefined;
  for (let i = 0; i < REPETITIONS; i++) {
    const start = process.hrtime.bigint();
    svd = await truncatedSvd(runtime, { rows: SIDE, cols: SIDE, data: matrix }, RANK, () => {});
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
  }
  const product = await runtime.gemm(
    { rows: SIDE, cols: RANK, data: Float32Array.from(svd!.scaledLeft) },
    { rows: RANK, cols: SIDE, data: Float32Array.from(svd!.rightT) },
  );
  const error = relativeFrobeniusError(matrix, product.data);
  const seconds = typeof numpy === 'string' ? undefined : numpy.seconds;
  const cell = (key: string, digits: (value: number) => string) =>
    seconds?.[key] === undefined ? '—' : digits(seconds[key]);
  const rows = [
    [`LayerLens: ${svd!.route}`, best.toFixed(3), error.toFixed(6)],
    [
      'NumPy: np.linalg.svd(W, full_matrices=False), LAPACK float32',
      cell('svd_full', (v) => v.toFixed(3)),
      cell('svd_full_error', (v) => v.toFixed(6)),
    ],
    [
      'NumPy: the same randomized SVD (np.linalg.qr, float32 products)',
      cell('svd_randomized', (v) => v.toFixed(3)),
      cell('svd_randomized_error', (v) => v.toFixed(6)),
    ],
  ];
  console.log('');
  printTable(
    [`rank-${RANK} SVD of one ${SIDE}×${SIDE} float32 matrix`, 'seconds', '‖W−Ŵ‖/‖W‖'],
    rows,
  );
  console.log(
    `Best of ${REPETITIONS}; the full SVD's error is the Eckart–Young optimum. LayerLens runs in this thread (in a compression it runs in the worker).`,
  );
}

void main();
