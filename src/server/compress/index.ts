/**
 * Compression entry point shared by the server and the CLI: opens the model, checks the
 * request, and hands it to the compression of the model's format (FormatCompression). Each implementation writes a new
 * file next to the original through `output.ts` and returns the validated report.
 */
import type { CompressionReport, CompressRequest } from '../../shared/compress';
import type { LayerLensSettings } from '../../shared/settings';
import { checkMethodOptions } from '../../shared/compressMethods';
import { compressionOf, openModelFile } from '../formats/registry';
import type { ValidationOptions } from '../runtime/validate';
import { requestedTensors } from './targets';

export interface CompressContext {
  /** Aborting it stops the job; no output file remains. */
  readonly signal?: AbortSignal;
  /** Called as work proceeds (`done` of `total` steps). */
  readonly onProgress?: (done: number, total: number, message: string) => void;
  readonly settings?: Partial<LayerLensSettings>;
  /** Given both models' outputs when an ONNX output is validated on the sample inputs. */
  readonly onValidationOutputs?: ValidationOptions['onOutputs'];
}

/** Compress the model at `path` into a new file; the original is never modified. */
export async function compressModel(
  path: string,
  request: CompressRequest,
  context: CompressContext = {},
): Promise<CompressionReport> {
  context.signal?.throwIfAborted();
  const model = await openModelFile(path);
  const compression = compressionOf(model);
  const { options } = request;
  checkMethodOptions(options);
  const choices = requestedTensors(model, request).map((entry) => ({ entry, options }));
  return compression.compress(model, choices, context, {
    name: options.method,
    method: options.method,
    options,
    outPath: request.outPath,
  });
}
