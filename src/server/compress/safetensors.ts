/**
 * Compression of a safetensors model into a new safetensors file that Hugging Face's
 * `safetensors` (and LayerLens) load. safetensors has no graph, so every method stores
 * tensors the consumer reads as they are:
 *
 * - prune, nm: the zeros written into the original dtype; kept values are bit-identical.
 * - int8, int4: fake quantization — the values int8 per output channel (or int4 per block)
 *   round-trips to, stored back in the original dtype.
 * - int8 with `storeQuantized`: real int8 storage, the convention written into the file's
 *   `__metadata__` (INT8_CONVENTION): `<name>` holds the I8 values q, `<name>.scale` the
 *   F32 scales s, one per output channel (first axis); the weight is q · s[channel].
 * - lowrank: the rank-r reconstruction W_r = A·B stored in place of W.
 * - fp16, bf16: floating-point tensors cast to F16 / BF16.
 *
 * Matrices: a weight of shape [out, in, …] is seen as out × (in·…), its input dimension
 * running along each row (N:M groups and int4 blocks follow the last axes, flattened).
 * One-dimensional tensors (biases, norms) are kept by every method but prune and the casts.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type {
  CompressionOptions,
  CompressionReport,
  TensorCompressionResult,
} from '../../shared/compress';
import { MAX_IN_MEMORY_TENSOR_BYTES, MAX_SAFETENSORS_HEADER_BYTES } from '../../shared/limits';
import { storedTypeOf } from '../../shared/model';
import { safetensorsFormat } from '../formats/safetensors';
import { writeSafetensorsFile, type TensorToWrite } from '../formats/safetensorsWriter';
import { ModelFileError, type OpenedModel, type TensorEntry } from '../formats/types';
import { parseFileJson } from '../formats/jsonText';
import { storedTensor } from '../formats/decodedValues';
import { quantizedProblem } from './methods/types';
import { INT8_CONVENTION, INT8_METADATA_KEY } from '../formats/safetensorsInt8';
import { WorkerPool } from '../jobs/workerPool';
import type { CompressContext } from './context';
import {
  compressWorkerScript,
  INT8_SCALE_SUFFIX,
  type TensorJob,
  type TensorJobResult,
} from './safetensorsTensor';
import { reportMethods, withOutputFiles, writeUnrunReport, type ChoicesOutput } from './output';
import { FLOAT_DTYPES } from './safetensorsValues';
import { checkMethodOptions } from '../../shared/compressMethods';

// The int8 storage convention lives with the reader that decodes it.
export { INT8_CONVENTION } from '../formats/safetensorsInt8';

/** The tensor's bytes, read from its file range (or built in memory). */
async function readTensorBytes(entry: TensorEntry): Promise<Uint8Array> {
  const { data } = entry;
  if (data.length > MAX_IN_MEMORY_TENSOR_BYTES) {
    throw new ModelFileError(
      data.kind === 'file' ? data.path : entry.info.file,
      `tensor "${entry.info.name}" is ${data.length} bytes, more than the ${MAX_IN_MEMORY_TENSOR_BYTES} bytes LayerLens compresses in memory`,
    );
  }
  if (data.kind === 'memory') return data.load();
  const handle = await fs.open(data.path, 'r');
  try {
    const bytes = new Uint8Array(data.length);
    let filled = 0;
    while (filled < data.length) {
      const { bytesRead } = await handle.read(
        bytes,
        filled,
        data.length - filled,
        data.offset + filled,
      );
      if (bytesRead === 0) {
        throw new ModelFileError(data.path, `the file ended inside tensor "${entry.info.name}"`);
      }
      filled += bytesRead;
    }
    return bytes;
  } finally {
    await handle.close();
  }
}

/** The `__metadata__` of a safetensors file (string values; others as JSON text). */
async function readMetadata(file: string): Promise<Record<string, string>> {
  const handle = await fs.open(file, 'r');
  try {
    const lengthBytes = new Uint8Array(8);
    await handle.read(lengthBytes, 0, 8, 0);
    const length = Number(new DataView(lengthBytes.buffer).getBigUint64(0, true));
    if (length > MAX_SAFETENSORS_HEADER_BYTES) {
      throw new ModelFileError(file, `the header claims ${length} bytes, more than the limit`);
    }
    const text = new Uint8Array(length);
    await handle.read(text, 0, length, 8);
    const header = parseFileJson(file, new TextDecoder().decode(text), 'the header') as Record<
      string,
      unknown
    >;
    const metadata = header.__metadata__;
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) return {};
    return Object.fromEntries(
      Object.entries(metadata).map(([key, value]) => [
        key,
        typeof value === 'string' ? value : JSON.stringify(value),
      ]),
    );
  } finally {
    await handle.close();
  }
}

/**
 * Why no compressed copy of the safetensors model at `source` can be written (a sharded
 * model opened through its index), or undefined: the writer refuses with it, and the
 * planner offers no option for such a model.
 */
export function safetensorsWriteProblem(source: string): string | undefined {
  return source.toLowerCase().endsWith('.json')
    ? 'compressing a sharded model through its index is not supported; compress its shard files one by one'
    : undefined;
}

/**
 * Compress each tensor of `targets` (tensor index → its options) into one new file and
 * report; `compressSafetensors` is the case of one options for every tensor.
 */
export async function compressSafetensorsChoices(
  source: string,
  model: OpenedModel,
  targets: ReadonlyMap<number, CompressionOptions>,
  context: CompressContext,
  output: ChoicesOutput,
  /** A source that is not a safetensors file: its metadata, and the new file's extension. */
  foreign?: { readonly metadata: Record<string, string>; readonly extension: string },
): Promise<CompressionReport> {
  const started = performance.now();
  const { signal, onProgress } = context;
  const refused = safetensorsWriteProblem(source);
  if (refused) throw new ModelFileError(source, refused);
  for (const options of targets.values()) checkMethodOptions(options);
  if (targets.size === 0) {
    throw new ModelFileError(source, 'the request names no tensor of this model');
  }
  const storesInt8 = (index: number): boolean => {
    const options = targets.get(index);
    return options?.method === 'int8' && options.storeQuantized === true;
  };
  const names = new Set(model.tensors.map((entry) => entry.info.name));
  for (const entry of model.tensors) {
    const scaleName = `${entry.info.name}${INT8_SCALE_SUFFIX}`;
    if (storesInt8(entry.info.index) && names.has(scaleName)) {
      throw new ModelFileError(
        source,
        `tensor "${scaleName}" already exists, so "${entry.info.name}" cannot get its int8 scales under that name`,
      );
    }
  }
  const metadata = foreign?.metadata ?? (await readMetadata(source));

  const outputMetadata: Record<string, string> = { ...metadata };
  if (model.tensors.some((entry) => storesInt8(entry.info.index)))
    outputMetadata[INT8_METADATA_KEY] = INT8_CONVENTION;
  if (!outputMetadata.format) outputMetadata.format = 'pt';

  return withOutputFiles(
    source,
    output,
    async (files) => {
      // Compressed tensors go to a scratch file as they are made, so that memory holds one
      // tensor at a time; the model is then written from it (and from the source for the
      // tensors that stay as they are) once the header is known.
      const scratchPath = files.temp(`${files.path}.scratch`);
      const scratch = await fs.open(scratchPath, 'wx+');
      const plan: TensorToWrite[] = [];
      const results: TensorCompressionResult[] = [];
      let scratchBytes = 0;
      let fileBytesAfter = 0;
      let pool: WorkerPool<TensorJob, TensorJobResult> | undefined;
      const fromScratch = (offset: number, length: number) => async (): Promise<Uint8Array> => {
        const bytes = new Uint8Array(length);
        let filled = 0;
        while (filled < length) {
          const { bytesRead } = await scratch.read(bytes, filled, length - filled, offset + filled);
          if (bytesRead === 0) throw new Error(`the scratch file ${scratchPath} ended early`);
          filled += bytesRead;
        }
        return bytes;
      };
      try {
        const total = model.tensors.length;
        for (const entry of model.tensors) {
          signal?.throwIfAborted();
          const { info } = entry;
          onProgress?.(plan.length, total, info.name);
          const copy = (): void => {
            // As stored: a decoded int8 weight copies its codes.
            const stored = storedTensor(entry);
            plan.push({
              name: info.name,
              dtype: stored.dtype,
              shape: info.shape,
              bytes: () => readTensorBytes({ ...entry, data: stored.data }),
            });
          };
          const options = targets.get(info.index);
          if (!options) {
            copy();
            continue;
          }
          const skip = (detail: string): void => {
            results.push({
              name: info.name,
              bytesBefore: info.byteLength,
              bytesAfter: info.byteLength,
              relativeError: 0,
              detail,
              skipped: true,
            });
            copy();
          };
          const quantized = quantizedProblem(info.encoding);
          if (quantized) {
            skip(quantized);
            continue;
          }
          if (!FLOAT_DTYPES.has(info.dtype)) {
            skip(`${info.dtype} is not a floating-point type`);
            continue;
          }
          const bytes = await readTensorBytes(entry);
          pool ??= new WorkerPool<TensorJob, TensorJobResult>(1, compressWorkerScript());
          const outcome = await pool.run(
            {
              name: info.name,
              dtype: info.dtype,
              shape: info.shape,
              elementCount: info.parameterCount,
              bytes,
              options,
            },
            signal,
            bytes.byteLength === bytes.buffer.byteLength ? [bytes.buffer as ArrayBuffer] : [],
          );
          if (outcome.kind === 'skipped') {
            skip(outcome.reason);
          } else {
            for (const tensor of outcome.tensors) {
              await scratch.write(tensor.bytes, 0, tensor.bytes.byteLength, scratchBytes);
              plan.push({
                name: tensor.name,
                dtype: tensor.dtype,
                shape: tensor.shape,
                bytes: fromScratch(scratchBytes, tensor.bytes.byteLength),
              });
              scratchBytes += tensor.bytes.byteLength;
            }
            results.push({
              name: info.name,
              bytesBefore: info.byteLength,
              bytesAfter: outcome.tensors.reduce((sum, tensor) => sum + tensor.bytes.byteLength, 0),
              relativeError: outcome.relativeError,
              detail: outcome.detail,
              skipped: false,
            });
          }
        }
        if (results.every((result) => result.skipped)) {
          const reasons = [...new Set(results.map((result) => result.detail))]
            .slice(0, 3)
            .join('; ');
          throw new ModelFileError(source, `nothing to compress with ${output.name}: ${reasons}`);
        }
        onProgress?.(total, total, 'writing');
        outputMetadata['layerlens.compression'] = JSON.stringify({
          source: path.basename(source),
          options: output.options,
          tensors: results.filter((result) => !result.skipped).length,
        });
        fileBytesAfter = await writeSafetensorsFile(files.temp(), plan, outputMetadata, signal);
      } finally {
        // Terminates a worker still busy with a cancelled tensor.
        pool?.dispose();
        await scratch.close();
        await fs.rm(scratchPath, { force: true });
      }
      const temp = files.temp();
      const reread = await safetensorsFormat.open(temp);
      const expected = plan.map(
        (tensor) => `${tensor.name}:${tensor.dtype}:${tensor.shape.join('x')}`,
      );
      // As stored: an int8 weight reads back decoded, its codes' type kept in its encoding.
      const actual = reread.tensors.map(
        ({ info }) => `${info.name}:${storedTypeOf(info)}:${info.shape.join('x')}`,
      );
      if (expected.sort().join('\n') !== actual.sort().join('\n')) {
        throw new Error(`the written file does not read back with the tensors written: ${temp}`);
      }
      signal?.throwIfAborted();
      return writeUnrunReport(
        files,
        {
          source,
          ...reportMethods(output),
          // What plans and size targets count (FormatCompression.modelBytes): every file read.
          fileBytesBefore: model.summary.totalBytes,
          fileBytesAfter,
          tensors: results,
        },
        'a safetensors file has no graph to run',
        `read back by the LayerLens safetensors reader: ${reread.tensors.length} tensors, header of ${fileBytesAfter - reread.tensors.reduce((sum, t) => sum + t.info.byteLength, 0)} bytes`,
        started,
      );
    },
    foreign?.extension,
  );
}
