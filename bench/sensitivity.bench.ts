/**
 * The measured sensitivity sweep: L tensors × K levels run in one onnxruntime session
 * (weights fed as graph inputs) against, in the same run, L·K plain inferences of the
 * unchanged model and a naive sweep that builds a new session per configuration.
 *
 *   node --import tsx bench/sensitivity.bench.ts [width]     (default 512)
 *
 * Models: Silero VAD v5 (from node_modules) and a generated 4-layer tanh MLP of the given
 * width, on batches of 16 and 256 rows. Levels: the default sweep (prune 25–90%, 2:4,
 * int8, int4 b32/b128, low-rank 99/95/90% energy); a level a tensor cannot take is not run.
 * Weights fed as inputs cannot be pre-packed by onnxruntime, which costs most where a run
 * is dominated by the weights (batch 1–16) and least where it is dominated by compute.
 *
 * Rows: "Ŵ for every point" makes the compressed values (kernels, SVDs) once; "one-session
 * sweep" is the L·K runs with one weight swapped each and the deviation computed;
 * "plain inference" runs the original model L·K times on the same inputs (target: the
 * sweep ≤ 1.3× this); "rebuild per config" writes each configuration as a model and opens
 * a session for it; "computeSensitivity" is the whole request end to end, uncached.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { printTable } from '../src/cli/table';
import { openModelFile } from '../src/server/formats/registry';
import { onnxModelOf } from '../src/server/onnx';
import { clearSensitivityCache, computeSensitivity } from '../src/server/sensitivity';
import { outputDeviation } from '../src/server/sensitivity/deviation';
import { DEFAULT_SWEEP, levelProblem } from '../src/server/sensitivity/levels';
import { LevelNotApplicable, LowRankBasis, reconstruct } from '../src/server/sensitivity/proxy';
import { MeasuredSweep } from '../src/server/sensitivity/sweep';
import { sweepTensors } from '../src/server/sensitivity/tensors';
import { DEFAULT_SETTINGS, type LayerLensSettings } from '../src/shared/settings';
import { writeMlp } from './support/mlp';

const WIDTH = Number(process.argv[2] ?? 512);
/** Times the one-session sweep and the plain runs are each repeated (alternating). */
const REPEATS = 21;
/** Batch sizes of the MLP's input: small (weight-bound runs) and large (compute-bound). */
const BATCHES = [16, 256];

interface Point {
  readonly index: number;
  readonly restored: Float32Array;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

async function bench(
  label: string,
  path: string,
  settings: LayerLensSettings,
): Promise<string[][]> {
  const opened = await openModelFile(path);
  const decoded = await onnxModelOf(opened, 'read');
  // Ŵ for every (tensor, level) the sweep runs.
  let start = process.hrtime.bigint();
  const { tensors } = sweepTensors(opened, [], decoded);
  const values = new Map<number, Float32Array>();
  for (const t of tensors) {
    const data = t.entry.data;
    const raw =
      data.kind === 'file'
        ? (await readFile(data.path)).subarray(data.offset, data.offset + data.length)
        : data.load();
    values.set(t.entry.info.index, new Float32Array(Uint8Array.from(raw).buffer));
  }
  const points: Point[] = [];
  for (const t of tensors) {
    const basis = new LowRankBasis();
    for (const level of DEFAULT_SWEEP) {
      if (levelProblem(level, t)) continue;
      try {
        const restored = await reconstruct(
          values.get(t.entry.info.index)!,
          t.layout,
          level,
          undefined,
          basis,
        );
        points.push({ index: t.entry.info.index, restored });
      } catch (error) {
        if (!(error instanceof LevelNotApplicable)) throw error;
      }
    }
  }
  const prepare = seconds(start);
  // One session, one weight swapped per run.
  const sweep = await MeasuredSweep.open(opened, decoded, tensors, values, settings);
  if (typeof sweep === 'string') throw new Error(sweep);
  const samples = sweep.samples;
  const plain = await ort.InferenceSession.create(path, {
    executionProviders: ['cpu'],
    logSeverityLevel: 4,
  });
  const references: ort.InferenceSession.OnnxValueMapType[] = [];
  for (const sample of samples) references.push(await plain.run(sample));
  // The same comparisons on every sample input as the sweep makes.
  const compareAll = async (session: ort.InferenceSession): Promise<void> => {
    for (let k = 0; k < samples.length; k++)
      outputDeviation('relativeL2', references[k]!, await session.run(samples[k]!));
  };
  await sweep.deviation(points[0]!.index, points[0]!.restored, 'relativeL2'); // warm-up
  // The two loops alternate, REPEATS times each: best and median of each.
  const sweepTimes: number[] = [];
  const plainTimes: number[] = [];
  for (let repeat = 0; repeat < REPEATS; repeat++) {
    start = process.hrtime.bigint();
    for (const point of points) await sweep.deviation(point.index, point.restored, 'relativeL2');
    sweepTimes.push(seconds(start));
    // Plain inference of the unchanged model, as many runs, with the same comparison.
    start = process.hrtime.bigint();
    for (let i = 0; i < points.length; i++) await compareAll(plain);
    plainTimes.push(seconds(start));
  }
  await sweep.release();
  await plain.release();
  const oneSession = Math.min(...sweepTimes);
  const plainRuns = Math.min(...plainTimes);
  const oneSessionMedian = median(sweepTimes);
  const plainMedian = median(plainTimes);
  // Naive: a model and a session per configuration.
  const naiveCount = Math.min(points.length, 40);
  start = process.hrtime.bigint();
  for (const point of points.slice(0, naiveCount)) {
    const copy = decoded.editableCopy();
    const proto = copy.slots[point.index]!.proto!;
    proto.rawData = new Uint8Array(
      point.restored.buffer,
      point.restored.byteOffset,
      point.restored.byteLength,
    );
    proto.floatData = [];
    const session = await ort.InferenceSession.create(onnx.ModelProto.encode(copy.proto).finish(), {
      executionProviders: ['cpu'],
      logSeverityLevel: 4,
    });
    await compareAll(session);
    await session.release();
  }
  const naive = (seconds(start) * points.length) / naiveCount;
  clearSensitivityCache();
  start = process.hrtime.bigint();
  const result = await computeSensitivity(path, { indices: [], measured: true }, { settings });
  const total = seconds(start);
  const ms = (s: number): string => (s * 1000).toFixed(1);
  const k = points.length;
  return [
    [label, `${tensors.length} × ≤${DEFAULT_SWEEP.length} = ${k} points`, '', ''],
    ['', 'Ŵ for every point (kernels, SVDs)', ms(prepare), ''],
    [
      '',
      `one-session sweep (${k} points × ${samples.length} samples + deviation), best of ${REPEATS}`,
      ms(oneSession),
      (oneSession / plainRuns).toFixed(2),
    ],
    ['', `plain inference × ${k} × ${samples.length}, best of ${REPEATS}`, ms(plainRuns), '1.00'],
    [
      '',
      `one-session sweep, median of ${REPEATS}`,
      ms(oneSessionMedian),
      (oneSessionMedian / plainMedian).toFixed(2),
    ],
    ['', `plain inference, median of ${REPEATS}`, ms(plainMedian), '1.00'],
    [
      '',
      `rebuild per config × ${k}${naiveCount < k ? ` (${naiveCount} timed, scaled)` : ''}`,
      ms(naive),
      (naive / plainRuns).toFixed(2),
    ],
    [
      '',
      `computeSensitivity end to end (${result.runs} runs, ${result.sessions} session)`,
      ms(total),
      '',
    ],
  ];
}

async function main(): Promise<void> {
  const folder = await mkdtemp(join(tmpdir(), 'layerlens-bench-sensitivity-'));
  try {
    const rows = [['MODEL', 'STEP', 'MS', '× PLAIN']];
    rows.push(
      ...(await bench(
        'Silero VAD v5',
        resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx'),
        DEFAULT_SETTINGS,
      )),
    );
    const mlp = await writeMlp(folder, WIDTH);
    for (const batch of BATCHES) {
      rows.push(
        ...(await bench(`MLP 4 × ${WIDTH}², batch ${batch}`, mlp, {
          ...DEFAULT_SETTINGS,
          'validation.dimensions': { batch },
        })),
      );
    }
    console.log(
      `Sensitivity sweep, cpu, ${new Date().toISOString()} (times on a shared machine are noisy)`,
    );
    printTable(rows);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

void main();
