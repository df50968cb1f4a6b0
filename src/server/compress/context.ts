/**
 * What a compression job is given besides its request. A module of its own, so that the
 * formats' implementations (onnx/, safetensors.ts, perTensor.ts) need not import the
 * entry point (index.ts), which imports them.
 */
import type { LayerLensSettings } from '../../shared/settings';
import type { ValidationOptions } from '../runtime/validate';

export interface CompressContext {
  /** Aborting it stops the job; no output file remains. */
  readonly signal?: AbortSignal;
  /** Called as work proceeds (`done` of `total` steps). */
  readonly onProgress?: (done: number, total: number, message: string) => void;
  readonly settings?: Partial<LayerLensSettings>;
  /** Given both models' outputs when an ONNX output is validated on the sample inputs. */
  readonly onValidationOutputs?: ValidationOptions['onOutputs'];
}
