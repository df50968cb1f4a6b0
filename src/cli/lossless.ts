/**
 * The lossless commands of `layerlens`:
 *
 *   layerlens pack FILE [--out OUT] [--base BASE]
 *   layerlens unpack FILE.llz [--out OUT] [--base BASE] [--tensor NAME]
 *   layerlens compressibility FILE [--json]
 *   layerlens delta FILE.llz [--base BASE] [--json]
 */
import { resolve } from 'node:path';
import { formatBytes, formatPercent, formatStat, MISSING } from '../shared/format';
import { MAX_COMPRESSIBILITY_BATCH, MAX_PAGE_SIZE } from '../shared/limits';
import {
  isCompressibilityError,
  totalCompressibility,
  type CompressibilityResult,
  type DeltaStatsResult,
} from '../shared/lossless';
import type { TensorInfo } from '../shared/model';
import { LosslessService } from '../server/lossless/service';
import type { LosslessPool } from '../server/lossless/jobs';
import type { ModelService } from '../server/modelService';
import { printTable } from './table';

export const LOSSLESS_COMMANDS = ['pack', 'unpack', 'compressibility', 'delta'] as const;

export const LOSSLESS_USAGE = `       layerlens pack FILE [--out OUT] [--base BASE]
       layerlens unpack FILE.llz [--out OUT] [--base BASE] [--tensor NAME]
       layerlens compressibility FILE [--json]
       layerlens delta FILE.llz [--base BASE] [--json]

  pack             Pack a .safetensors or .onnx file losslessly into FILE.llz (byte
                   grouping + entropy coding); with --base, tensors matching the base
                   model are stored as XOR deltas (a fine-tune against its base)
  unpack           Restore the original file byte for byte (checked chunk by chunk); with
                   --tensor, write only that tensor's raw bytes to --out
  compressibility  Per tensor: exponent-stream entropy (bits) and the packed ratio
  delta            Per tensor of a delta: norm of the difference from the base model`;

interface ParsedArgs {
  readonly files: string[];
  readonly options: Map<string, string>;
  readonly flags: Set<string>;
}

const VALUE_OPTIONS = new Set(['--out', '--base', '--tensor']);
const FLAG_OPTIONS = new Set(['--json']);

function parseArgs(args: readonly string[]): ParsedArgs | string {
  const parsed: ParsedArgs = { files: [], options: new Map(), flags: new Set() };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (VALUE_OPTIONS.has(arg)) {
      const value = args[++i];
      if (value === undefined) return `${arg} needs a value`;
      parsed.options.set(arg, value);
    } else if (FLAG_OPTIONS.has(arg)) parsed.flags.add(arg);
    else if (arg.startsWith('--')) return `unknown option ${arg}`;
    else parsed.files.push(arg);
  }
  return parsed;
}

async function allTensors(models: ModelService, path: string): Promise<TensorInfo[]> {
  const summary = await models.openModel(path);
  const tensors: TensorInfo[] = [];
  while (tensors.length < summary.tensorCount) {
    tensors.push(...(await models.tensors(path, tensors.length, MAX_PAGE_SIZE)).tensors);
  }
  return tensors;
}

async function inBatches<R>(
  tensors: readonly TensorInfo[],
  request: (indices: number[]) => Promise<R[]>,
): Promise<R[]> {
  const results: R[] = [];
  for (let start = 0; start < tensors.length; start += MAX_COMPRESSIBILITY_BATCH) {
    const batch = tensors.slice(start, start + MAX_COMPRESSIBILITY_BATCH);
    results.push(...(await request(batch.map((tensor) => tensor.index))));
  }
  return results;
}

const ratioText = (value: number | null) => (value === null ? MISSING : value.toFixed(4));

async function compressibility(
  models: ModelService,
  lossless: LosslessService,
  path: string,
  json: boolean,
): Promise<void> {
  const tensors = await allTensors(models, path);
  const results = await inBatches<CompressibilityResult>(tensors, (indices) =>
    lossless.compressibility(path, indices),
  );
  const total = totalCompressibility(results);
  if (json) {
    console.log(
      JSON.stringify(
        {
          file: path,
          ...total,
          tensors: tensors.map((tensor, i) => ({
            name: tensor.name,
            dtype: tensor.dtype,
            ...results[i],
          })),
        },
        null,
        2,
      ),
    );
    return;
  }
  console.log(
    `${path}: ${formatBytes(total.rawBytes)} of tensor data packs to ${formatBytes(total.packedBytes)} (ratio ${total.ratio.toFixed(4)})`,
  );
  console.log('');
  const rows = tensors.map((tensor, i) => {
    const result = results[i]!;
    if (isCompressibilityError(result))
      return [tensor.name, tensor.dtype, `(${result.error})`, '', '', ''];
    return [
      tensor.name,
      tensor.dtype,
      formatBytes(result.rawBytes),
      result.exponentEntropyBits === null ? MISSING : result.exponentEntropyBits.toFixed(3),
      ratioText(result.boundRatio),
      ratioText(result.ratio),
    ];
  });
  printTable([['TENSOR', 'DTYPE', 'BYTES', 'EXP.ENTROPY', 'BOUND', 'RATIO'], ...rows]);
}

async function delta(
  models: ModelService,
  lossless: LosslessService,
  path: string,
  base: string | undefined,
  json: boolean,
): Promise<void> {
  const tensors = await allTensors(models, path);
  const results = await inBatches<DeltaStatsResult>(tensors, (indices) =>
    lossless.deltaStats(path, indices, base),
  );
  if (json) {
    console.log(
      JSON.stringify(
        { file: path, tensors: tensors.map((t, i) => ({ name: t.name, ...results[i] })) },
        null,
        2,
      ),
    );
    return;
  }
  const rows = tensors.map((tensor, i) => {
    const result = results[i]!;
    if ('error' in result) return [tensor.name, `(${result.error})`, '', ''];
    return [
      tensor.name,
      formatStat(result.deltaNorm),
      result.relativeDelta === null ? MISSING : formatStat(result.relativeDelta),
      formatPercent(result.identicalFraction),
    ];
  });
  printTable([['TENSOR', '‖Δ‖_F', '‖Δ‖/‖W‖', 'IDENTICAL'], ...rows]);
}

/** Run one lossless command; returns the exit status (2: usage error). */
export async function losslessMain(
  command: (typeof LOSSLESS_COMMANDS)[number],
  args: readonly string[],
  models: ModelService,
  pool?: LosslessPool,
): Promise<number> {
  const parsed = parseArgs(args);
  if (typeof parsed === 'string' || parsed.files.length !== 1) {
    console.error(
      typeof parsed === 'string' ? `layerlens: ${parsed}` : `Usage:\n${LOSSLESS_USAGE}`,
    );
    return 2;
  }
  const file = resolve(parsed.files[0]!);
  // --out is relative to the working directory (the library's own default: the model's folder).
  const givenOut = parsed.options.get('--out');
  const out = givenOut === undefined ? undefined : resolve(givenOut);
  const base = parsed.options.get('--base');
  const tensor = parsed.options.get('--tensor');
  const json = parsed.flags.has('--json');
  const lossless = new LosslessService(models, models.workerCount, pool);
  const progress = (done: number, total: number) => {
    if (process.stderr.isTTY)
      process.stderr.write(`\r${formatPercent(total ? done / total : 1)}   `);
  };
  try {
    switch (command) {
      case 'pack': {
        const result = await lossless.pack(file, { out, base, onProgress: progress });
        if (process.stderr.isTTY) process.stderr.write('\r');
        console.log(
          `${result.out}: ${formatBytes(result.originalBytes)} → ${formatBytes(result.packedBytes)} ` +
            `(ratio ${(result.packedBytes / Math.max(1, result.originalBytes)).toFixed(4)}), ` +
            `${result.tensors} tensors${result.base ? `, ${result.deltaTensors} as deltas of ${result.base}` : ''}; ` +
            `chunk digest ${result.digest}`,
        );
        return 0;
      }
      case 'unpack': {
        if (tensor !== undefined && out === undefined) {
          console.error('layerlens: --tensor needs --out FILE for the tensor bytes');
          return 2;
        }
        const result =
          tensor !== undefined
            ? await lossless.extract(file, tensor, { out: out!, base, onProgress: progress })
            : await lossless.unpack(file, { out, base, onProgress: progress });
        if (process.stderr.isTTY) process.stderr.write('\r');
        console.log(
          `${result.out}: ${formatBytes(result.bytes)}; verified, digest ${result.digest}`,
        );
        return 0;
      }
      case 'compressibility':
        await compressibility(models, lossless, file, json);
        return 0;
      case 'delta':
        await delta(models, lossless, file, base, json);
        return 0;
    }
  } finally {
    lossless.dispose();
  }
}
