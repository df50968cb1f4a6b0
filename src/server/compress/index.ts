/**
 * Compression entry point shared by the server and the CLI: opens the model, checks the
 * request, and hands it to the format's implementation. Each implementation writes a new
 * file next to the original through `output.ts` and returns the validated report.
 */
import type { CompressionReport, CompressRequest } from '../../shared/compress';
import { openModelFile } from '../formats/registry';
import type { OpenedModel } from '../formats/types';
import type { CompressContext } from './context';
import { compressOnnx } from './onnx';
import { compressSafetensors } from './safetensors';

/** Part of the entry point's interface: callers import it from here. */
export type { CompressContext };

/** A format's implementation; `model` is the opened source model. */
export type FormatCompressor = (
  path: string,
  request: CompressRequest,
  context: CompressContext,
  model: OpenedModel,
) => Promise<CompressionReport>;

/** The implementation for each format LayerLens can write. */
async function compressorFor(model: OpenedModel): Promise<FormatCompressor> {
  switch (model.summary.format) {
    case 'safetensors':
      return compressSafetensors;
    case 'onnx':
      return compressOnnx;
  }
}

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
  const compressor = await compressorFor(model);
  return compressor(model.path, request, context, model);
}
