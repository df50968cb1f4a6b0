// Statistics kernels for float32 tensor data, compiled to WebAssembly (SIMD) with
// AssemblyScript by scripts/build-wasm.mjs. The host copies a chunk of values into this
// module's memory and calls the kernels; they follow src/server/analysis/stats.ts exactly
// (same blocks, same shift, same merge, same bin arithmetic), with SIMD lanes in place of
// the even/odd pairs there.

/** Values summarised at a time, as BLOCK_ELEMENTS in stats.ts. */
const BLOCK: i32 = 4096;

// Accumulator state, f64 slots at `state`: finite count, mean, M2, min, max, zeros.
const FINITE: i32 = 0;
const MEAN: i32 = 1;
const M2: i32 = 2;
const MIN: i32 = 3;
const MAX: i32 = 4;
const ZEROS: i32 = 5;

/** First byte the host may use (after this module's static data), 16-byte aligned. */
export function heapBase(): usize {
  return (__heap_base + 15) & ~(<usize>15);
}

function slot(state: usize, index: i32): f64 {
  return load<f64>(state + ((<usize>index) << 3));
}

function setSlot(state: usize, index: i32, value: f64): void {
  store<f64>(state + ((<usize>index) << 3), value);
}

/**
 * Adds the values [start, end) of the float32 array at `values` to the state, block by
 * block. Stops at the first block holding NaN or ±Infinity (or whose float64 sum
 * overflows) and returns its start, for the host to add that block with checks; returns
 * `end` when all blocks were added.
 */
export function momentsF32(values: usize, start: i32, end: i32, state: usize): i32 {
  for (let blockStart = start; blockStart < end; blockStart += BLOCK) {
    const blockEnd = min(blockStart + BLOCK, end);
    if (!addBlock(values, blockStart, blockEnd, state)) return blockStart;
  }
  return end;
}

function addBlock(values: usize, start: i32, end: i32, state: usize): bool {
  const finite = slot(state, FINITE);
  let shift: f64 = finite > 0 ? slot(state, MEAN) : <f64>load<f32>(values + ((<usize>start) << 2));
  if (shift - shift !== 0) shift = 0;
  const shiftV = f64x2.splat(shift);
  let sum0 = f64x2.splat(0);
  let sum1 = f64x2.splat(0);
  let zerosV = i32x4.splat(0);
  let minV = f32x4.splat(Infinity);
  let maxV = f32x4.splat(-Infinity);
  const zero = f32x4.splat(0);
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const v = v128.load(values + ((<usize>i) << 2));
    const low = f64x2.promote_low_f32x4(v);
    const high = f64x2.promote_low_f32x4(
      i8x16.shuffle(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7),
    );
    sum0 = f64x2.add(sum0, f64x2.sub(low, shiftV));
    sum1 = f64x2.add(sum1, f64x2.sub(high, shiftV));
    zerosV = i32x4.sub(zerosV, f32x4.eq(v, zero));
    minV = f32x4.pmin(minV, v);
    maxV = f32x4.pmax(maxV, v);
  }
  let sum =
    f64x2.extract_lane(sum0, 0) +
    f64x2.extract_lane(sum0, 1) +
    f64x2.extract_lane(sum1, 0) +
    f64x2.extract_lane(sum1, 1);
  let zeros =
    i32x4.extract_lane(zerosV, 0) +
    i32x4.extract_lane(zerosV, 1) +
    i32x4.extract_lane(zerosV, 2) +
    i32x4.extract_lane(zerosV, 3);
  let low: f64 = Infinity;
  let high: f64 = -Infinity;
  for (let lane = 0; lane < 4; lane++) {
    const laneMin = <f64>f32x4.extract_lane(minV, 0);
    const laneMax = <f64>f32x4.extract_lane(maxV, 0);
    if (laneMin < low) low = laneMin;
    if (laneMax > high) high = laneMax;
    minV = i8x16.shuffle(minV, minV, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3);
    maxV = i8x16.shuffle(maxV, maxV, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3);
  }
  for (; i < end; i++) {
    const value = <f64>load<f32>(values + ((<usize>i) << 2));
    sum += value - shift;
    if (value === 0) zeros++;
    if (value < low) low = value;
    if (value > high) high = value;
  }
  if (sum - sum !== 0) return false;
  const count = end - start;
  const blockMean = shift + sum / <f64>count;
  const meanV = f64x2.splat(blockMean);
  let m20 = f64x2.splat(0);
  let m21 = f64x2.splat(0);
  i = start;
  for (; i + 4 <= end; i += 4) {
    const v = v128.load(values + ((<usize>i) << 2));
    const d0 = f64x2.sub(f64x2.promote_low_f32x4(v), meanV);
    const d1 = f64x2.sub(
      f64x2.promote_low_f32x4(
        i8x16.shuffle(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7),
      ),
      meanV,
    );
    m20 = f64x2.add(m20, f64x2.mul(d0, d0));
    m21 = f64x2.add(m21, f64x2.mul(d1, d1));
  }
  let m2 =
    f64x2.extract_lane(m20, 0) +
    f64x2.extract_lane(m20, 1) +
    f64x2.extract_lane(m21, 0) +
    f64x2.extract_lane(m21, 1);
  for (; i < end; i++) {
    const deviation = <f64>load<f32>(values + ((<usize>i) << 2)) - blockMean;
    m2 += deviation * deviation;
  }
  setSlot(state, ZEROS, slot(state, ZEROS) + <f64>zeros);
  if (low < slot(state, MIN)) setSlot(state, MIN, low);
  if (high > slot(state, MAX)) setSlot(state, MAX, high);
  // Chan et al.'s merge of (finite, mean, M2) with (count, blockMean, m2).
  const total = finite + <f64>count;
  const delta = blockMean - slot(state, MEAN);
  setSlot(state, MEAN, slot(state, MEAN) + (delta * <f64>count) / total);
  setSlot(state, M2, slot(state, M2) + m2 + ((delta * delta * finite) / total) * <f64>count);
  setSlot(state, FINITE, total);
  return true;
}

/**
 * Bins `count` finite float32 values at `values` into four interleaved u32 sub-histograms
 * at `counts` (bins × 4, lane-major): bin = trunc((value − origin) · scale), capped at
 * lastBin, as HistogramAccumulator does.
 */
export function histogramF32(
  values: usize,
  count: i32,
  origin: f64,
  scale: f64,
  lastBin: i32,
  counts: usize,
): void {
  const bins = <usize>(lastBin + 1);
  const originV = f64x2.splat(origin);
  const scaleV = f64x2.splat(scale);
  const lastV = i32x4.splat(lastBin);
  const lane1 = counts + (bins << 2);
  const lane2 = counts + (bins << 3);
  const lane3 = counts + bins * 12;
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const v = v128.load(values + ((<usize>i) << 2));
    const low = f64x2.mul(f64x2.sub(f64x2.promote_low_f32x4(v), originV), scaleV);
    const high = f64x2.mul(
      f64x2.sub(
        f64x2.promote_low_f32x4(
          i8x16.shuffle(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7),
        ),
        originV,
      ),
      scaleV,
    );
    const lowBins = i32x4.min_s(i32x4.trunc_sat_f64x2_s_zero(low), lastV);
    const highBins = i32x4.min_s(i32x4.trunc_sat_f64x2_s_zero(high), lastV);
    const b0 = counts + ((<usize>i32x4.extract_lane(lowBins, 0)) << 2);
    const b1 = lane1 + ((<usize>i32x4.extract_lane(lowBins, 1)) << 2);
    const b2 = lane2 + ((<usize>i32x4.extract_lane(highBins, 0)) << 2);
    const b3 = lane3 + ((<usize>i32x4.extract_lane(highBins, 1)) << 2);
    store<u32>(b0, load<u32>(b0) + 1);
    store<u32>(b1, load<u32>(b1) + 1);
    store<u32>(b2, load<u32>(b2) + 1);
    store<u32>(b3, load<u32>(b3) + 1);
  }
  for (; i < count; i++) {
    let bin = <i32>((<f64>load<f32>(values + ((<usize>i) << 2)) - origin) * scale);
    if (bin > lastBin) bin = lastBin;
    const at = counts + ((<usize>bin) << 2);
    store<u32>(at, load<u32>(at) + 1);
  }
}
