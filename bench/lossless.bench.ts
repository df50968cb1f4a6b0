/**
 * Lossless packing (.llz) next to zstd -3 on the same bytes, measured in the same run.
 *
 *   node --import tsx bench/lossless.bench.ts [megabytes]     (default 64 per dtype)
 *
 * Ratios are packed / original (smaller is better) on Gaussian N(0, 0.02) weights in bf16
 * and f32, on int8 levels stored as float32, and on the real Silero VAD models (their float
 * tensors' raw bytes, and the whole file), on PyTorch checkpoints of Gaussian weights
 * (f32 and bf16, written by test/support/torchSave.py) and on a whole GGUF file of every
 * decoded ggml type, with the exponent-entropy bound and ZipNN's published ratios as references.
 * Speeds are MB/s of original bytes, from memory, with 1 and 2 worker threads; zstd's are
 * its own in-memory benchmark (`zstd -b3`, one thread). Skips zstd when it is missing.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openModelFile } from '../src/server/formats/registry';
import { WorkerPool } from '../src/server/jobs/workerPool';
import { layoutOf, type ByteLayout } from '../src/server/lossless/byteGroups';
import {
  chunksPerJob,
  losslessWorkerScript,
  type AnalyseResult,
  type EncodeResult,
  type LosslessJob,
  type LosslessResult,
} from '../src/server/lossless/jobs';
import { packFile } from '../src/server/lossless/pack';
import { LLZ_CHUNK_BYTES } from '../src/shared/limits';
import { findPythonWithNumpy, pythonWithNumpy } from '../test/support/python';
import { TORCH_SAVE_SCRIPT } from '../test/support/torchCheckpoints';

const SILERO = ['legacy', 'v5', 'v6'].map((version) =>
  resolve(`node_modules/@ricky0123/vad-web/dist/silero_vad_${version}.onnx`),
);
/** ZipNN's published ratios (compressed / original) on real models. */
const ZIPNN = { bf16: 0.67, f32: 0.83 };
const REPETITIONS = 5;

function gaussian(count: number, sigma: number): Float32Array {
  const values = new Float32Array(count);
  let state = 0x2545f491;
  const uniform = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return ((state >>> 0) + 0.5) / 4294967296;
  };
  for (let i = 0; i < count; i += 2) {
    const radius = sigma * Math.sqrt(-2 * Math.log(uniform()));
    const angle = 2 * Math.PI * uniform();
    values[i] = radius * Math.cos(angle);
    if (i + 1 < count) values[i + 1] = radius * Math.sin(angle);
  }
  return values;
}

function toBf16(values: Float32Array): Uint8Array {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  // Round to nearest even, as frameworks convert.
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    out[i] = (word + 0x7fff + ((word >>> 16) & 1)) >>> 16;
  }
  return new Uint8Array(out.buffer);
}

interface ZstdFigures {
  readonly ratio: number;
  readonly compressMBs: number;
  readonly decompressMBs: number;
}

function zstdBench(file: string): ZstdFigures | string {
  const run = spawnSync('zstd', ['-b3', '-i3', file], { encoding: 'utf8' });
  if (run.error) return `zstd unavailable (${run.error.message})`;
  const text = `${run.stdout}\n${run.stderr}`.replace(/\r/g, '\n');
  const matches = [
    ...text.matchAll(/(\d+) ->\s*(\d+) \(x?[\d.]+\),\s*([\d.]+) MB\/s\s*,\s*([\d.]+) MB\/s/g),
  ];
  const last = matches.at(-1);
  if (!last) return `zstd printed no figures: ${text.trim().split('\n').pop()}`;
  return {
    ratio: Number(last[2]) / Number(last[1]),
    compressMBs: Number(last[3]),
    decompressMBs: Number(last[4]),
  };
}

/** Best-of wall time of `run` in seconds. */
async function bestSeconds(run: () => Promise<unknown>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < REPETITIONS; i++) {
    const start = process.hrtime.bigint();
    await run();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
  }
  return best;
}

/**
 * Encode then decode every chunk of `bytes` through a pool of `workers` threads, in jobs of
 * chunksPerJob chunks as packing and unpacking send them.
 */
async function measureSpeed(bytes: Uint8Array, layout: ByteLayout, workers: number) {
  const pool = new WorkerPool<LosslessJob, LosslessResult>(workers, losslessWorkerScript());
  try {
    const runs: Uint8Array[] = [];
    const runBytes = LLZ_CHUNK_BYTES * chunksPerJob(Math.ceil(bytes.length / LLZ_CHUNK_BYTES));
    for (let start = 0; start < bytes.length; start += runBytes) {
      runs.push(bytes.subarray(start, start + runBytes));
    }
    const encodeJob = (run: Uint8Array): LosslessJob => ({
      op: 'encode',
      layout,
      generic: false,
      bytes: run,
      chunkBytes: LLZ_CHUNK_BYTES,
    });
    // Warm the workers up (start-up and JIT) before timing.
    const encoded = (await Promise.all(
      runs.map((run) => pool.run(encodeJob(run.slice()))),
    )) as EncodeResult[];
    const encodeSeconds = await bestSeconds(() =>
      Promise.all(
        runs.map((run) => {
          const copy = run.slice();
          return pool.run(encodeJob(copy), undefined, [copy.buffer]);
        }),
      ),
    );
    const decode = () =>
      Promise.all(
        encoded.map((result, i) => {
          const payload = result.payload.slice();
          const run = runs[i]!;
          return pool.run(
            {
              op: 'decode',
              layout,
              payload,
              chunks: result.payloadLengths.map((payloadLength, c) => ({
                payloadLength,
                rawLength: Math.min(LLZ_CHUNK_BYTES, run.length - c * LLZ_CHUNK_BYTES),
                crc: result.checks[c]!,
                where: `chunk ${c} of run ${i}`,
              })),
              file: 'bench',
            },
            undefined,
            [payload.buffer],
          );
        }),
      );
    await decode();
    const decodeSeconds = await bestSeconds(decode);
    const packed = encoded.reduce((sum, result) => sum + result.payload.length, 0);
    return {
      ratio: packed / bytes.length,
      compressMBs: bytes.length / 1e6 / encodeSeconds,
      decompressMBs: bytes.length / 1e6 / decodeSeconds,
    };
  } finally {
    pool.dispose();
  }
}

async function boundRatio(
  bytes: Uint8Array,
  dtype: 'bfloat16' | 'float32',
): Promise<AnalyseResult> {
  const pool = new WorkerPool<LosslessJob, LosslessResult>(1, losslessWorkerScript());
  try {
    return (await pool.run({
      op: 'analyse',
      dtype,
      source: { kind: 'memory', bytes: bytes.slice() },
    })) as AnalyseResult;
  } finally {
    pool.dispose();
  }
}

type Row = (string | number | null)[];

/** A speed for the table: whole MB/s. */
const mbs = (value: number) => value.toFixed(0);

function printTable(title: string, header: string[], rows: Row[]): void {
  const cells = rows.map((row) =>
    row.map((cell) =>
      cell === null
        ? '—'
        : typeof cell === 'number'
          ? cell < 10
            ? cell.toFixed(4)
            : cell.toFixed(0)
          : cell,
    ),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]!.length)));
  console.log(`\n${title}`);
  console.log(header.map((h, i) => h.padEnd(widths[i]!)).join('  '));
  for (const row of cells) console.log(row.map((c, i) => c.padEnd(widths[i]!)).join('  '));
}

/** The 1-minute load average: other work on the machine disturbs the speeds. */
const loadNow = () => loadavg()[0]!.toFixed(1);

async function main(): Promise<void> {
  const megabytes = Number(process.argv[2] ?? 64);
  const loadAtStart = loadNow();
  const dir = await mkdtemp(join(tmpdir(), 'layerlens-lossless-bench-'));
  try {
    const bytesPerInput = megabytes * 1024 * 1024;
    const values = gaussian(bytesPerInput / 2, 0.02);
    const inputs: [string, Uint8Array, 'bfloat16' | 'float32', number | null][] = [
      ['Gaussian N(0, 0.02) bf16', toBf16(values), 'bfloat16', ZIPNN.bf16],
      [
        'Gaussian N(0, 0.02) f32',
        new Uint8Array(values.buffer, 0, bytesPerInput),
        'float32',
        ZIPNN.f32,
      ],
    ];
    // Weights quantized to int8 and stored back as float32 (as fake-quantized checkpoints
    // are): 255 distinct values, which brotli codes whole. Smaller: that path is slower.
    const levels = values.subarray(0, Math.min(bytesPerInput, 8 * 1024 * 1024) / 4);
    const scale = levels.reduce((m, v) => Math.max(m, Math.abs(v)), 0) / 127;
    const dequantized = levels.map((v) => Math.round(v / scale) * scale);
    inputs.push(['int8 levels stored as f32', new Uint8Array(dequantized.buffer), 'float32', null]);
    // Each Silero model's float tensors, concatenated raw (what the entropy coder sees).
    for (const file of SILERO) {
      const model = await openModelFile(file);
      const bytes = await readFile(file);
      const weights = model.tensors.flatMap((tensor) =>
        tensor.info.dtype === 'float32' && tensor.data.kind === 'file'
          ? [bytes.subarray(tensor.data.offset, tensor.data.offset + tensor.data.length)]
          : [],
      );
      const name = file.split('/').pop()!.replace('.onnx', '');
      inputs.push([
        `${name} float32 tensors`,
        new Uint8Array(Buffer.concat(weights)),
        'float32',
        ZIPNN.f32,
      ]);
    }

    const ratioRows: Row[] = [];
    const speedRows: Row[] = [];
    for (const [name, bytes, dtype, zipnn] of inputs) {
      const file = join(dir, `${name.replace(/[^a-z0-9]+/gi, '_')}.bin`);
      await writeFile(file, bytes);
      const zstd = zstdBench(file);
      const analysed = await boundRatio(bytes, dtype);
      const bound = analysed.boundBytes! / analysed.rawBytes;
      const ours = analysed.packedBytes / analysed.rawBytes;
      const zstdRatio = typeof zstd === 'string' ? null : zstd.ratio;
      ratioRows.push([
        `${name} (${(bytes.length / 1e6).toFixed(1)} MB)`,
        ours,
        bound,
        `${((ours / bound - 1) * 100).toFixed(2)}%`,
        analysed.exponentEntropyBits!,
        zstdRatio,
        zstdRatio === null ? null : `${((1 - ours / zstdRatio) * 100).toFixed(1)}%`,
        zipnn,
      ]);
      const layout = layoutOf(dtype);
      for (const workers of [1, 2]) {
        const speed = await measureSpeed(bytes, layout, workers);
        speedRows.push([
          name,
          `LayerLens, ${workers} worker${workers > 1 ? 's' : ''}`,
          mbs(speed.compressMBs),
          mbs(speed.decompressMBs),
        ]);
      }
      if (typeof zstd === 'string') speedRows.push([name, zstd, null, null]);
      else
        speedRows.push([
          name,
          'zstd -3 (1 thread)',
          mbs(zstd.compressMBs),
          mbs(zstd.decompressMBs),
        ]);
      await rm(file);
    }
    // A GGUF of every decoded ggml type (uniformly random block fields, the hard case) and
    // F32/F16/BF16 norms, written by the tests' independent writer.
    const gguf = join(dir, 'types.gguf');
    const written = spawnSync(
      pythonWithNumpy(),
      [resolve('test/support/gguf_fixtures.py'), '--bench', gguf, '1024'],
      { encoding: 'utf8' },
    );
    if (written.status !== 0) throw new Error(`gguf_fixtures.py failed: ${written.stderr}`);
    const fileRows: Row[] = [];
    const python = findPythonWithNumpy();
    const checkpoints: string[] = [];
    // PyTorch checkpoints written by test/support/torchSave.py (Python's pickle and zipfile).
    for (const dtype of ['float32', 'bfloat16']) {
      const checkpoint = join(dir, `gaussian-${dtype}.pt`);
      const size = String(Math.min(megabytes, 32));
      if (
        python &&
        spawnSync(python, [TORCH_SAVE_SCRIPT, 'gaussian', checkpoint, size, dtype]).status === 0
      ) {
        checkpoints.push(checkpoint);
      } else {
        fileRows.push([`gaussian-${dtype}.pt`, 'python3 with numpy is missing', null, null, null]);
      }
    }
    for (const file of [...SILERO, ...checkpoints, gguf]) {
      const out = join(dir, `${file.split('/').pop()}.llz`);
      const packed = await packFile(file, { out });
      const zstd = zstdBench(file);
      const zstdRatio = typeof zstd === 'string' ? null : zstd.ratio;
      const ours = packed.packedBytes / packed.originalBytes;
      fileRows.push([
        file.split('/').pop()!,
        packed.originalBytes,
        ours,
        zstdRatio,
        zstdRatio === null ? null : `${((1 - ours / zstdRatio) * 100).toFixed(1)}%`,
      ]);
    }

    console.log(
      `Lossless packing, ${megabytes} MB per Gaussian input; Node ${process.version}; chunks of ${LLZ_CHUNK_BYTES / 1024} KB`,
    );
    printTable(
      "Ratio = packed / original (smaller is better); bound = the byte groups' bound: exponent stream at its entropy, other streams as stored (chunks that brotli codes whole go below it)",
      [
        'input',
        'LayerLens',
        'bound',
        'vs bound',
        'exp. entropy (bits)',
        'zstd -3',
        'smaller than zstd',
        'ZipNN published',
      ],
      ratioRows,
    );
    printTable(
      `Speed (MB/s of original bytes, from memory; best of ${REPETITIONS}; load average ${loadAtStart} at the start, ${loadNow()} at the end)`,
      ['input', 'coder', 'compress', 'decompress'],
      speedRows,
    );
    printTable(
      'Whole files (.llz container vs zstd -3 on the file)',
      ['file', 'bytes', 'LayerLens', 'zstd -3', 'smaller than zstd'],
      fileRows,
    );
    console.log(
      '\nTargets: ≤ 0.66 bf16, ≤ 0.83 f32 on Gaussian; ≥ 10% smaller than zstd -3; within 2% of the bound; ≥ 500 MB/s compress and ≥ 1 GB/s decompress on 2 cores.',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

void main();
