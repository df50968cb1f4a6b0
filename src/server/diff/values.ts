/**
 * The values of a tensor read a range at a time for a comparison, and the comparison of
 * two value streams. Plain file tensors are read chunk by chunk from their file
 * (analysis/tensorMatrix.ts's fileMatrix, as one column); everything else — quantized
 * weights decoded from their codes, ggml blocks, in-memory ONNX fields, packed files — is
 * decoded whole by the analysis readers (bounded by MAX_IN_MEMORY_TENSOR_BYTES).
 */
import { DTYPES } from '../../shared/dtypes';
import type { ValueDiff } from '../../shared/diff';
import { DIFF_CHUNK_ELEMENTS } from '../../shared/limits';
import { isNumericDType } from '../analysis/decode';
import type { MatrixValues } from '../analysis/heatmap';
import { fileMatrix, loadTensorValues } from '../analysis/tensorMatrix';
import type { TensorEntry } from '../formats/types';

/** A tensor's values, `read(start, end)` elements at a time in order. */
export interface ValueReader {
  readonly count: number;
  read(start: number, end: number): Promise<MatrixValues>;
  close(): void;
}

/** Why the tensor's values cannot be compared, or null. */
export function valuesProblem(entry: TensorEntry): string | null {
  const { info } = entry;
  if (!isNumericDType(info.dtype)) return `${info.dtype} values are not compared`;
  if (info.encoding?.notDecoded) return info.encoding.notDecoded;
  return null;
}

export function valueReader(entry: TensorEntry): ValueReader {
  const { info, data } = entry;
  const dtype = info.dtype;
  if (!isNumericDType(dtype)) throw new Error(valuesProblem(entry)!);
  const count = info.parameterCount;
  if (data.kind === 'file' && !data.blocks && DTYPES[dtype].bits >= 8) {
    const matrix = fileMatrix(data.path, data.offset, { dtype, rows: count, cols: 1 });
    return {
      count,
      read: async (start, end) => matrix.read(start, end, 0, 1),
      close: () => matrix.close(),
    };
  }
  let whole: Promise<MatrixValues> | undefined;
  return {
    count,
    read: async (start, end) => {
      whole ??= loadTensorValues(entry, {
        dtype,
        rows: 1,
        cols: count,
        ...(data.blocks ? { blocks: data.blocks } : {}),
      });
      return (await whole).subarray(start, end);
    },
    close: () => {
      whole = undefined;
    },
  };
}

/** Values already in memory (a reconstruction from factors). */
export function memoryReader(values: MatrixValues): ValueReader {
  return {
    count: values.length,
    read: async (start, end) => values.subarray(start, end),
    close: () => undefined,
  };
}

/** Running sums of a comparison, chunk by chunk. */
export class ValueDiffAccumulator {
  private aa = 0;
  private bb = 0;
  private ab = 0;
  private dd = 0;
  private maxAbs = 0;
  private equal = 0;
  private total = 0;

  add(a: ArrayLike<number>, b: ArrayLike<number>): void {
    const n = a.length;
    let { aa, bb, ab, dd, maxAbs, equal } = this;
    for (let i = 0; i < n; i++) {
      const x = a[i]!;
      const y = b[i]!;
      if (x === y || (Number.isNaN(x) && Number.isNaN(y))) {
        equal++;
        if (Number.isFinite(x)) {
          aa += x * x;
          bb += x * x;
          ab += x * x;
        }
        continue;
      }
      const d = Math.abs(y - x);
      if (d > maxAbs || Number.isNaN(d)) maxAbs = d;
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      aa += x * x;
      bb += y * y;
      ab += x * y;
      dd += (y - x) * (y - x);
    }
    Object.assign(this, { aa, bb, ab, dd, maxAbs, equal });
    this.total += n;
  }

  result(): ValueDiff {
    const { aa, bb, ab, dd } = this;
    return {
      relativeError: aa > 0 ? Math.sqrt(dd / aa) : dd === 0 ? 0 : Infinity,
      cosine: aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : aa === bb ? 1 : 0,
      maxAbsDiff: this.maxAbs,
      identical: this.total === 0 ? 1 : this.equal / this.total,
      normA: Math.sqrt(aa),
      normB: Math.sqrt(bb),
    };
  }
}

/** Compare two readers of the same length chunk by chunk; the readers are closed after. */
export async function compareValues(
  a: ValueReader,
  b: ValueReader,
  signal?: AbortSignal,
): Promise<ValueDiff> {
  if (a.count !== b.count) {
    throw new RangeError(`the tensors hold ${a.count} and ${b.count} values`);
  }
  const sums = new ValueDiffAccumulator();
  try {
    for (let start = 0; start < a.count; start += DIFF_CHUNK_ELEMENTS) {
      signal?.throwIfAborted();
      const end = Math.min(a.count, start + DIFF_CHUNK_ELEMENTS);
      const [x, y] = await Promise.all([a.read(start, end), b.read(start, end)]);
      sums.add(x, y);
    }
  } finally {
    a.close();
    b.close();
  }
  return sums.result();
}
