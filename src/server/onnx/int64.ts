/** ONNX int64 fields as protobufjs decodes them, and their safe conversion to numbers. */

/** An int64 as protobufjs decodes it: a number, or a Long-like pair of 32-bit halves. */
export type ProtoInt64 =
  number | { readonly low: number; readonly high: number; readonly unsigned?: boolean };

export function int64ToBigInt(value: ProtoInt64): bigint {
  if (typeof value === 'number') return BigInt(value);
  const high = value.unsigned ? BigInt(value.high >>> 0) : BigInt(value.high | 0);
  return (high << 32n) | BigInt(value.low >>> 0);
}

/** The value as a JS number (0 when absent), or undefined when it is not an exact integer there. */
export function int64ToSafeInteger(value: ProtoInt64 | null | undefined): number | undefined {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  const big = int64ToBigInt(value);
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(big)
    : undefined;
}
