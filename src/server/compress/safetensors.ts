/** Compression of safetensors models into a new safetensors file. */
import type { CompressionReport, CompressRequest } from '../../shared/compress';
import { ModelFileError, type OpenedModel } from '../formats/types';
import type { CompressContext } from './index';

export async function compressSafetensors(
  path: string,
  _request: CompressRequest,
  _context: CompressContext,
  _model: OpenedModel,
): Promise<CompressionReport> {
  throw new ModelFileError(path, 'compressing safetensors models is not available yet');
}
