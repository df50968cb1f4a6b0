// Statistics kernels for float32 tensor data, compiled to WebAssembly (SIMD) with
// AssemblyScript by scripts/build-wasm.mjs. The host reads or copies values into this
// module's memory and calls the kernels. They keep the blocks, the Chan merge and the bin
// arithmetic of src/server/analysis/stats.ts; a block's mean and M2 come from one pass of
// sums around a shift near the mean (the TypeScript loops take two), equal to rounding,
// and the histogram counts are identical.

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
  const count = <f64>(end - start);
  // Sums of deviations and squared deviations from a shift near the mean, in one pass:
  // the running mean, or for the first block the block's own mean (so that an outlying
  // first value costs no precision).
  let shift: f64 = finite > 0 ? slot(state, MEAN) : 0;
  if (finite === 0) {
    const plain = sumAround(values, start, end, 0);
    if (plain - plain !== 0) return false;
    shift = plain / count;
  }
  const sh = f64x2.splat(shift);
  const zero = f32x4.splat(0);
  let s0 = f64x2.splat(0);
  let s1 = s0;
  let s2 = s0;
  let s3 = s0;
  let q0 = s0;
  let q1 = s0;
  let q2 = s0;
  let q3 = s0;
  let zerosV = i32x4.splat(0);
  let minV = f32x4.splat(Infinity);
  let maxV = f32x4.splat(-Infinity);
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const at = values + ((<usize>i) << 2);
    const v = v128.load(at);
    const w = v128.load(at, 16);
    const d0 = f64x2.sub(f64x2.promote_low_f32x4(v), sh);
    const d1 = f64x2.sub(f64x2.promote_low_f32x4(upperHalf(v)), sh);
    const d2 = f64x2.sub(f64x2.promote_low_f32x4(w), sh);
    const d3 = f64x2.sub(f64x2.promote_low_f32x4(upperHalf(w)), sh);
    s0 = f64x2.add(s0, d0);
    s1 = f64x2.add(s1, d1);
    s2 = f64x2.add(s2, d2);
    s3 = f64x2.add(s3, d3);
    q0 = f64x2.add(q0, f64x2.mul(d0, d0));
    q1 = f64x2.add(q1, f64x2.mul(d1, d1));
    q2 = f64x2.add(q2, f64x2.mul(d2, d2));
    q3 = f64x2.add(q3, f64x2.mul(d3, d3));
    zerosV = i32x4.sub(i32x4.sub(zerosV, f32x4.eq(v, zero)), f32x4.eq(w, zero));
    minV = f32x4.pmin(minV, f32x4.pmin(v, w));
    maxV = f32x4.pmax(maxV, f32x4.pmax(v, w));
  }
  let sum = lanes(f64x2.add(f64x2.add(s0, s1), f64x2.add(s2, s3)));
  let squares = lanes(f64x2.add(f64x2.add(q0, q1), f64x2.add(q2, q3)));
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
    const deviation = value - shift;
    sum += deviation;
    squares += deviation * deviation;
    if (value === 0) zeros++;
    if (value < low) low = value;
    if (value > high) high = value;
  }
  // value - value is 0 for finite numbers and NaN for NaN and ±Infinity.
  if (sum - sum !== 0) return false;
  const blockMean = shift + sum / count;
  const m2 = max(0, squares - sum * (sum / count));
  setSlot(state, ZEROS, slot(state, ZEROS) + <f64>zeros);
  if (low < slot(state, MIN)) setSlot(state, MIN, low);
  if (high > slot(state, MAX)) setSlot(state, MAX, high);
  // Chan et al.'s merge of (finite, mean, M2) with (count, blockMean, m2).
  const total = finite + count;
  const delta = blockMean - slot(state, MEAN);
  setSlot(state, MEAN, slot(state, MEAN) + (delta * count) / total);
  setSlot(state, M2, slot(state, M2) + m2 + ((delta * delta * finite) / total) * count);
  setSlot(state, FINITE, total);
  return true;
}

/** The upper two float32 lanes of `v` moved to the lower half (for promote_low). */
function upperHalf(v: v128): v128 {
  return i8x16.shuffle(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
}

function lanes(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

/** Σ (value − shift) over [start, end) in float64 (non-finite when a value is). */
function sumAround(values: usize, start: i32, end: i32, shift: f64): f64 {
  const sh = f64x2.splat(shift);
  let s0 = f64x2.splat(0);
  let s1 = s0;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const v = v128.load(values + ((<usize>i) << 2));
    s0 = f64x2.add(s0, f64x2.sub(f64x2.promote_low_f32x4(v), sh));
    s1 = f64x2.add(s1, f64x2.sub(f64x2.promote_low_f32x4(upperHalf(v)), sh));
  }
  let sum = lanes(f64x2.add(s0, s1));
  for (; i < end; i++) sum += <f64>load<f32>(values + ((<usize>i) << 2)) - shift;
  return sum;
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

/**
 * Counts the bins of 16 values, lanes of b0 with b1 and of b2 with b3, as pairs: one
 * increment of the u32 counter a·256 + b per pair, in one of two tables of 65536 counters
 * at `pairs` (one after the other, so that equal neighbouring pairs do not wait on each
 * other's store).
 */
class PairCounters {
  // Inlined: a call per 16 values costs more than the increments.
  @inline
  static bump(pairs: usize, b0: v128, b1: v128, b2: v128, b3: v128): void {
    const second = pairs + ((<usize>65536) << 2);
    // Byte offsets of the pair counters (a·256 + b)·4.
    const p0 = i32x4.shl(v128.or(i32x4.shl(b0, 8), b1), 2);
    const p1 = i32x4.shl(v128.or(i32x4.shl(b2, 8), b3), 2);
    bump(pairs + <usize>i32x4.extract_lane(p0, 0));
    bump(second + <usize>i32x4.extract_lane(p0, 1));
    bump(pairs + <usize>i32x4.extract_lane(p0, 2));
    bump(second + <usize>i32x4.extract_lane(p0, 3));
    bump(pairs + <usize>i32x4.extract_lane(p1, 0));
    bump(second + <usize>i32x4.extract_lane(p1, 1));
    bump(pairs + <usize>i32x4.extract_lane(p1, 2));
    bump(second + <usize>i32x4.extract_lane(p1, 3));
  }
}

/** Adds one to the u32 counter at `at`. */
function bump(at: usize): void {
  store<u32>(at, load<u32>(at) + 1);
}

/** The bin of one value by the float64 arithmetic of histogramF32 (and HistogramAccumulator). */
function exactBin(value: f32, origin: f64, scale: f64, lastBin: i32): usize {
  const bin = <i32>((<f64>value - origin) * scale);
  return <usize>(bin > lastBin ? lastBin : bin);
}

/** Counts `value` in the lane of counters at `lane` by exactBin; NaN and ±Infinity are left out. */
function bumpExact(lane: usize, value: f32, origin: f64, scale: f64, lastBin: i32): void {
  if (value - value !== 0) return;
  bump(lane + (exactBin(value, origin, scale, lastBin) << 2));
}

/**
 * The counts of histogramF32, four times fewer float operations: the bin position is
 * computed in float32 lanes, x = (value − origin32) · scale32, which stays within
 * `near` / 2 of the float64 position (the host picks `near` from the rounding bound
 * for the number of bins). When x lies farther than `near` from an integer, its floor
 * is the float64 bin; a group of 16 values with one closer to a bin edge is binned by
 * the float64 arithmetic instead, and NaN or ±Infinity in a group (whose x is not a
 * number) are left out there, so the values need not be finite. The host guarantees
 * finite values in [origin, max], origin32 = origin exactly, and a scale32 that keeps
 * every such x finite and normal or 0.
 */
export function histogramCheckedF32(
  values: usize,
  count: i32,
  origin: f64,
  scale: f64,
  lastBin: i32,
  counts: usize,
  origin32: f32,
  scale32: f32,
  near: f32,
): void {
  binChecked<f32>(values, count, origin, scale, lastBin, counts, origin32, scale32, near, 0);
}

/**
 * The counts of histogramCheckedF32 for at most 256 bins, with half the increments: the
 * bins a and b of two neighbouring values are one increment of the u32 counter a·256 + b,
 * in one of two tables of 65536 counters at `pairs` (one after the other, so that equal
 * neighbouring pairs do not wait on each other's store); foldPairs turns the pair counts
 * into bins. Values binned by the float64 arithmetic go to the first lane at `counts`.
 */
export function histogramPairsF32(
  values: usize,
  count: i32,
  origin: f64,
  scale: f64,
  lastBin: i32,
  counts: usize,
  origin32: f32,
  scale32: f32,
  near: f32,
  pairs: usize,
): void {
  binChecked<i32>(values, count, origin, scale, lastBin, counts, origin32, scale32, near, pairs);
}

/**
 * The loop of histogramCheckedF32 (Pairs a float type: four lanes of bins at `counts`) and
 * histogramPairsF32 (Pairs an integer type: pair counters at `pairs`, one lane of bins).
 */
function binChecked<Pairs>(
  values: usize,
  count: i32,
  origin: f64,
  scale: f64,
  lastBin: i32,
  counts: usize,
  origin32: f32,
  scale32: f32,
  near: f32,
  pairs: usize,
): void {
  const bins = <usize>(lastBin + 1);
  const paired = isInteger<Pairs>();
  const lane1 = paired ? counts : counts + (bins << 2);
  const lane2 = paired ? counts : counts + (bins << 3);
  const lane3 = paired ? counts : counts + bins * 12;
  const originV = f32x4.splat(origin32);
  const scaleV = f32x4.splat(scale32);
  const nearV = f32x4.splat(near);
  const farV = f32x4.splat(<f32>1 - near);
  // floor(x) + 2^23 holds floor(x) in its low mantissa bits (x < 2^23).
  const magic = f32x4.splat(<f32>8388608);
  const mantissa = i32x4.splat(0x7fffff);
  const lastV = i32x4.splat(lastBin);
  let i = 0;
  for (; i + 16 <= count; i += 16) {
    const at = values + ((<usize>i) << 2);
    const x0 = f32x4.mul(f32x4.sub(v128.load(at), originV), scaleV);
    const x1 = f32x4.mul(f32x4.sub(v128.load(at, 16), originV), scaleV);
    const x2 = f32x4.mul(f32x4.sub(v128.load(at, 32), originV), scaleV);
    const x3 = f32x4.mul(f32x4.sub(v128.load(at, 48), originV), scaleV);
    const r0 = f32x4.floor(x0);
    const r1 = f32x4.floor(x1);
    const r2 = f32x4.floor(x2);
    const r3 = f32x4.floor(x3);
    const f0 = f32x4.sub(x0, r0);
    const f1 = f32x4.sub(x1, r1);
    const f2 = f32x4.sub(x2, r2);
    const f3 = f32x4.sub(x3, r3);
    // In near ≤ f ≤ 1 − near for every lane? (False for NaN, which NaN and ±Infinity give.)
    const clear = v128.and(
      v128.and(
        v128.and(f32x4.ge(f0, nearV), f32x4.le(f0, farV)),
        v128.and(f32x4.ge(f1, nearV), f32x4.le(f1, farV)),
      ),
      v128.and(
        v128.and(f32x4.ge(f2, nearV), f32x4.le(f2, farV)),
        v128.and(f32x4.ge(f3, nearV), f32x4.le(f3, farV)),
      ),
    );
    if (!i32x4.all_true(clear)) {
      for (let k: usize = 0; k < 64; k += 16) {
        bumpExact(counts, load<f32>(at + k), origin, scale, lastBin);
        bumpExact(lane1, load<f32>(at + k, 4), origin, scale, lastBin);
        bumpExact(lane2, load<f32>(at + k, 8), origin, scale, lastBin);
        bumpExact(lane3, load<f32>(at + k, 12), origin, scale, lastBin);
      }
      continue;
    }
    const b0 = i32x4.min_s(v128.and(f32x4.add(r0, magic), mantissa), lastV);
    const b1 = i32x4.min_s(v128.and(f32x4.add(r1, magic), mantissa), lastV);
    const b2 = i32x4.min_s(v128.and(f32x4.add(r2, magic), mantissa), lastV);
    const b3 = i32x4.min_s(v128.and(f32x4.add(r3, magic), mantissa), lastV);
    if (paired) {
      PairCounters.bump(pairs, b0, b1, b2, b3);
      continue;
    }
    bump(counts + ((<usize>i32x4.extract_lane(b0, 0)) << 2));
    bump(lane1 + ((<usize>i32x4.extract_lane(b0, 1)) << 2));
    bump(lane2 + ((<usize>i32x4.extract_lane(b0, 2)) << 2));
    bump(lane3 + ((<usize>i32x4.extract_lane(b0, 3)) << 2));
    bump(counts + ((<usize>i32x4.extract_lane(b1, 0)) << 2));
    bump(lane1 + ((<usize>i32x4.extract_lane(b1, 1)) << 2));
    bump(lane2 + ((<usize>i32x4.extract_lane(b1, 2)) << 2));
    bump(lane3 + ((<usize>i32x4.extract_lane(b1, 3)) << 2));
    bump(counts + ((<usize>i32x4.extract_lane(b2, 0)) << 2));
    bump(lane1 + ((<usize>i32x4.extract_lane(b2, 1)) << 2));
    bump(lane2 + ((<usize>i32x4.extract_lane(b2, 2)) << 2));
    bump(lane3 + ((<usize>i32x4.extract_lane(b2, 3)) << 2));
    bump(counts + ((<usize>i32x4.extract_lane(b3, 0)) << 2));
    bump(lane1 + ((<usize>i32x4.extract_lane(b3, 1)) << 2));
    bump(lane2 + ((<usize>i32x4.extract_lane(b3, 2)) << 2));
    bump(lane3 + ((<usize>i32x4.extract_lane(b3, 3)) << 2));
  }
  for (; i < count; i++) {
    bumpExact(counts, load<f32>(values + ((<usize>i) << 2)), origin, scale, lastBin);
  }
}

/**
 * Bins `count` float32 values at `values` on the power-of-two grid of GridHistogram
 * (stats.ts): bin = floor(value · inverseWidth) − first, inverseWidth = 2^−e. Scaling by a
 * power of two is exact in float32 unless the product is subnormal, floor is exact, and
 * the difference of two float32 integers that lies in [0, 255] is exact, so the bins are
 * those of the float64 definition with no edge checks. The counts go to the pair counters
 * at `pairs` as in histogramPairsF32 (at most 256 bins). The host guarantees values in
 * the grid's window, inverseWidth a normal float32, first a float32 whose products stay
 * finite. `checked` (values may hold NaN or ±Infinity, or a negative value may scale to
 * −0 because inverseWidth < 1): a group of 16 with such a value is binned one by one in
 * float64 into the u32 bins at `counts`, non-finite values left out.
 */
export function gridPairsF32(
  values: usize,
  count: i32,
  inverseWidth: f32,
  first: f32,
  lastBin: i32,
  pairs: usize,
  counts: usize,
  checked: bool,
): void {
  if (checked) gridPairs<i32>(values, count, inverseWidth, first, lastBin, pairs, counts);
  else gridPairs<f32>(values, count, inverseWidth, first, lastBin, pairs, counts);
}

/** The loop of gridPairsF32; Checked an integer type: groups are checked. */
function gridPairs<Checked>(
  values: usize,
  count: i32,
  inverseWidth: f32,
  first: f32,
  lastBin: i32,
  pairs: usize,
  counts: usize,
): void {
  const checked = isInteger<Checked>();
  const scaleV = f32x4.splat(inverseWidth);
  const firstV = f32x4.splat(first);
  const zero = f32x4.splat(0);
  const lastV = i32x4.splat(lastBin);
  let i = 0;
  for (; i + 16 <= count; i += 16) {
    const at = values + ((<usize>i) << 2);
    const v0 = v128.load(at);
    const v1 = v128.load(at, 16);
    const v2 = v128.load(at, 32);
    const v3 = v128.load(at, 48);
    const x0 = f32x4.mul(v0, scaleV);
    const x1 = f32x4.mul(v1, scaleV);
    const x2 = f32x4.mul(v2, scaleV);
    const x3 = f32x4.mul(v3, scaleV);
    if (checked) {
      // x − x is not 0 for NaN and ±Infinity; x = 0 for a value ≠ 0 lost its sign's floor.
      const bad = v128.or(
        v128.or(
          v128.or(f32x4.ne(f32x4.sub(x0, x0), zero), f32x4.ne(f32x4.sub(x1, x1), zero)),
          v128.or(f32x4.ne(f32x4.sub(x2, x2), zero), f32x4.ne(f32x4.sub(x3, x3), zero)),
        ),
        v128.or(
          v128.or(
            v128.andnot(f32x4.eq(x0, zero), f32x4.eq(v0, zero)),
            v128.andnot(f32x4.eq(x1, zero), f32x4.eq(v1, zero)),
          ),
          v128.or(
            v128.andnot(f32x4.eq(x2, zero), f32x4.eq(v2, zero)),
            v128.andnot(f32x4.eq(x3, zero), f32x4.eq(v3, zero)),
          ),
        ),
      );
      if (v128.any_true(bad)) {
        for (let k: usize = 0; k < 64; k += 4) {
          bumpGrid(counts, load<f32>(at + k), inverseWidth, first, lastBin);
        }
        continue;
      }
    }
    // Unsigned min: a bin outside [0, lastBin] (never, for values in the window) stays in the table.
    const b0 = i32x4.min_u(i32x4.trunc_sat_f32x4_s(f32x4.sub(f32x4.floor(x0), firstV)), lastV);
    const b1 = i32x4.min_u(i32x4.trunc_sat_f32x4_s(f32x4.sub(f32x4.floor(x1), firstV)), lastV);
    const b2 = i32x4.min_u(i32x4.trunc_sat_f32x4_s(f32x4.sub(f32x4.floor(x2), firstV)), lastV);
    const b3 = i32x4.min_u(i32x4.trunc_sat_f32x4_s(f32x4.sub(f32x4.floor(x3), firstV)), lastV);
    PairCounters.bump(pairs, b0, b1, b2, b3);
  }
  for (; i < count; i++) {
    bumpGrid(counts, load<f32>(values + ((<usize>i) << 2)), inverseWidth, first, lastBin);
  }
}

/** Counts one value on the grid in float64 (exact) in the u32 bins at `counts`; NaN and ±Infinity are left out. */
function bumpGrid(counts: usize, value: f32, inverseWidth: f32, first: f32, lastBin: i32): void {
  if (value - value !== 0) return;
  let bin = <i32>(Math.floor(<f64>value * <f64>inverseWidth) - <f64>first);
  if (bin < 0) bin = 0;
  if (bin > lastBin) bin = lastBin;
  bump(counts + ((<usize>bin) << 2));
}

/** Widens `count` bfloat16 values at `source` to float32 at `target` (exact: the upper half). */
export function widenBfloat16(source: usize, count: i32, target: usize): void {
  let i = 0;
  for (; i + 8 <= count; i += 8) {
    const words = v128.load(source + ((<usize>i) << 1));
    const at = target + ((<usize>i) << 2);
    v128.store(at, i32x4.shl(i32x4.extend_low_i16x8_u(words), 16));
    v128.store(at, i32x4.shl(i32x4.extend_high_i16x8_u(words), 16), 16);
  }
  for (; i < count; i++) {
    store<u32>(target + ((<usize>i) << 2), (<u32>load<u16>(source + ((<usize>i) << 1))) << 16);
  }
}

/**
 * Widens `count` float16 values at `source` to float32 at `target`, exactly: the exponent
 * and mantissa bits moved into float32 place and scaled by 2^112 (exact for normal and
 * subnormal halves alike), Infinity and NaN patterns given float32's top exponent.
 */
export function widenFloat16(source: usize, count: i32, target: usize): void {
  let i = 0;
  for (; i + 8 <= count; i += 8) {
    const words = v128.load(source + ((<usize>i) << 1));
    const at = target + ((<usize>i) << 2);
    v128.store(at, widenHalves(i32x4.extend_low_i16x8_u(words)));
    v128.store(at, widenHalves(i32x4.extend_high_i16x8_u(words)), 16);
  }
  for (; i < count; i++) {
    store<f32>(target + ((<usize>i) << 2), widenHalf(<u32>load<u16>(source + ((<usize>i) << 1))));
  }
}

function widenHalves(halves: v128): v128 {
  const sign = i32x4.shl(v128.and(halves, i32x4.splat(0x8000)), 16);
  const magnitude = v128.and(halves, i32x4.splat(0x7fff));
  const moved = i32x4.shl(magnitude, 13);
  const scaled = f32x4.mul(moved, f32x4.splat(<f32>5.192296858534828e33)); // 2^112
  const special = i32x4.gt_s(magnitude, i32x4.splat(0x7bff));
  const top = v128.or(moved, i32x4.splat(0x7f800000));
  return v128.or(sign, v128.bitselect(top, scaled, special));
}

function widenHalf(half: u32): f32 {
  const magnitude = half & 0x7fff;
  const moved = magnitude << 13;
  const bits =
    magnitude > 0x7bff
      ? moved | 0x7f800000
      : reinterpret<u32>(reinterpret<f32>(moved) * <f32>5.192296858534828e33);
  return reinterpret<f32>(((half & 0x8000) << 16) | bits);
}

/** Adds one to the u32 counter of 16-bit pattern `pattern` in the table at `table`. */
function bumpPattern(table: usize, pattern: u32): void {
  const at = table + ((<usize>pattern) << 2);
  store<u32>(at, load<u32>(at) + 1);
}

/**
 * Counts the 16-bit patterns (float16 or bfloat16 values, any bits) of `count` values at
 * `source` into two u32 tables of 65536 counters at `table` (one after the other), even
 * and odd values apart so that equal neighbours do not wait on each other's store. Each
 * value is its own 16-bit load: cheaper than extracting lanes from a vector.
 */
export function countPatterns16(source: usize, count: i32, table: usize): void {
  const odd = table + ((<usize>65536) << 2);
  let i = 0;
  for (; i + 8 <= count; i += 8) {
    const at = source + ((<usize>i) << 1);
    bumpPattern(table, <u32>load<u16>(at));
    bumpPattern(odd, <u32>load<u16>(at, 2));
    bumpPattern(table, <u32>load<u16>(at, 4));
    bumpPattern(odd, <u32>load<u16>(at, 6));
    bumpPattern(table, <u32>load<u16>(at, 8));
    bumpPattern(odd, <u32>load<u16>(at, 10));
    bumpPattern(table, <u32>load<u16>(at, 12));
    bumpPattern(odd, <u32>load<u16>(at, 14));
  }
  for (; i < count; i++) bumpPattern(table, <u32>load<u16>(source + ((<usize>i) << 1)));
}

/**
 * Adds the pair counts of histogramPairsF32 (bins below `bins`) to the u32 bins at `counts`
 * and clears them: a pair (a, b) counts once in bin a and once in bin b.
 */
export function foldPairs(pairs: usize, bins: i32, counts: usize): void {
  const second = pairs + ((<usize>65536) << 2);
  for (let a = 0; a < bins; a++) {
    let row: u32 = 0;
    for (let b = 0; b < bins; b++) {
      const at = (<usize>((a << 8) | b)) << 2;
      const counted = load<u32>(pairs + at) + load<u32>(second + at);
      if (counted === 0) continue;
      store<u32>(pairs + at, 0);
      store<u32>(second + at, 0);
      row += counted;
      const column = counts + ((<usize>b) << 2);
      store<u32>(column, load<u32>(column) + counted);
    }
    const bin = counts + ((<usize>a) << 2);
    store<u32>(bin, load<u32>(bin) + row);
  }
}
