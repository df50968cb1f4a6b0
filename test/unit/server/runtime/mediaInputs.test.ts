/**
 * Images and WAV audio as sample inputs: decoding, image layouts, resizing and
 * normalisation, mono mixing, resampling, and refusal of unusable files. The files are
 * encoded here, at test time, from known pixel and sample values.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { encode as encodeJpeg } from 'jpeg-js';
import { PNG } from 'pngjs';
import { WaveFile } from 'wavefile';
import { ModelFileError } from '../../../../src/server/formats/types';
import {
  MAX_IMAGE_PIXELS,
  audioSample,
  decodeImage,
  decodeWav,
  imageLayout,
  imageSample,
  isAudioInput,
  type DecodedImage,
  type ImageOptions,
} from '../../../../src/server/runtime/mediaInputs';
import type { InputSpec } from '../../../../src/server/runtime/sampleInputs';
import { useTempFolder } from '../../../support/tempFolder';

const folder = useTempFolder('layerlens-media-inputs-');

const DEFAULTS: ImageOptions = {
  layout: 'auto',
  size: null,
  mean: [0, 0, 0],
  std: [1, 1, 1],
  channelOrder: 'RGB',
};

/** Writes `bytes` to the temp folder and reads them back, as a validation run would. */
async function roundTrip(
  name: string,
  bytes: Uint8Array,
): Promise<{ file: string; bytes: Buffer }> {
  const file = join(folder(), name);
  await writeFile(file, bytes);
  return { file, bytes: await readFile(file) };
}

/** RGBA bytes of a width × height image whose pixel (x, y) is `pixel(x, y)`. */
function rgbaOf(
  width: number,
  height: number,
  pixel: (x: number, y: number) => [number, number, number, number],
): Buffer {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * 4);
  }
  return data;
}

function pngBytes(
  width: number,
  height: number,
  pixel: (x: number, y: number) => [number, number, number, number],
): Buffer {
  const png = new PNG({ width, height });
  rgbaOf(width, height, pixel).copy(png.data);
  return PNG.sync.write(png);
}

/** Distinct values for every pixel and channel of a 5 × 4 test image. */
const distinct = (x: number, y: number): [number, number, number, number] => [
  10 * x + 50 * y,
  255 - 10 * x - 40 * y,
  7 * x * y + 3,
  200,
];

function wavBytes(channels: number, rate: number, depth: string, samples: unknown): Uint8Array {
  const wav = new WaveFile();
  wav.fromScratch(channels, rate, depth, samples as number[]);
  return wav.toBuffer();
}

const spec = (shape: InputSpec['shape'], dtype = 'float32', name = 'x'): InputSpec => ({
  name,
  dtype,
  shape,
});

/** Asserts that `values[index]` is `expected` to float32 precision. */
function near(values: ArrayLike<number>, index: number, expected: number, what: string): void {
  const actual = values[index]!;
  assert.ok(
    Math.abs(actual - expected) < 1e-6,
    `${what}: element ${index} is ${actual}, expected ${expected}`,
  );
}

test('a PNG decodes to its exact pixels', async () => {
  const { file, bytes } = await roundTrip('distinct.png', pngBytes(5, 4, distinct));
  const image = decodeImage(file, bytes);
  assert.equal(image.width, 5);
  assert.equal(image.height, 4);
  assert.deepEqual([...image.rgba.subarray((2 * 5 + 3) * 4, (2 * 5 + 3) * 4 + 4)], distinct(3, 2));
  assert.deepEqual([...image.rgba.subarray(0, 4)], distinct(0, 0));
});

test('image pixels land at their NCHW and NHWC positions, scaled to [0, 1]', async () => {
  const { file, bytes } = await roundTrip('layouts.png', pngBytes(5, 4, distinct));
  const image = decodeImage(file, bytes);

  const nchw = imageSample(image, spec([1, 3, 4, 5]), DEFAULTS);
  assert.equal(nchw.dtype, 'float32');
  assert.deepEqual(nchw.shape, [1, 3, 4, 5]);
  assert.equal(nchw.data.length, 60);
  // channel c, row y, column x at c·20 + y·5 + x
  near(nchw.data as Float32Array, 0 * 20 + 1 * 5 + 2, distinct(2, 1)[0] / 255, 'NCHW R(2,1)');
  near(nchw.data as Float32Array, 1 * 20 + 3 * 5 + 4, distinct(4, 3)[1] / 255, 'NCHW G(4,3)');
  near(nchw.data as Float32Array, 2 * 20 + 2 * 5 + 3, distinct(3, 2)[2] / 255, 'NCHW B(3,2)');

  const nhwc = imageSample(image, spec(['batch', 4, 5, 3]), DEFAULTS);
  assert.deepEqual(nhwc.shape, [1, 4, 5, 3]);
  // row y, column x, channel c at (y·5 + x)·3 + c
  near(nhwc.data as Float32Array, (1 * 5 + 2) * 3 + 0, distinct(2, 1)[0] / 255, 'NHWC R(2,1)');
  near(nhwc.data as Float32Array, (3 * 5 + 4) * 3 + 1, distinct(4, 3)[1] / 255, 'NHWC G(4,3)');
  near(nhwc.data as Float32Array, (2 * 5 + 3) * 3 + 2, distinct(3, 2)[2] / 255, 'NHWC B(3,2)');
});

test('BGR order swaps the red and blue channels', async () => {
  const { file, bytes } = await roundTrip('bgr.png', pngBytes(5, 4, distinct));
  const image = decodeImage(file, bytes);
  const bgr = imageSample(image, spec([1, 3, 4, 5]), { ...DEFAULTS, channelOrder: 'BGR' });
  const values = bgr.data as Float32Array;
  near(values, 0 * 20 + 2 * 5 + 3, distinct(3, 2)[2] / 255, 'BGR channel 0 is blue');
  near(values, 1 * 20 + 2 * 5 + 3, distinct(3, 2)[1] / 255, 'BGR channel 1 is green');
  near(values, 2 * 20 + 2 * 5 + 3, distinct(3, 2)[0] / 255, 'BGR channel 2 is red');
});

test('mean and std normalise each channel', async () => {
  const { file, bytes } = await roundTrip('normalise.png', pngBytes(5, 4, distinct));
  const image = decodeImage(file, bytes);
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const sample = imageSample(image, spec([1, 3, 4, 5]), { ...DEFAULTS, mean, std });
  const values = sample.data as Float32Array;
  const [r, g, b] = distinct(1, 3);
  near(values, 0 * 20 + 3 * 5 + 1, (r / 255 - 0.485) / 0.229, 'normalised R(1,3)');
  near(values, 1 * 20 + 3 * 5 + 1, (g / 255 - 0.456) / 0.224, 'normalised G(1,3)');
  near(values, 2 * 20 + 3 * 5 + 1, (b / 255 - 0.406) / 0.225, 'normalised B(1,3)');
  assert.throws(
    () => imageSample(image, spec([1, 3, 4, 5]), { ...DEFAULTS, std: [1, 0, 1] }),
    /standard deviation 0/,
  );
});

test('a 2×2 image resizes bilinearly to a fixed 4×4 input', async () => {
  // Red: 0 100 / 200 40; green: the same plus 10; blue 0.
  const red = [
    [0, 100],
    [200, 40],
  ];
  const { file, bytes } = await roundTrip(
    'two.png',
    pngBytes(2, 2, (x, y) => [red[y]![x]!, red[y]![x]! + 10, 0, 255]),
  );
  const sample = imageSample(decodeImage(file, bytes), spec([1, 3, 4, 4]), DEFAULTS);
  assert.deepEqual(sample.shape, [1, 3, 4, 4]);
  const values = sample.data as Float32Array;
  const r = (y: number, x: number) => y * 4 + x;
  // Half-pixel centres: output 0 → source 0 (clamped), 1 → 0.25, 2 → 0.75, 3 → 1 (clamped).
  near(values, r(0, 0), 0 / 255, 'top-left corner');
  near(values, r(0, 3), 100 / 255, 'top-right corner');
  near(values, r(3, 0), 200 / 255, 'bottom-left corner');
  near(values, r(3, 3), 40 / 255, 'bottom-right corner');
  near(values, r(0, 1), 25 / 255, 'top row, x 0.25: 0.75·0 + 0.25·100');
  near(values, r(0, 2), 75 / 255, 'top row, x 0.75: 0.25·0 + 0.75·100');
  // y 0.25, x 0.25: 0.75·(0.75·0 + 0.25·100) + 0.25·(0.75·200 + 0.25·40) = 18.75 + 40
  near(values, r(1, 1), 58.75 / 255, 'interior (1, 1)');
  // y 0.75, x 0.75: 0.25·(0.25·0 + 0.75·100) + 0.75·(0.25·200 + 0.75·40) = 18.75 + 60
  near(values, r(2, 2), 78.75 / 255, 'interior (2, 2)');
  near(values, 16 + r(1, 1), 68.75 / 255, 'green interior (1, 1)');
  near(values, 32 + r(2, 2), 0, 'blue');
});

test('open image sides: at most 640, multiples of 32, or the size option', () => {
  const blank = (width: number, height: number): DecodedImage => ({
    width,
    height,
    rgba: new Uint8Array(width * height * 4),
  });
  const open = spec(['N', 3, 'H', 'W']);
  assert.deepEqual(imageSample(blank(1000, 500), open, DEFAULTS).shape, [1, 3, 320, 640]);
  assert.deepEqual(imageSample(blank(500, 1300), open, DEFAULTS).shape, [1, 3, 640, 256]);
  // Not scaled (already small): 100 → 96, 50 → 64.
  assert.deepEqual(imageSample(blank(100, 50), open, DEFAULTS).shape, [1, 3, 64, 96]);
  assert.deepEqual(imageSample(blank(10, 3), open, DEFAULTS).shape, [1, 3, 32, 32]);
  assert.deepEqual(
    imageSample(blank(100, 50), spec([1, null, null, 3]), DEFAULTS).shape,
    [1, 64, 96, 3],
  );
  assert.deepEqual(
    imageSample(blank(1000, 500), open, { ...DEFAULTS, size: [224, 192] }).shape,
    [1, 3, 224, 192],
  );
  // Fixed sides win over the size option.
  assert.deepEqual(
    imageSample(blank(1000, 500), spec([1, 3, 224, 224]), { ...DEFAULTS, size: [64, 64] }).shape,
    [1, 3, 224, 224],
  );
  assert.throws(
    () => imageSample(blank(10, 10), open, { ...DEFAULTS, size: [30000, 30000] }),
    /larger than the \d+ elements/,
  );
});

test('one fixed side: the other keeps the aspect ratio, a multiple of 8', () => {
  const blank = (width: number, height: number): DecodedImage => ({
    width,
    height,
    rgba: new Uint8Array(width * height * 4),
  });
  const recognizer = spec([1, 3, 48, 'width']);
  assert.deepEqual(imageSample(blank(200, 100), recognizer, DEFAULTS).shape, [1, 3, 48, 96]);
  // 48 · 130 / 100 = 62.4 → 64
  assert.deepEqual(imageSample(blank(130, 100), recognizer, DEFAULTS).shape, [1, 3, 48, 64]);
  // 48 · 10 / 100 = 4.8 → at least 8
  assert.deepEqual(imageSample(blank(10, 100), recognizer, DEFAULTS).shape, [1, 3, 48, 8]);
  // Fixed width 320, image 400 × 100: height 80.
  assert.deepEqual(
    imageSample(blank(400, 100), spec([1, 'h', 320, 3]), DEFAULTS).shape,
    [1, 80, 320, 3],
  );
});

test('image layouts are guessed from the shape, or taken from the option', () => {
  assert.deepEqual(imageLayout(spec([1, 3, 224, 224])), { layout: 'NCHW', channels: 3 });
  assert.deepEqual(imageLayout(spec(['N', 224, 224, 3])), { layout: 'NHWC', channels: 3 });
  assert.deepEqual(imageLayout(spec(['N', 1, 'H', 'W'], 'float16')), {
    layout: 'NCHW',
    channels: 1,
  });
  assert.deepEqual(imageLayout(spec([1, 'H', 'W', 4])), { layout: 'NHWC', channels: 4 });
  // Both axes could hold channels: NCHW, unless only the last one holds 3.
  assert.deepEqual(imageLayout(spec([1, 3, 8, 4])), { layout: 'NCHW', channels: 3 });
  assert.deepEqual(imageLayout(spec([1, 3, 8, 3])), { layout: 'NCHW', channels: 3 });
  assert.deepEqual(imageLayout(spec([1, 4, 5, 3])), { layout: 'NHWC', channels: 3 });
  assert.deepEqual(imageLayout(spec([1, 4, 5, 1])), { layout: 'NCHW', channels: 4 });
  assert.equal(imageLayout(spec([1, 2, 224, 224])), null);
  assert.equal(imageLayout(spec([1, 'C', 224, 224])), null);
  assert.equal(imageLayout(spec([1, 3, 224, 224], 'int64')), null);
  assert.equal(imageLayout(spec([3, 224, 224])), null);
  assert.equal(imageLayout(spec(null)), null);
  assert.deepEqual(imageLayout(spec([1, 3, 224, 3]), 'NHWC'), { layout: 'NHWC', channels: 3 });
  assert.deepEqual(imageLayout(spec([1, 'C', 224, 224]), 'NCHW'), {
    layout: 'NCHW',
    channels: 3,
  });
  assert.equal(imageLayout(spec([1, 3, 224, 224]), 'NHWC'), null);
});

test('one channel is luma, a float16 input gets float16, a fixed batch repeats', async () => {
  const { file, bytes } = await roundTrip('gray.png', pngBytes(5, 4, distinct));
  const image = decodeImage(file, bytes);
  const gray = imageSample(image, spec([1, 1, 4, 5]), DEFAULTS);
  const [r, g, b] = distinct(4, 1);
  near(gray.data as Float32Array, 1 * 5 + 4, (0.299 * r + 0.587 * g + 0.114 * b) / 255, 'luma');

  const half = imageSample(image, spec([1, 3, 4, 5], 'float16'), DEFAULTS);
  assert.equal(half.dtype, 'float16');
  assert.ok(half.data instanceof Uint16Array);
  assert.equal(half.data.length, 60);

  const batch = imageSample(image, spec([2, 3, 4, 5]), DEFAULTS);
  assert.deepEqual(batch.shape, [2, 3, 4, 5]);
  near(batch.data as Float32Array, 60 + 2 * 20 + 7, distinct(2, 1)[2] / 255, 'second copy');
  assert.throws(() => imageSample(image, spec([1, 80, 'T'], 'float32'), DEFAULTS), /not an image/);
});

test('a JPEG decodes close to its colours', async () => {
  const width = 16;
  const height = 16;
  const jpeg = encodeJpeg(
    { width, height, data: rgbaOf(width, height, () => [200, 100, 50, 255]) },
    100,
  );
  const { file, bytes } = await roundTrip('flat.jpg', jpeg.data);
  const image = decodeImage(file, bytes);
  assert.equal(image.width, 16);
  assert.equal(image.height, 16);
  const at = (5 * 16 + 7) * 4;
  for (const [c, expected] of [200, 100, 50].entries()) {
    const actual = image.rgba[at + c]!;
    assert.ok(Math.abs(actual - expected) <= 3, `channel ${c}: ${actual}, expected ${expected}`);
  }
});

test('unusable images are refused with the file named', async () => {
  const whole = pngBytes(40, 30, distinct);
  const truncated = await roundTrip('truncated.png', whole.subarray(0, whole.length >> 1));
  assert.throws(
    () => decodeImage(truncated.file, truncated.bytes),
    (error: unknown) =>
      error instanceof ModelFileError &&
      error.file === truncated.file &&
      error.message.includes('truncated.png') &&
      /PNG image cannot be decoded|fewer pixels/.test(error.problem),
  );

  const text = await roundTrip('notes.png', Buffer.from('these are not pixels\n'));
  assert.throws(
    () => decodeImage(text.file, text.bytes),
    (error: unknown) =>
      error instanceof ModelFileError &&
      error.message.includes('notes.png') &&
      /not a PNG or JPEG image/.test(error.problem),
  );

  // A real PNG whose header claims 20000 × 20000 pixels (refused before any decoding).
  const huge = Buffer.from(whole);
  huge.writeUInt32BE(20000, 16);
  huge.writeUInt32BE(20000, 20);
  assert.ok(20000 * 20000 > MAX_IMAGE_PIXELS);
  const hugePng = await roundTrip('huge.png', huge);
  assert.throws(
    () => decodeImage(hugePng.file, hugePng.bytes),
    (error: unknown) =>
      error instanceof ModelFileError &&
      error.message.includes('huge.png') &&
      /20000×20000 pixels, more than the \d+ pixels accepted/.test(error.problem),
  );

  // The same for a JPEG: patch its start-of-frame height and width.
  const jpeg = Buffer.from(
    encodeJpeg({ width: 8, height: 8, data: rgbaOf(8, 8, () => [1, 2, 3, 255]) }, 90).data,
  );
  let sof = -1;
  for (let i = 2; i + 1 < jpeg.length; i++) {
    if (jpeg[i] === 0xff && jpeg[i + 1] === 0xc0) {
      sof = i;
      break;
    }
  }
  assert.ok(sof > 0, 'the encoded JPEG has a baseline SOF segment');
  assert.equal(jpeg.readUInt16BE(sof + 5), 8);
  jpeg.writeUInt16BE(65000, sof + 5);
  jpeg.writeUInt16BE(65000, sof + 7);
  const hugeJpeg = await roundTrip('huge.jpg', jpeg);
  assert.throws(
    () => decodeImage(hugeJpeg.file, hugeJpeg.bytes),
    (error: unknown) =>
      error instanceof ModelFileError &&
      error.message.includes('huge.jpg') &&
      /65000×65000 pixels, more than/.test(error.problem),
  );
});

test('16-bit, 8-bit, 24-bit and float WAV samples decode to [-1, 1]', async () => {
  const pcm16 = await roundTrip('pcm16.wav', wavBytes(1, 8000, '16', [0, 16384, -32768, 32767]));
  const a = decodeWav(pcm16.file, pcm16.bytes);
  assert.equal(a.sampleRate, 8000);
  assert.equal(a.channels.length, 1);
  assert.deepEqual([...a.channels[0]!], [0, 0.5, -1, Math.fround(32767 / 32768)]);

  const pcm8 = await roundTrip('pcm8.wav', wavBytes(1, 8000, '8', [0, 128, 255, 192]));
  assert.deepEqual([...decodeWav(pcm8.file, pcm8.bytes).channels[0]!], [-1, 0, 127 / 128, 0.5]);

  const pcm24 = await roundTrip('pcm24.wav', wavBytes(1, 44100, '24', [-8388608, 4194304, 1]));
  assert.deepEqual(
    [...decodeWav(pcm24.file, pcm24.bytes).channels[0]!],
    [-1, 0.5, Math.fround(1 / 8388608)],
  );

  const float = await roundTrip('float.wav', wavBytes(1, 16000, '32f', [0.25, -0.5, 1, 0.1]));
  const f = decodeWav(float.file, float.bytes);
  assert.equal(f.sampleRate, 16000);
  assert.deepEqual([...f.channels[0]!], [0.25, -0.5, 1, Math.fround(0.1)]);
});

test('stereo audio is mixed to mono', async () => {
  const stereo = await roundTrip(
    'stereo.wav',
    wavBytes(2, 16000, '16', [
      [16384, 0, -16384, 8192],
      [0, -16384, -16384, 8192],
    ]),
  );
  const audio = decodeWav(stereo.file, stereo.bytes);
  assert.equal(audio.channels.length, 2);
  assert.deepEqual([...audio.channels[1]!], [0, -0.5, -0.5, 0.25]);
  const sample = audioSample(audio, spec(['batch', 'samples']), { sampleRate: 16000 });
  assert.equal(sample.dtype, 'float32');
  assert.deepEqual(sample.shape, [1, 4]);
  assert.deepEqual([...(sample.data as Float32Array)], [0.25, -0.25, -0.5, 0.25]);
});

test('audio is resampled linearly from 8000 to 16000 Hz', async () => {
  const ramp = Array.from({ length: 800 }, (_, i) => i * 40);
  const file = await roundTrip('ramp.wav', wavBytes(1, 8000, '16', ramp));
  const audio = decodeWav(file.file, file.bytes);
  const sample = audioSample(audio, spec(['T']), { sampleRate: 16000 });
  assert.deepEqual(sample.shape, [1600]);
  const values = sample.data as Float32Array;
  near(values, 200, (100 * 40) / 32768, 'even index: an original sample');
  near(values, 201, (100.5 * 40) / 32768, 'odd index: halfway between two samples');
  near(values, 1599, (799 * 40) / 32768, 'the end holds the last sample');
  const same = audioSample(audio, spec([1, 1, 'T']), { sampleRate: 8000 });
  assert.deepEqual(same.shape, [1, 1, 800]);
});

test('a fixed audio length crops or pads with zeros', async () => {
  const ramp = Array.from({ length: 800 }, (_, i) => i + 1);
  const file = await roundTrip('short.wav', wavBytes(1, 16000, '16', ramp));
  const audio = decodeWav(file.file, file.bytes);
  const padded = audioSample(audio, spec([1, 1, 1000]), { sampleRate: 16000 });
  assert.deepEqual(padded.shape, [1, 1, 1000]);
  const p = padded.data as Float32Array;
  near(p, 799, 800 / 32768, 'the last sample');
  assert.equal(p[800], 0);
  assert.equal(p[999], 0);
  const cropped = audioSample(audio, spec([1, 512]), { sampleRate: 16000 });
  assert.deepEqual(cropped.shape, [1, 512]);
  near(cropped.data as Float32Array, 511, 512 / 32768, 'the 512th sample');
  const half = audioSample(audio, spec(['n', 'T'], 'float16'), { sampleRate: 16000 });
  assert.equal(half.dtype, 'float16');
  assert.throws(() => audioSample(audio, spec([2, 'T']), { sampleRate: 16000 }), /not an audio/);
});

test('audio inputs are recognised by type and shape', () => {
  assert.equal(isAudioInput(spec(['T'])), true);
  assert.equal(isAudioInput(spec(['batch', null])), true);
  assert.equal(isAudioInput(spec([1, 1, 'T'])), true);
  assert.equal(isAudioInput(spec([1, 16000])), true);
  assert.equal(isAudioInput(spec([1, 400])), true);
  assert.equal(isAudioInput(spec([1, 399])), false);
  assert.equal(isAudioInput(spec([2, 1, 128])), false);
  assert.equal(isAudioInput(spec(['batch', 80, 'T'])), false);
  assert.equal(isAudioInput(spec([1, 'T'], 'int64')), false);
  assert.equal(isAudioInput(spec([1, 1, 1, 'T'])), false);
  assert.equal(isAudioInput(spec(null)), false);
});

test('unusable WAV files are refused with the file named', async () => {
  const text = await roundTrip('speech.wav', Buffer.from('RIFF? no, just text, long enough'));
  assert.throws(
    () => decodeWav(text.file, text.bytes),
    (error: unknown) =>
      error instanceof ModelFileError &&
      error.message.includes('speech.wav') &&
      /is not a WAV file/.test(error.problem),
  );
  const png = await roundTrip('image.wav', pngBytes(2, 2, distinct));
  assert.throws(
    () => decodeWav(png.file, png.bytes),
    (error: unknown) =>
      error instanceof ModelFileError &&
      error.message.includes('image.wav') &&
      /is not a WAV file/.test(error.problem),
  );
  const mulaw = await roundTrip('mulaw.wav', wavBytes(1, 8000, '8m', [0, 1, 2, 3]));
  assert.throws(
    () => decodeWav(mulaw.file, mulaw.bytes),
    (error: unknown) =>
      error instanceof ModelFileError &&
      error.message.includes('mulaw.wav') &&
      /only PCM 8\/16\/24\/32-bit and 32-bit float/.test(error.problem),
  );
  const headerOnly = await roundTrip(
    'cut.wav',
    wavBytes(1, 8000, '16', [1, 2, 3, 4]).subarray(0, 20),
  );
  assert.throws(
    () => decodeWav(headerOnly.file, headerOnly.bytes),
    (error: unknown) => error instanceof ModelFileError && error.message.includes('cut.wav'),
  );
});
