// AssemblyScript source of the SIMD quantization kernels (built by scripts/build-wasm.mjs
// into dist/wasm/quantize.wasm). Pointers are byte offsets into the
// module's memory, which the caller lays out and grows; nothing is allocated here.
// Every function matches the scalar code in src/server/compress/kernels.ts bit for bit:
// float32 products, rounding to nearest even, clamping to ±qmax.

/** dst[c] = max(dst[c], |src[r·cols + c]|) over `rows` rows (a block of a [rows, cols] matrix). */
export function absMaxColumns(src: usize, rows: i32, cols: i32, dst: usize): void {
  const vectorCols = cols & ~3;
  for (let r = 0; r < rows; r++) {
    const row = src + <usize>(r * cols) * 4;
    let c = 0;
    for (; c < vectorCols; c += 4) {
      const at = dst + <usize>c * 4;
      v128.store(at, f32x4.max(v128.load(at), f32x4.abs(v128.load(row + <usize>c * 4))));
    }
    for (; c < cols; c++) {
      const at = dst + <usize>c * 4;
      store<f32>(at, max<f32>(load<f32>(at), abs<f32>(load<f32>(row + <usize>c * 4))));
    }
  }
}

/** max |src[i]| over n values. */
export function absMax(src: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  const vectorN = n & ~3;
  let i = 0;
  for (; i < vectorN; i += 4) acc = f32x4.max(acc, f32x4.abs(v128.load(src + <usize>i * 4)));
  let best = max<f32>(
    max<f32>(f32x4.extract_lane(acc, 0), f32x4.extract_lane(acc, 1)),
    max<f32>(f32x4.extract_lane(acc, 2), f32x4.extract_lane(acc, 3)),
  );
  for (; i < n; i++) best = max<f32>(best, abs<f32>(load<f32>(src + <usize>i * 4)));
  return best;
}

function quantize4(v: v128, inverse: v128, low: v128, high: v128): v128 {
  return i32x4.trunc_sat_f32x4_s(
    f32x4.min(high, f32x4.max(low, f32x4.nearest(f32x4.mul(v, inverse)))),
  );
}

function quantize1(v: f32, inverse: f32, qmax: f32): i8 {
  return <i8>(<i32>min<f32>(qmax, max<f32>(-qmax, nearest<f32>(v * inverse))));
}

/** Narrow four i32x4 vectors (values within ±127) to sixteen i8 lanes. */
function narrow16(a: v128, b: v128, c: v128, d: v128): v128 {
  return i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, b), i16x8.narrow_i32x4_s(c, d));
}

/** q[r·cols + c] = round(src[r·cols + c] · inverses[c]) clamped to ±qmax, over `rows` rows. */
export function quantizeColumns(
  src: usize,
  q: usize,
  rows: i32,
  cols: i32,
  inverses: usize,
  qmax: f32,
): void {
  const low = f32x4.splat(-qmax);
  const high = f32x4.splat(qmax);
  const vectorCols = cols & ~15;
  for (let r = 0; r < rows; r++) {
    const offset = <usize>(r * cols);
    const row = src + offset * 4;
    const out = q + offset;
    let c = 0;
    for (; c < vectorCols; c += 16) {
      const s = row + <usize>c * 4;
      const k = inverses + <usize>c * 4;
      v128.store(
        out + <usize>c,
        narrow16(
          quantize4(v128.load(s), v128.load(k), low, high),
          quantize4(v128.load(s, 16), v128.load(k, 16), low, high),
          quantize4(v128.load(s, 32), v128.load(k, 32), low, high),
          quantize4(v128.load(s, 48), v128.load(k, 48), low, high),
        ),
      );
    }
    for (; c < cols; c++) {
      store<i8>(
        out + <usize>c,
        quantize1(load<f32>(row + <usize>c * 4), load<f32>(inverses + <usize>c * 4), qmax),
      );
    }
  }
}

/** q[i] = round(src[i] · inverse) clamped to ±qmax, over n values (one block of a row). */
export function quantizeRun(src: usize, q: usize, n: i32, inverse: f32, qmax: f32): void {
  const low = f32x4.splat(-qmax);
  const high = f32x4.splat(qmax);
  const k = f32x4.splat(inverse);
  const vectorN = n & ~15;
  let i = 0;
  for (; i < vectorN; i += 16) {
    const s = src + <usize>i * 4;
    v128.store(
      q + <usize>i,
      narrow16(
        quantize4(v128.load(s), k, low, high),
        quantize4(v128.load(s, 16), k, low, high),
        quantize4(v128.load(s, 32), k, low, high),
        quantize4(v128.load(s, 48), k, low, high),
      ),
    );
  }
  for (; i < n; i++)
    store<i8>(q + <usize>i, quantize1(load<f32>(src + <usize>i * 4), inverse, qmax));
}

/**
 * Rows of a [rows, n] matrix quantized in blocks of `blockSize` along each row: per block
 * scale = f32(max|x| / qmax) (1 for an all-zero block) into scales[row·blocks + b], and
 * q = round(x · f32(1 / scale)) clamped to ±qmax.
 */
export function quantizeRows(
  src: usize,
  q: usize,
  rows: i32,
  n: i32,
  blockSize: i32,
  qmax: f32,
  scales: usize,
): void {
  const blocks = (n + blockSize - 1) / blockSize;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocks; b++) {
      const start = r * n + b * blockSize;
      const length = min<i32>(blockSize, n - b * blockSize);
      const from = src + <usize>start * 4;
      let scale = absMax(from, length) / qmax;
      if (scale === 0) scale = 1;
      store<f32>(scales + <usize>(r * blocks + b) * 4, scale);
      quantizeRun(from, q + <usize>start, length, <f32>1 / scale, qmax);
    }
  }
}
