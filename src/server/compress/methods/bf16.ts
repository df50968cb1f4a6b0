/** bfloat16 storage: float32's range with 8 bits of mantissa (plans use fp16 instead). */
import { halfPrecisionMethod } from './halfPrecision';

export const bf16 = halfPrecisionMethod('bf16', []);
