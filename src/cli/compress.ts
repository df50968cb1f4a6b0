/**
 * `layerlens compress FILE --method M [--level L] [--layers REGEX] [--out FILE] [--json]`
 * with the validation settings as flags: `--inputs DIR`, `--dim NAME=N`,
 * `--shape NAME=AxBxC`, `--value NAME=V` (each may repeat), `--int4-format F`.
 */
import { resolve } from 'node:path';
import {
  COMPRESSION_METHODS,
  isCompressionMethod,
  type CompressionMethod,
  type CompressionOptions,
  type CompressionReport,
} from '../shared/compress';
import {
  GGML_QUANT_TYPES,
  INT4_BLOCK_SIZES,
  INT4_FORMATS,
  METHOD_DEFAULTS,
  METHOD_INFO,
  optionsProblem,
} from '../shared/compressMethods';
import { describeMethods, NOT_VALIDATED_EXIT_CODE, verdictLine } from '../shared/compressText';
import { formatBytes, formatRatio, formatSizeChange } from '../shared/format';
import { DEFAULT_SETTINGS, type LayerLensSettings } from '../shared/settings';
import { compressModel } from '../server/compress';
import { printTable } from './table';

export const COMPRESS_USAGE = `Usage: layerlens compress FILE --method prune|nm|int8|int4|lowrank|fp16|bf16|ggml
                          [--level L] [--layers REGEX] [--out FILE] [--json]
                          [--inputs DIR] [--dim NAME=N] [--shape NAME=AxB] [--value NAME=V]
                          [--int4-format matmulnbits|dequantizelinear] [--ggml-type TYPE]
                          [--imatrix FILE]

  compress   Write a compressed copy of the model next to it (never overwriting a file),
             validate it in onnxruntime against the original, and print the report
  --level    prune: sparsity in [0, 1) (default 0.5)
             nm: N:M, e.g. 2:4 (default)
             int4: block size ${INT4_BLOCK_SIZES.join(', ')} (default ${METHOD_DEFAULTS.blockSize})
             lowrank: a rank (integer, e.g. 8) or an energy to keep (e.g. 0.9, default)
             ggml: a llama.cpp type, as --ggml-type
             int8, fp16, bf16: no level
  --ggml-type  ggml: the type the chosen F32/F16/BF16 tensors of a GGUF are re-typed to,
             ${GGML_QUANT_TYPES.join(', ')} (default ${METHOD_INFO.ggml.defaults.ggmlType});
             the new GGUF keeps the metadata and every other tensor
  --imatrix  ggml: llama-imatrix's importance matrix (.dat or GGUF form); the scale fits
             are weighted by it as llama.cpp's quantizers do
  --layers   Only tensors whose name matches the regular expression
  --out      Output path (default <name>.<method>.<ext>, then -1, -2… when taken)
  --inputs   Folder of sample inputs (<input>.npy/.json, or .npz) for validation
  --dim      Size of a named symbolic input dimension (default batch=1, sequence=512)
  --shape    Shape of a generated input, e.g. input=1x512
  --value    Constant value of a generated input (default sr=16000)

  The report starts with the verdict: "validated" only when the outputs were compared on
  sample inputs that could show a difference (outputs that vary across the samples, are
  not pinned at a bound, and are moved by the compressed weights); otherwise "NOT
  validated" and why. Deviations are the worst over the samples, with the mean beside.
  Exit status: 0 written and validated; ${NOT_VALIDATED_EXIT_CODE} written but NOT validated (e.g. outputs pinned
  at a bound, or a safetensors file, which has no graph to run); 1 unreadable file or
  nothing written; 2 wrong usage.`;

export class UsageError extends Error {}

function isInt4Format(value: string): value is (typeof INT4_FORMATS)[number] {
  return (INT4_FORMATS as readonly string[]).includes(value);
}

/** The options `--level` means for each method (see COMPRESS_USAGE). */
export function optionsFromLevel(
  method: CompressionMethod,
  level: string | undefined,
): CompressionOptions {
  const number = (text: string): number => {
    const value = Number(text);
    if (text.trim() === '' || !Number.isFinite(value))
      throw new UsageError(`--level ${text} is not a number`);
    return value;
  };
  if (level === undefined) return { method };
  switch (method) {
    case 'prune':
      return { method, sparsity: number(level) };
    case 'nm': {
      const match = /^(\d+):(\d+)$/.exec(level);
      if (!match) throw new UsageError(`--level for nm is N:M, e.g. 2:4, not ${level}`);
      return { method, n: Number(match[1]), m: Number(match[2]) };
    }
    case 'int4':
      return { method, blockSize: number(level) };
    case 'ggml':
      return { method, ggmlType: level };
    case 'lowrank':
      return /^\d+$/.test(level)
        ? { method, rank: Number(level) }
        : { method, energy: number(level) };
    default:
      throw new UsageError(`--level does not apply to ${method}`);
  }
}

interface ParsedArgs {
  file: string;
  method: CompressionMethod;
  level?: string;
  layers?: string;
  out?: string;
  json: boolean;
  int4Format?: 'matmulnbits' | 'dequantizelinear';
  imatrixPath?: string;
  settings: Partial<LayerLensSettings>;
}

function keyValue(flag: string, text: string): [string, string] {
  const at = text.indexOf('=');
  if (at <= 0) throw new UsageError(`${flag} takes NAME=VALUE, not ${text}`);
  return [text.slice(0, at), text.slice(at + 1)];
}

/**
 * The validation settings as flags (`--inputs DIR`, `--dim NAME=N`, `--shape NAME=AxB`,
 * `--value NAME=X`), shared by the commands that run models on sample inputs: `take`
 * consumes one flag with its value (false: not one of them), `settings` gives the result.
 */
export function validationFlags(): {
  take(arg: string, value: string): boolean;
  settings(): Partial<LayerLensSettings>;
} {
  let inputs = '';
  const dims: Record<string, number> = { ...DEFAULT_SETTINGS['validation.dimensions'] };
  const shapes: Record<string, number[]> = {};
  const inputValues: Record<string, number> = { ...DEFAULT_SETTINGS['validation.inputValues'] };
  return {
    take(arg, value) {
      switch (arg) {
        case '--inputs':
          inputs = resolve(value);
          return true;
        case '--dim': {
          const [name, size] = keyValue(arg, value);
          dims[name] = Number(size);
          if (!Number.isInteger(dims[name]) || dims[name]! < 1)
            throw new UsageError(`--dim ${value}: the size must be a positive integer`);
          return true;
        }
        case '--shape': {
          const [name, shape] = keyValue(arg, value);
          shapes[name] = shape === '' ? [] : shape.split(/[x,]/).map(Number);
          if (shapes[name]!.some((d) => !Number.isInteger(d) || d < 0))
            throw new UsageError(`--shape ${value}: sizes are integers, e.g. input=1x512`);
          return true;
        }
        case '--value': {
          const [name, v] = keyValue(arg, value);
          inputValues[name] = Number(v);
          if (!Number.isFinite(inputValues[name]))
            throw new UsageError(`--value ${value}: not a number`);
          return true;
        }
        default:
          return false;
      }
    },
    settings: () => ({
      'validation.inputsFolder': inputs,
      'validation.dimensions': dims,
      'validation.shapes': shapes,
      'validation.inputValues': inputValues,
    }),
  };
}

export function parseCompressArgs(args: readonly string[]): ParsedArgs {
  const files: string[] = [];
  const values: Record<string, string> = {};
  const validation = validationFlags();
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) {
      files.push(arg);
      continue;
    }
    if (arg === '--json') {
      json = true;
      continue;
    }
    const value = args[++i];
    if (value === undefined) throw new UsageError(`${arg} needs a value`);
    if (validation.take(arg, value)) continue;
    switch (arg) {
      case '--method':
      case '--level':
      case '--layers':
      case '--out':
      case '--int4-format':
      case '--ggml-type':
      case '--imatrix':
        values[arg] = value;
        break;
      default:
        throw new UsageError(`unknown option ${arg}`);
    }
  }
  if (files.length !== 1) throw new UsageError('compress takes one model file');
  const method = values['--method'];
  if (!isCompressionMethod(method))
    throw new UsageError(`--method must be one of ${COMPRESSION_METHODS.join(', ')}`);
  const format = values['--int4-format'];
  if (format !== undefined && !isInt4Format(format)) {
    throw new UsageError(`--int4-format must be ${INT4_FORMATS.join(' or ')}`);
  }
  const ggmlType = values['--ggml-type'];
  if (ggmlType !== undefined && method !== 'ggml') {
    throw new UsageError('--ggml-type applies to --method ggml');
  }
  if (ggmlType !== undefined && values['--level'] !== undefined) {
    throw new UsageError('give the type once: --ggml-type or --level');
  }
  return {
    file: files[0]!,
    method,
    level: values['--level'] ?? ggmlType,
    layers: values['--layers'],
    out: values['--out'],
    json,
    int4Format: format,
    ...(values['--imatrix'] !== undefined ? { imatrixPath: resolve(values['--imatrix']) } : {}),
    settings: validation.settings(),
  };
}

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return '0';
  return Math.abs(value) >= 1e-3 && Math.abs(value) < 1e4
    ? value.toPrecision(4)
    : value.toExponential(2);
}

export function printCompressionReport(report: CompressionReport): void {
  const done = report.tensors.filter((t) => !t.skipped);
  const before = done.reduce((s, t) => s + t.bytesBefore, 0);
  const after = done.reduce((s, t) => s + t.bytesAfter, 0);
  console.log(`${report.output}`);
  console.log(
    `  ${describeMethods(report)}: file ${formatSizeChange(report.fileBytesBefore, report.fileBytesAfter)}; ` +
      `${done.length} tensors ${formatBytes(before)} → ${formatBytes(after)}` +
      (after > 0 ? ` (${formatRatio(before, after)})` : ''),
  );
  console.log(`  verdict: ${verdictLine(report.verdict)}`);
  console.log(`  inputs: ${report.inputs}`);
  for (const line of report.validation) console.log(`  validation: ${line}`);
  console.log(`  report: ${report.reportPath}`);
  console.log('');
  const mean = (value: number | undefined, format: (v: number) => string) =>
    value === undefined ? '—' : format(value);
  const rows = [
    [
      'OUTPUT',
      'SAMPLES',
      'WORST MAX ABS DIFF',
      'WORST REL L2',
      'MEAN REL L2',
      'WORST COSINE',
      'MEAN COSINE',
    ],
  ];
  for (const o of report.outputs)
    rows.push([
      o.output,
      o.samples === undefined ? '—' : String(o.samples),
      formatNumber(o.maxAbsDiff),
      formatNumber(o.relativeL2),
      mean(o.meanRelativeL2, formatNumber),
      o.cosine.toFixed(6),
      mean(o.meanCosine, (v) => v.toFixed(6)),
    ]);
  if (report.outputs.length > 0) printTable(rows);
  console.log('');
  const tensorRows = [['TENSOR', 'BEFORE', 'AFTER', 'REL ERROR', 'DETAIL']];
  for (const t of done)
    tensorRows.push([
      t.name,
      formatBytes(t.bytesBefore),
      formatBytes(t.bytesAfter),
      formatNumber(t.relativeError),
      t.detail,
    ]);
  printTable(tensorRows);
  const skipped = new Map<string, number>();
  for (const t of report.tensors)
    if (t.skipped) skipped.set(t.detail, (skipped.get(t.detail) ?? 0) + 1);
  for (const [reason, count] of skipped) console.log(`  skipped ${count}: ${reason}`);
}

/** Run `layerlens compress …`; returns the exit code. */
export async function compressCommand(args: readonly string[]): Promise<number> {
  let parsed: ParsedArgs;
  let options: CompressionOptions;
  try {
    parsed = parseCompressArgs(args);
    options = optionsFromLevel(parsed.method, parsed.level);
    if (parsed.int4Format) options = { ...options, int4Format: parsed.int4Format };
    if (parsed.imatrixPath) options = { ...options, imatrixPath: parsed.imatrixPath };
    const problem = optionsProblem(options);
    if (problem) throw new UsageError(`${parsed.method}: ${problem}`);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`layerlens: ${error.message}\n\n${COMPRESS_USAGE}`);
    return 2;
  }
  const report = await compressModel(
    resolve(parsed.file),
    {
      tensors: [],
      ...(parsed.layers !== undefined ? { tensorPattern: parsed.layers } : {}),
      options,
      ...(parsed.out !== undefined ? { outPath: resolve(parsed.out) } : {}),
    },
    { settings: parsed.settings },
  );
  if (parsed.json) console.log(JSON.stringify(report, null, 2));
  else printCompressionReport(report);
  return report.verdict.validated ? 0 : NOT_VALIDATED_EXIT_CODE;
}
