/** float16 storage (halves float32 weights); the only cast a plan chooses from. */
import type { SweepLevel } from '../../../shared/sensitivity';
import { halfPrecisionMethod } from './halfPrecision';

/** float16 storage as a sweep level. */
export const FP16_LEVEL: SweepLevel = {
  key: 'fp16',
  label: 'fp16',
  method: 'fp16',
  options: { method: 'fp16' },
  x: 16,
};

export const fp16 = halfPrecisionMethod('fp16', [FP16_LEVEL]);
