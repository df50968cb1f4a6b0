import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  decodeHalfToFloat32,
  decodeScalar,
  decodeValues,
  elementsInBytes,
  isNumericDType,
} from '../../../../src/server/analysis/decode';

const float16 = (bits: number) => decodeScalar('float16', bits);

test('float16 bit patterns: ones, signs, infinities, NaN, subnormals, extremes', () => {
  assert.equal(float16(0x3c00), 1);
  assert.equal(float16(0xc000), -2);
  assert.equal(float16(0x3555), 0.333251953125);
  assert.equal(float16(0x7bff), 65504);
  assert.equal(float16(0xfbff), -65504);
  assert.equal(float16(0x7c00), Infinity);
  assert.equal(float16(0xfc00), -Infinity);
  assert.ok(Number.isNaN(float16(0x7e00)));
  assert.ok(Number.isNaN(float16(0x7c01)));
  assert.equal(float16(0x0001), 2 ** -24);
  assert.equal(float16(0x03ff), 1023 * 2 ** -24);
  assert.equal(float16(0x0400), 2 ** -14);
  assert.ok(Object.is(float16(0x8000), -0));
  assert.equal(float16(0x0000), 0);
});

test('float16 table matches a bit-level conversion to float32 for all 65536 patterns', () => {
  const word = new Uint32Array(1);
  const asFloat = new Float32Array(word.buffer);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = (bits >> 15) << 31;
    const exponent = (bits >> 10) & 0x1f;
    const mantissa = bits & 0x3ff;
    let expected: number;
    if (exponent === 0) {
      expected = (sign ? -1 : 1) * mantissa * 2 ** -24;
    } else {
      word[0] =
        (sign | ((exponent === 0x1f ? 0xff : exponent - 15 + 127) << 23) | (mantissa << 13)) >>> 0;
      expected = asFloat[0]!;
    }
    const actual = float16(bits);
    if (Number.isNaN(expected)) assert.ok(Number.isNaN(actual), `0x${bits.toString(16)}`);
    else assert.ok(Object.is(actual, expected), `0x${bits.toString(16)}: ${actual} != ${expected}`);
  }
});

test('bfloat16 bit patterns', () => {
  const bfloat16 = (bits: number) => decodeScalar('bfloat16', bits);
  assert.equal(bfloat16(0x3f80), 1);
  assert.equal(bfloat16(0xc040), -3);
  assert.equal(bfloat16(0x7f80), Infinity);
  assert.equal(bfloat16(0xff80), -Infinity);
  assert.ok(Number.isNaN(bfloat16(0x7fc0)));
  assert.equal(bfloat16(0x7f7f), (2 - 2 ** -7) * 2 ** 127);
  assert.equal(bfloat16(0x0080), 2 ** -126);
  assert.equal(bfloat16(0x0001), 2 ** -133);
  assert.ok(Object.is(bfloat16(0x8000), -0));
});

test('bfloat16 widened to float32 two values at a time equals the table, at any offset and count', () => {
  const words = Uint16Array.from({ length: 41 }, (_, i) => (i * 0x9e37 + 0x3f80) & 0xffff);
  for (const shift of [0, 1]) {
    // shift 1: the bytes start 2 bytes into a buffer, so no 32-bit loads line up.
    const bytes = new Uint8Array(words.byteLength + 4);
    bytes.set(new Uint8Array(words.buffer), shift * 2);
    for (const count of [0, 1, 2, 7, 40, 41]) {
      const view = bytes.subarray(shift * 2, shift * 2 + count * 2);
      const out = decodeHalfToFloat32('bfloat16', view, count, new Float32Array(count));
      const expected = Array.from(words.subarray(0, count), (bits) =>
        decodeScalar('bfloat16', bits),
      );
      assert.deepEqual(Array.from(out), expected, `offset ${shift * 2}, ${count} values`);
    }
  }
});

test('float8_e4m3fn: bias 7, max 448, NaN only at S.1111.111, no infinities', () => {
  const e4m3 = (bits: number) => decodeScalar('float8_e4m3fn', bits);
  assert.equal(e4m3(0x38), 1);
  assert.equal(e4m3(0x7e), 448);
  assert.equal(e4m3(0xfe), -448);
  assert.equal(e4m3(0x78), 256);
  assert.equal(e4m3(0x08), 2 ** -6);
  assert.equal(e4m3(0x01), 2 ** -9);
  assert.equal(e4m3(0x07), 7 * 2 ** -9);
  assert.ok(Number.isNaN(e4m3(0x7f)));
  assert.ok(Number.isNaN(e4m3(0xff)));
  assert.ok(Object.is(e4m3(0x80), -0));
  const nanCount = Array.from({ length: 256 }, (_, bits) => e4m3(bits)).filter(Number.isNaN).length;
  assert.equal(nanCount, 2);
  for (let bits = 1; bits < 0x7f; bits++) {
    assert.ok(e4m3(bits) > e4m3(bits - 1), `increasing at 0x${bits.toString(16)}`);
    assert.ok(Object.is(e4m3(bits | 0x80), -e4m3(bits)));
    assert.ok(Number.isFinite(e4m3(bits)));
  }
});

test('float8_e4m3fnuz: bias 8, max 240, NaN only at 0x80, no negative zero', () => {
  const e4m3 = (bits: number) => decodeScalar('float8_e4m3fnuz', bits);
  assert.equal(e4m3(0x40), 1);
  assert.equal(e4m3(0x7f), 240);
  assert.equal(e4m3(0xff), -240);
  assert.equal(e4m3(0x01), 2 ** -10);
  assert.equal(e4m3(0x08), 2 ** -7);
  assert.ok(Number.isNaN(e4m3(0x80)));
  assert.ok(Object.is(e4m3(0x00), 0));
  for (let bits = 1; bits < 0x80; bits++) {
    assert.ok(e4m3(bits) > e4m3(bits - 1));
    assert.equal(e4m3(bits | 0x80), -e4m3(bits));
  }
});

test('float8_e5m2: bias 15, IEEE-like, equal to the top byte of a float16', () => {
  const e5m2 = (bits: number) => decodeScalar('float8_e5m2', bits);
  assert.equal(e5m2(0x3c), 1);
  assert.equal(e5m2(0x7b), 57344);
  assert.equal(e5m2(0x7c), Infinity);
  assert.equal(e5m2(0xfc), -Infinity);
  assert.ok(Number.isNaN(e5m2(0x7d)));
  assert.ok(Number.isNaN(e5m2(0xff)));
  assert.equal(e5m2(0x01), 2 ** -16);
  assert.ok(Object.is(e5m2(0x80), -0));
  for (let bits = 0; bits < 256; bits++) {
    const expected = float16(bits << 8);
    const actual = e5m2(bits);
    assert.ok(
      Number.isNaN(expected) ? Number.isNaN(actual) : Object.is(actual, expected),
      `0x${bits.toString(16)}`,
    );
  }
});

test('float8_e5m2fnuz: bias 16, NaN only at 0x80, all-ones exponent is a normal number', () => {
  const e5m2 = (bits: number) => decodeScalar('float8_e5m2fnuz', bits);
  assert.equal(e5m2(0x40), 1);
  assert.equal(e5m2(0x7c), 32768);
  assert.equal(e5m2(0x7f), 57344);
  assert.equal(e5m2(0x01), 2 ** -17);
  assert.ok(Number.isNaN(e5m2(0x80)));
  assert.equal(Array.from({ length: 256 }, (_, bits) => e5m2(bits)).filter(Number.isNaN).length, 1);
  assert.equal(e5m2(0xff), -57344);
});

function bytes(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** The same bytes at an odd offset of a larger buffer, so typed views cannot be used in place. */
function misaligned(data: Uint8Array): Uint8Array {
  const buffer = new Uint8Array(data.byteLength + 1);
  buffer.set(data, 1);
  return buffer.subarray(1);
}

test('float32 and float64 are views on the input bytes when aligned, copies when not', () => {
  const floats = new Float32Array([1.5, -2, NaN, Infinity]);
  const view = decodeValues('float32', bytes(floats), 4);
  assert.ok(view instanceof Float32Array);
  assert.equal(view.buffer, floats.buffer);
  assert.deepEqual(Array.from(decodeValues('float32', misaligned(bytes(floats)), 4)), [
    1.5,
    -2,
    NaN,
    Infinity,
  ]);
  const doubles = new Float64Array([1e300, -0.1]);
  const doubleView = decodeValues('float64', bytes(doubles), 2);
  assert.equal(doubleView.buffer, doubles.buffer);
  assert.deepEqual(
    Array.from(decodeValues('float64', misaligned(bytes(doubles)), 2)),
    [1e300, -0.1],
  );
  assert.deepEqual(Array.from(decodeValues('float32', bytes(floats), 2)), [1.5, -2]);
});

test('integer types, aligned and misaligned, including 64-bit beyond 32 bits', () => {
  const cases: [Parameters<typeof decodeValues>[0], ArrayBufferView, number[]][] = [
    ['int8', new Int8Array([-128, -1, 0, 127]), [-128, -1, 0, 127]],
    ['uint8', new Uint8Array([0, 1, 200, 255]), [0, 1, 200, 255]],
    ['int16', new Int16Array([-32768, -2, 3, 32767]), [-32768, -2, 3, 32767]],
    ['uint16', new Uint16Array([0, 65535, 7, 8]), [0, 65535, 7, 8]],
    ['int32', new Int32Array([-(2 ** 31), -5, 6, 2 ** 31 - 1]), [-(2 ** 31), -5, 6, 2 ** 31 - 1]],
    ['uint32', new Uint32Array([0, 2 ** 32 - 1, 9, 10]), [0, 2 ** 32 - 1, 9, 10]],
    [
      'int64',
      new BigInt64Array([-1n, -(2n ** 40n) - 3n, 2n ** 52n + 1n, 0n]),
      [-1, -(2 ** 40) - 3, 2 ** 52 + 1, 0],
    ],
    [
      'uint64',
      new BigUint64Array([2n ** 63n, 2n ** 33n + 5n, 1n, 0n]),
      [2 ** 63, 2 ** 33 + 5, 1, 0],
    ],
  ];
  for (const [dtype, data, expected] of cases) {
    assert.deepEqual(Array.from(decodeValues(dtype, bytes(data), 4)), expected, dtype);
    assert.deepEqual(
      Array.from(decodeValues(dtype, misaligned(bytes(data)), 4)),
      expected,
      `${dtype} misaligned`,
    );
  }
});

test('4-bit types: two per byte, low nibble first, an odd count leaves the last high nibble out', () => {
  const packed = new Uint8Array([0x21, 0xf8, 0x07]);
  assert.deepEqual(Array.from(decodeValues('uint4', packed, 5)), [1, 2, 8, 15, 7]);
  assert.deepEqual(Array.from(decodeValues('int4', packed, 5)), [1, 2, -8, -1, 7]);
  assert.deepEqual(Array.from(decodeValues('int4', packed, 6)), [1, 2, -8, -1, 7, 0]);
  assert.equal(elementsInBytes('int4', 3), 6);
});

test('bool: any non-zero byte is 1; small floats decode through their tables', () => {
  assert.deepEqual(
    Array.from(decodeValues('bool', new Uint8Array([0, 1, 2, 255]), 4)),
    [0, 1, 1, 1],
  );
  const halves = new Uint16Array([0x3c00, 0xfc00, 0x0001]);
  assert.deepEqual(Array.from(decodeValues('float16', misaligned(bytes(halves)), 3)), [
    1,
    -Infinity,
    2 ** -24,
  ]);
  assert.deepEqual(
    Array.from(decodeValues('bfloat16', bytes(new Uint16Array([0x3f80, 0x4000])), 2)),
    [1, 2],
  );
  assert.deepEqual(
    Array.from(decodeValues('float8_e4m3fn', new Uint8Array([0x38, 0x7e]), 2)),
    [1, 448],
  );
});

test('decoding writes into the scratch array when it is large enough, and checks the byte count', () => {
  const scratch = new Float64Array(16);
  const out = decodeValues('int8', new Uint8Array([1, 2, 3]), 3, scratch);
  assert.equal(out.buffer, scratch.buffer);
  assert.deepEqual(Array.from(out), [1, 2, 3]);
  assert.throws(() => decodeValues('int32', new Uint8Array(7), 2), /need 8 bytes, got 7/);
  assert.equal(elementsInBytes('float64', 24), 3);
  assert.equal(isNumericDType('bfloat16'), true);
  assert.equal(isNumericDType('string'), false);
  assert.equal(isNumericDType('complex64'), false);
});
