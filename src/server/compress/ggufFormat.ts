/**
 * GGUF as a compressible format (FormatCompression, attached to the GGUF format module):
 * the chosen F32/F16/BF16 tensors re-typed to a ggml block type in a new GGUF by the
 * re-typing writer (compress/ggml/ggufWriter.ts), every other tensor and the metadata
 * kept; the sweep's traits are the dequantized weights as [out, in] matrices. There is no
 * graph to run, so no measured sweep and no output comparison.
 */
import * as path from 'node:path';
import type { CompressionReport, TensorCompressionResult } from '../../shared/compress';
import { describeOptions } from '../../shared/compressText';
import type { GgmlQuantType } from '../../shared/compressMethods';
import type { FormatCompression } from '../formats/capabilities';
import { ggufFormat } from '../formats/gguf';
import { ModelFileError, type OpenedModel } from '../formats/types';
import { floatMatrixSweepTraits } from '../sensitivity/traits';
import { retypeableHeader, writeRetypedFile } from './ggml/ggufWriter';
import { importanceMatrixSetting, importanceOf, readImportanceMatrix } from './ggml/importance';
import { ggufPlanView } from '../plan/gguf';
import { methodFor } from './methods';
import {
  reportMethods,
  withOutputFiles,
  writeUnrunReport,
  type ChoicesOutput,
  type OutputFiles,
  type TensorChoice,
} from './output';
import type { CompressContext } from './context';

/** Write `model` with `choices` re-typed into a new GGUF, read it back and report. */
async function compressGgufChoices(
  model: OpenedModel,
  choices: readonly TensorChoice[],
  context: CompressContext,
  output: ChoicesOutput,
): Promise<CompressionReport> {
  const started = performance.now();
  const source = model.path;
  const header = retypeableHeader(source);
  const types = new Map<string, GgmlQuantType>();
  const matrixPaths = new Set(choices.flatMap(({ options }) => options.imatrixPath ?? []));
  if (matrixPaths.size > 1) throw new RangeError('one importance matrix per job');
  const [matrixPath = importanceMatrixSetting(source, context.settings)] = matrixPaths;
  const matrix = matrixPath === undefined ? undefined : readImportanceMatrix(matrixPath);
  const skipped: TensorCompressionResult[] = [];
  for (const { entry, options } of choices) {
    const method = methodFor(options.method, 'gguf');
    const problem = method.feasible(entry, options);
    const sized = problem ?? method.predictBytes(entry, options);
    if (typeof sized === 'string') {
      skipped.push({
        name: entry.info.name,
        bytesBefore: entry.info.byteLength,
        bytesAfter: entry.info.byteLength,
        relativeError: 0,
        detail: sized,
        skipped: true,
      });
    } else {
      types.set(entry.info.name, sized.options.ggmlType as GgmlQuantType);
    }
  }
  if (types.size === 0) {
    const reasons = [...new Set(skipped.map((result) => result.detail))].slice(0, 3).join('; ');
    throw new ModelFileError(source, `nothing to compress with ${output.name}: ${reasons}`);
  }
  return withOutputFiles(
    source,
    output,
    async (files: OutputFiles) => {
      const temp = files.temp();
      const written = await writeRetypedFile(header, types, temp, {
        signal: context.signal,
        onTensor: (done, total) => context.onProgress?.(done, total, 'writing'),
        importance: (info) => importanceOf(matrix, source, info.name, info.ne[0] ?? 1),
      });
      const reread = await ggufFormat.open(temp);
      const expected = header.tensors.map(
        (info) => `${info.name}:${types.get(info.name) ?? info.type.name}`,
      );
      const actual = reread.tensors.map(
        ({ info }) =>
          `${info.name}:${info.encoding?.scheme ?? header.tensors[info.index]?.type.name}`,
      );
      if (expected.join('\n') !== actual.join('\n')) {
        throw new Error(`the written file does not read back with the types written: ${temp}`);
      }
      context.signal?.throwIfAborted();
      const retyped: TensorCompressionResult[] = written.tensors.map((tensor) => ({
        name: tensor.name,
        bytesBefore: tensor.bytesBefore,
        bytesAfter: tensor.bytesAfter,
        relativeError: tensor.relativeError,
        detail: `${tensor.from} → ${describeOptions({ method: 'ggml', ggmlType: tensor.to })}${matrix?.has(tensor.name) ? ', weighted by the importance matrix' : ''}`,
        skipped: false,
      }));
      return writeUnrunReport(
        files,
        {
          source,
          ...reportMethods(output),
          fileBytesBefore: model.summary.totalBytes,
          fileBytesAfter: written.bytes,
          tensors: [...retyped, ...skipped],
        },
        'LayerLens does not run GGUF models',
        `read back by the LayerLens GGUF reader: ${reread.tensors.length} tensors with the types written, metadata kept, data aligned to ${header.alignment} bytes`,
        started,
      );
    },
    path.extname(source) || '.gguf',
  );
}

export const ggufCompression: FormatCompression = {
  methods: 'gguf',
  modelBytes: (summary) => summary.totalBytes,
  compress: compressGgufChoices,
  planTypes: ggufPlanView,
  decode: async () => undefined,
  // Quantized blocks are re-typed from their dequantized values; types whose values are
  // not decoded are left out with the reason.
  sweepTraits: () => (entry) => entry.info.encoding?.notDecoded ?? floatMatrixSweepTraits(entry),
  sizer: () => ({
    // The metadata is copied as it is; only padding to the alignment is added.
    fileOverhead: 0,
    async size(entry, options) {
      const method = methodFor(options.method, 'gguf');
      return method.feasible(entry, options) ?? method.predictBytes(entry, options);
    },
  }),
};
