/**
 * Compression entry point shared by the server and the CLI: opens the model, checks the
 * request, and hands it to the compression of the model's format (FormatCompression). Each implementation writes a new
 * file through `output.ts` (where: outputPaths.ts) and returns the validated report.
 */
import type { CompressionReport, CompressRequest } from '../../shared/compress';
import { checkMethodOptions } from '../../shared/compressMethods';
import { compressionOf, openModelFile } from '../formats/registry';
import type { OpenedModel } from '../formats/types';
import type { CompressContext } from './context';
import { requestedTensors } from './targets';

/** Part of the entry point's interface: callers import it from here. */
export type { CompressContext };

/**
 * Compress the model at `path` (already opened: `opened`) into a new file; the original
 * is never modified.
 */
export async function compressModel(
  path: string,
  request: CompressRequest,
  context: CompressContext = {},
  opened?: OpenedModel,
): Promise<CompressionReport> {
  context.signal?.throwIfAborted();
  const model = opened ?? (await openModelFile(path));
  const compression = compressionOf(model);
  const { options } = request;
  checkMethodOptions(options);
  const choices = requestedTensors(model, request).map((entry) => ({ entry, options }));
  return compression.compress(model, choices, context, {
    name: options.method,
    method: options.method,
    options,
    outPath: request.outPath,
    folder: context.settings?.['output.folder'],
  });
}
