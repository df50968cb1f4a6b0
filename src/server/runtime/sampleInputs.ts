/**
 * Sample inputs for validating a compressed model: generated deterministically from the
 * input shapes and types, or read from user files (see inputFiles.ts).
 */
import { float32ToFloat16Bits } from '../compress/kernels';

/** Uniform numbers in [0, 1) from a 32-bit seed (mulberry32): the same sequence everywhere. */
export function seededUniform(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal numbers from a seed (Box–Muller on seededUniform). */
export function seededNormal(seed: number): () => number {
  const uniform = seededUniform(seed);
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const value = spare;
      spare = undefined;
      return value;
    }
    const u = 1 - uniform();
    const v = uniform();
    const radius = Math.sqrt(-2 * Math.log(u));
    spare = radius * Math.sin(2 * Math.PI * v);
    return radius * Math.cos(2 * Math.PI * v);
  };
}

/** Element types a sample input can have (what onnxruntime-node accepts as a feed). */
export type SampleDType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool';

/** One model input as the sample-input code sees it (from the model's graph inputs). */
export interface InputSpec {
  readonly name: string;
  readonly dtype: string | null;
  /** Dimensions: sizes, symbolic names, or null for unknown; null when the rank is unknown. */
  readonly shape: readonly (number | string | null)[] | null;
}

/** A sample input: its element type, shape and values, ready to become a runtime tensor. */
export interface SampleTensor {
  readonly dtype: SampleDType;
  readonly shape: readonly number[];
  readonly data:
    | Float32Array
    | Float64Array
    | Uint16Array
    | Int8Array
    | Uint8Array
    | Int16Array
    | Int32Array
    | Uint32Array
    | BigInt64Array
    | BigUint64Array;
}

export interface GenerateOptions {
  /** Sizes of named symbolic dimensions. */
  readonly dimensions?: Readonly<Record<string, number>>;
  /** Shapes by input name (take precedence). */
  readonly shapes?: Readonly<Record<string, readonly number[]>>;
  /** Constant values by input name. */
  readonly values?: Readonly<Record<string, number>>;
  readonly seed?: number;
  /**
   * Size of an input's unknown dimensions after its first unknown one (which is taken as
   * the batch, 1). 1 on the first attempt; validation retries with a longer length.
   */
  readonly laterUnknown?: number;
}

/** Elements of one generated input, bounded so that a wild shape cannot exhaust memory. */
export const MAX_GENERATED_ELEMENTS = 64 * 1024 * 1024;

const SAMPLE_DTYPES: ReadonlySet<string> = new Set([
  'float32',
  'float64',
  'float16',
  'int8',
  'uint8',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'int64',
  'uint64',
  'bool',
]);

export function isSampleDType(dtype: string | null): dtype is SampleDType {
  return dtype !== null && SAMPLE_DTYPES.has(dtype);
}

/** A tensor of `dtype` holding `values` (converted numerically; integers rounded). */
export function sampleTensor(
  dtype: SampleDType,
  shape: readonly number[],
  values: ArrayLike<number>,
): SampleTensor {
  const n = values.length;
  const ints = (make: (n: number) => { [i: number]: number }, lo: number, hi: number) => {
    const out = make(n);
    for (let i = 0; i < n; i++) out[i] = Math.min(hi, Math.max(lo, Math.round(values[i]!)));
    return out;
  };
  switch (dtype) {
    case 'float32':
      return { dtype, shape, data: Float32Array.from(values) };
    case 'float64':
      return { dtype, shape, data: Float64Array.from(values) };
    case 'float16':
      return { dtype, shape, data: float32ToFloat16Bits(Float32Array.from(values)) };
    case 'int8':
      return { dtype, shape, data: ints((k) => new Int8Array(k), -128, 127) as Int8Array };
    case 'uint8':
      return { dtype, shape, data: ints((k) => new Uint8Array(k), 0, 255) as Uint8Array };
    case 'bool':
      return { dtype, shape, data: Uint8Array.from(values, (v) => (v ? 1 : 0)) };
    case 'int16':
      return { dtype, shape, data: ints((k) => new Int16Array(k), -32768, 32767) as Int16Array };
    case 'uint16':
      return { dtype, shape, data: ints((k) => new Uint16Array(k), 0, 65535) as Uint16Array };
    case 'int32':
      return {
        dtype,
        shape,
        data: ints((k) => new Int32Array(k), -(2 ** 31), 2 ** 31 - 1) as Int32Array,
      };
    case 'uint32':
      return { dtype, shape, data: ints((k) => new Uint32Array(k), 0, 2 ** 32 - 1) as Uint32Array };
    case 'int64':
      return {
        dtype,
        shape,
        data: BigInt64Array.from(Array.from(values), (v) => BigInt(Math.round(v))),
      };
    case 'uint64':
      return {
        dtype,
        shape,
        data: BigUint64Array.from(Array.from(values), (v) => BigInt(Math.max(0, Math.round(v)))),
      };
  }
}

/** The concrete shape of an input (see GenerateOptions for how unknown sizes are chosen). */
export function resolveShape(spec: InputSpec, options: GenerateOptions): number[] {
  const given = options.shapes?.[spec.name];
  if (given) return [...given];
  let unknownSeen = false;
  return (spec.shape ?? []).map((dim) => {
    if (typeof dim === 'number') return dim;
    if (typeof dim === 'string' && options.dimensions?.[dim] !== undefined)
      return options.dimensions[dim]!;
    const size = unknownSeen ? (options.laterUnknown ?? 1) : 1;
    unknownSeen = true;
    return size;
  });
}

function hashName(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/**
 * Deterministic sample inputs: floats uniform in [−1, 1) from a PRNG seeded by the seed
 * and the input's name; integers 1 and booleans true (safe as lengths, indices and
 * flags); a constant from `values` where one is set for the input.
 */
export function generateInputs(
  specs: readonly InputSpec[],
  options: GenerateOptions = {},
): Map<string, SampleTensor> {
  const feeds = new Map<string, SampleTensor>();
  for (const spec of specs) {
    if (!isSampleDType(spec.dtype)) {
      throw new RangeError(
        `input '${spec.name}' of type ${spec.dtype ?? 'unknown'} cannot be generated`,
      );
    }
    const shape = resolveShape(spec, options);
    const count = shape.reduce((a, b) => a * b, 1);
    if (count > MAX_GENERATED_ELEMENTS) {
      throw new RangeError(
        `input '${spec.name}' of shape [${shape.join(', ')}] is larger than the ${MAX_GENERATED_ELEMENTS} elements generated`,
      );
    }
    const constant = options.values?.[spec.name];
    const values = new Float64Array(count);
    if (constant !== undefined) values.fill(constant);
    else if (spec.dtype.startsWith('float')) {
      const next = seededUniform((options.seed ?? 0) ^ hashName(spec.name));
      for (let i = 0; i < count; i++) values[i] = next() * 2 - 1;
    } else values.fill(1);
    feeds.set(spec.name, sampleTensor(spec.dtype, shape, values));
  }
  return feeds;
}
