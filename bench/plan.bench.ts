/**
 * The planner against uniform compression at the same file size: on Silero VAD v5 and on a
 * generated MLP, uniform fp16 (≈2×) and uniform int8 (≈4×) are written first, then a plan
 * is made (measured sensitivity) with the uniform file's size as its target and applied.
 * Both files' whole-model deviations are measured in onnxruntime on the same sample
 * inputs (relative L2, worst output).
 *
 *   node --import tsx bench/plan.bench.ts [width]     (default 256: the MLP's hidden width)
 *
 * Then the same at exactly 2× and 4× the original size, against the least compressed
 * uniform file that fits (fp16, int8 or int4 blocks of 32).
 *
 * Columns: model; target (its byte limit); the plan's file bytes and measured deviation;
 * the uniform method, its bytes and deviation; the attempts apply made; the time to plan
 * (sensitivity sweep included) and to apply (every attempt included).
 */
import { copyFile, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { onnx } from 'onnx-proto';
import { printTable } from '../src/cli/table';
import { compressModel } from '../src/server/compress';
import { ONNX_DATA_TYPE } from '../src/server/formats/onnxDataTypes';
import { planModel } from '../src/server/plan';
import { applyRecipe } from '../src/server/plan/apply';
import { seededNormal } from '../src/server/runtime/sampleInputs';
import { outputDeviation } from '../src/server/sensitivity/deviation';
import { clearSensitivityCache } from '../src/server/sensitivity';
import type { CompressionMethod } from '../src/shared/compress';
import { formatStat } from '../src/shared/format';
import { onnx as proto } from 'onnx-proto';

const WIDTH = Number(process.argv[2] ?? 256);

/** Uniform methods from the least to the most compressed (int4: blocks of 32). */
const UNIFORM_METHODS: readonly CompressionMethod[] = ['fp16', 'int8', 'int4'];

function weight(name: string, rows: number, cols: number, seed: number): onnx.ITensorProto {
  const normal = seededNormal(seed);
  const values = new Float32Array(rows * cols);
  const scale = 1 / Math.sqrt(rows);
  for (let i = 0; i < values.length; i++) values[i] = normal() * scale;
  return {
    name,
    dataType: ONNX_DATA_TYPE.FLOAT,
    dims: [rows, cols],
    rawData: new Uint8Array(values.buffer),
  };
}

function io(name: string, shape: number[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ONNX_DATA_TYPE.FLOAT,
        shape: { dim: shape.map((d) => ({ dimValue: d })) },
      },
    },
  };
}

/** A 4-layer tanh MLP, input 64 → WIDTH → WIDTH → WIDTH → 32, batch 16. */
async function writeMlp(path: string): Promise<void> {
  const sides = [64, WIDTH, WIDTH, WIDTH, 32];
  const nodes: onnx.INodeProto[] = [];
  const initializer: onnx.ITensorProto[] = [];
  let input = 'x';
  for (let layer = 0; layer < 4; layer++) {
    const w = `w${layer}`;
    initializer.push(weight(w, sides[layer]!, sides[layer + 1]!, layer + 1));
    const product = `h${layer}`;
    nodes.push({ opType: 'MatMul', input: [input, w], output: [product], name: `fc${layer}` });
    if (layer < 3) {
      nodes.push({ opType: 'Tanh', input: [product], output: [`a${layer}`], name: `tanh${layer}` });
      input = `a${layer}`;
    } else input = product;
  }
  const model: onnx.IModelProto = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'mlp',
      node: nodes,
      initializer,
      input: [io('x', [16, 64])],
      output: [io(input, [16, 32])],
    },
  };
  await writeFile(path, proto.ModelProto.encode(model).finish());
}

async function uniform(
  path: string,
  method: CompressionMethod,
  outPath: string,
): Promise<{ bytes: number; deviation: number }> {
  let deviation = NaN;
  const report = await compressModel(
    path,
    { tensors: [], options: { method }, outPath },
    {
      onValidationOutputs: (reference, result) => {
        deviation = outputDeviation('relativeL2', reference, result);
      },
    },
  );
  return { bytes: report.fileBytesAfter, deviation };
}

async function main(): Promise<void> {
  const folder = await mkdtemp(join(tmpdir(), 'layerlens-plan-bench-'));
  try {
    const models: [string, string][] = [];
    const silero = join(folder, 'silero_vad_v5.onnx');
    await copyFile('node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx', silero);
    models.push(['Silero VAD v5', silero]);
    const mlp = join(folder, `mlp-${WIDTH}.onnx`);
    await writeMlp(mlp);
    models.push([`MLP 64→${WIDTH}×3→32`, mlp]);
    const rows: string[][] = [];
    for (const [label, path] of models) {
      const fileBytes = (await stat(path)).size;
      const slug = label.replace(/\W+/g, '_');
      const uniforms = new Map<CompressionMethod, { bytes: number; deviation: number }>();
      for (const method of UNIFORM_METHODS)
        uniforms.set(method, await uniform(path, method, join(folder, `${slug}.${method}.onnx`)));
      // At the size of uniform fp16 (≈2×) and int8 (≈4×), then at exactly 2× and 4×
      // against the least compressed uniform file that fits.
      const targets: { tag: string; limit: number; method: CompressionMethod }[] = [
        { tag: '≈2× (uniform fp16 size)', limit: uniforms.get('fp16')!.bytes, method: 'fp16' },
        { tag: '≈4× (uniform int8 size)', limit: uniforms.get('int8')!.bytes, method: 'int8' },
      ];
      for (const ratio of [2, 4]) {
        const limit = Math.floor(fileBytes / ratio);
        const fitting = UNIFORM_METHODS.find((m) => uniforms.get(m)!.bytes <= limit) ?? 'int4';
        targets.push({ tag: `${ratio}× exactly`, limit, method: fitting });
      }
      for (const { tag, limit, method } of targets) {
        const u = uniforms.get(method)!;
        clearSensitivityCache();
        let started = performance.now();
        const plan = await planModel(path, {
          target: { kind: 'sizeMB', value: limit / 1e6 },
          measured: true,
          metric: 'relativeL2',
        });
        const planMs = performance.now() - started;
        started = performance.now();
        const applied = await applyRecipe(path, plan.recipe, {
          refine: true,
          outPath: join(folder, `${slug}.${rows.length}.plan.onnx`),
        });
        const applyMs = performance.now() - started;
        const kept = applied.attempts.find((a) => a.output === applied.report.output)!;
        rows.push([
          label,
          `${tag}: ≤ ${limit} B`,
          String(applied.report.fileBytesAfter),
          formatStat(kept.deviation, 4),
          `uniform ${method === 'int4' ? 'int4 b32' : method}`,
          String(u.bytes),
          formatStat(u.deviation, 4),
          `${applied.attempts.length}`,
          `${(planMs / 1000).toFixed(1)} s`,
          `${(applyMs / 1000).toFixed(1)} s`,
        ]);
      }
    }
    printTable([
      [
        'MODEL',
        'TARGET',
        'PLAN BYTES',
        'PLAN DEVIATION',
        'UNIFORM',
        'UNIFORM BYTES',
        'UNIFORM DEVIATION',
        'ATTEMPTS',
        'PLAN TIME',
        'APPLY TIME',
      ],
      ...rows,
    ]);
    console.log(
      '\nDeviation: relative L2 of the worst model output against the original on the validation sample inputs (generated, seed 0).',
    );
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

void main();
