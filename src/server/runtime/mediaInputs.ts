/**
 * Sample inputs from media files: PNG/JPEG images for image inputs and WAV audio for
 * audio inputs. Decoding (pngjs, jpeg-js, wavefile) is bounded by named limits checked
 * on the headers before any pixel or sample is decoded; the rest (layout guess, bilinear
 * resize, normalisation, mono mix, linear resampling) is plain arithmetic here.
 */
import { decode as decodeJpeg } from 'jpeg-js';
import { PNG } from 'pngjs';
import { WaveFile } from 'wavefile';
import type { ChannelOrder, ImageLayoutSetting } from '../../shared/settings';
import { ModelFileError } from '../formats/types';
import {
  MAX_GENERATED_ELEMENTS,
  isSampleDType,
  sampleTensor,
  type InputSpec,
  type SampleDType,
  type SampleTensor,
} from './sampleInputs';

/** Pixels (width × height) of an image accepted as a sample input: 64 megapixels. */
export const MAX_IMAGE_PIXELS = 64 * 1024 * 1024;

/** Samples (all channels together) of a WAV file accepted as a sample input. */
export const MAX_AUDIO_SAMPLES = 16 * 1024 * 1024;

/** Longer side of an image input whose height and width the model leaves open. */
export const AUTO_IMAGE_MAX_SIDE = 640;

/** Sides of an image input the model leaves open are multiples of this. */
export const AUTO_IMAGE_MULTIPLE = 32;

/** The open side of an image input with one fixed side is a multiple of this. */
export const FREE_SIDE_MULTIPLE = 8;

/** Smallest last dimension of a fixed-length audio input. */
export const MIN_AUDIO_LENGTH = 400;

/** A decoded image: 8-bit RGBA, row by row. */
export interface DecodedImage {
  readonly width: number;
  readonly height: number;
  readonly rgba: Uint8Array;
}

/** Decoded audio: one array of samples in [−1, 1] per channel. */
export interface DecodedAudio {
  readonly sampleRate: number;
  readonly channels: Float32Array[];
}

export interface ImageOptions {
  readonly layout: ImageLayoutSetting;
  /** [height, width] for the sides the model leaves open; null: automatic. */
  readonly size: readonly [number, number] | null;
  /** Per-channel mean, subtracted from pixel / 255; one value applies to every channel. */
  readonly mean: readonly number[];
  /** Per-channel standard deviation, divides after the mean; one value applies to all. */
  readonly std: readonly number[];
  readonly channelOrder: ChannelOrder;
}

export interface AudioOptions {
  /** Rate (Hz) the audio is resampled to. */
  readonly sampleRate: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes: Uint8Array, prefix: readonly number[]): boolean {
  return bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);
}

function checkPixels(file: string, width: number, height: number): void {
  if (width < 1 || height < 1) {
    throw new ModelFileError(file, `the image header gives a size of ${width}×${height} pixels`);
  }
  if (width * height > MAX_IMAGE_PIXELS) {
    throw new ModelFileError(
      file,
      `the image is ${width}×${height} pixels, more than the ${MAX_IMAGE_PIXELS} pixels accepted`,
    );
  }
}

/** Width and height from a PNG's IHDR chunk (the first chunk after the signature). */
function pngSize(file: string, bytes: Uint8Array): { width: number; height: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = String.fromCharCode(...bytes.subarray(12, 16));
  if (bytes.length < 24 || type !== 'IHDR') {
    throw new ModelFileError(file, 'the PNG image has no header (IHDR chunk)');
  }
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/** Start-of-frame markers of the JPEG coding processes (baseline, progressive, …). */
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/** Width and height from a JPEG's start-of-frame segment, found by walking the segments. */
function jpegSize(file: string, bytes: Uint8Array): { width: number; height: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) break;
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      at += 2; // markers without a length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) break; // end of image, start of scan
    const length = view.getUint16(at + 2);
    if (isStartOfFrame(marker)) {
      if (length < 8 || at + 9 > bytes.length) break;
      return { height: view.getUint16(at + 5), width: view.getUint16(at + 7) };
    }
    if (length < 2) break;
    at += 2 + length;
  }
  throw new ModelFileError(file, 'the JPEG image has no readable frame header (SOF segment)');
}

/**
 * An 8-bit RGBA image from PNG or JPEG bytes (told apart by their signature). The size in
 * the header is checked against MAX_IMAGE_PIXELS before the pixels are decoded.
 */
export function decodeImage(file: string, bytes: Uint8Array): DecodedImage {
  if (startsWith(bytes, PNG_SIGNATURE)) {
    const { width, height } = pngSize(file, bytes);
    checkPixels(file, width, height);
    let png: PNG;
    try {
      png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (error) {
      throw new ModelFileError(
        file,
        `the PNG image cannot be decoded (${(error as Error).message})`,
      );
    }
    if (png.width !== width || png.height !== height || png.data.length < width * height * 4) {
      throw new ModelFileError(file, 'the PNG image decodes to fewer pixels than its header gives');
    }
    return {
      width,
      height,
      rgba: new Uint8Array(png.data.buffer, png.data.byteOffset, width * height * 4),
    };
  }
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) {
    const { width, height } = jpegSize(file, bytes);
    checkPixels(file, width, height);
    let jpeg: { width: number; height: number; data: Uint8Array };
    try {
      jpeg = decodeJpeg(bytes, {
        useTArray: true,
        formatAsRGBA: true,
        maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6,
        maxMemoryUsageInMB: 2048,
      });
    } catch (error) {
      throw new ModelFileError(
        file,
        `the JPEG image cannot be decoded (${(error as Error).message})`,
      );
    }
    if (jpeg.data.length < jpeg.width * jpeg.height * 4 || jpeg.width < 1 || jpeg.height < 1) {
      throw new ModelFileError(file, 'the JPEG image decodes to no pixels');
    }
    checkPixels(file, jpeg.width, jpeg.height);
    return { width: jpeg.width, height: jpeg.height, rgba: jpeg.data };
  }
  throw new ModelFileError(file, 'is not a PNG or JPEG image (its first bytes are neither)');
}

function isFloat(dtype: string | null): boolean {
  return dtype === 'float32' || dtype === 'float16' || dtype === 'float64';
}

function isFixed(dim: number | string | null | undefined): dim is number {
  return typeof dim === 'number' && dim >= 1;
}

const IMAGE_CHANNELS: ReadonlySet<number> = new Set([1, 3, 4]);

/**
 * Whether `spec` looks like an image input: a rank-4 float input with 1, 3 or 4 channels
 * (a fixed size) at axis 1 (NCHW) or axis 3 (NHWC); when both fit, NCHW wins unless only
 * axis 3 has 3 channels. With an
 * explicit `layout` the channel axis is the one it names (3 channels when that size is
 * open). Null when the input is not one.
 */
export function imageLayout(
  spec: InputSpec,
  layout: ImageLayoutSetting = 'auto',
): { layout: 'NCHW' | 'NHWC'; channels: number } | null {
  const shape = spec.shape;
  if (!isFloat(spec.dtype) || !shape || shape.length !== 4) return null;
  if (layout !== 'auto') {
    const dim = shape[layout === 'NCHW' ? 1 : 3];
    if (!isFixed(dim)) return { layout, channels: 3 };
    return IMAGE_CHANNELS.has(dim) ? { layout, channels: dim } : null;
  }
  const channelsAt = (axis: number): number | null => {
    const dim = shape[axis];
    return isFixed(dim) && IMAGE_CHANNELS.has(dim) ? dim : null;
  };
  const first = channelsAt(1);
  const last = channelsAt(3);
  // Both fit (say [1, 4, 5, 3]): three channels are the likelier reading.
  if (first !== null && !(last === 3 && first !== 3)) return { layout: 'NCHW', channels: first };
  if (last !== null) return { layout: 'NHWC', channels: last };
  return null;
}

function roundToMultiple(value: number, multiple: number): number {
  return Math.max(multiple, Math.round(value / multiple) * multiple);
}

/** [height, width] of the tensor an image becomes (see imageSample). */
function targetSize(
  image: DecodedImage,
  fixedHeight: number | null,
  fixedWidth: number | null,
  size: readonly [number, number] | null,
): [number, number] {
  if (fixedHeight !== null && fixedWidth !== null) return [fixedHeight, fixedWidth];
  if (fixedHeight !== null) {
    const width =
      size?.[1] ?? roundToMultiple((fixedHeight * image.width) / image.height, FREE_SIDE_MULTIPLE);
    return [fixedHeight, width];
  }
  if (fixedWidth !== null) {
    const height =
      size?.[0] ?? roundToMultiple((fixedWidth * image.height) / image.width, FREE_SIDE_MULTIPLE);
    return [height, fixedWidth];
  }
  if (size) return [size[0], size[1]];
  const scale = Math.min(1, AUTO_IMAGE_MAX_SIDE / Math.max(image.width, image.height));
  return [
    roundToMultiple(image.height * scale, AUTO_IMAGE_MULTIPLE),
    roundToMultiple(image.width * scale, AUTO_IMAGE_MULTIPLE),
  ];
}

/**
 * For each output position along one axis: the two source positions and the weight of
 * the second (half-pixel centres, clamped at the edges).
 */
function bilinearTaps(
  from: number,
  to: number,
): { lo: Int32Array; hi: Int32Array; weight: Float64Array } {
  const lo = new Int32Array(to);
  const hi = new Int32Array(to);
  const weight = new Float64Array(to);
  const scale = from / to;
  for (let i = 0; i < to; i++) {
    const position = Math.min(from - 1, Math.max(0, (i + 0.5) * scale - 0.5));
    const first = Math.floor(position);
    lo[i] = first;
    hi[i] = Math.min(from - 1, first + 1);
    weight[i] = position - first;
  }
  return { lo, hi, weight };
}

function perChannel(values: readonly number[], channel: number, fallback: number): number {
  if (values.length === 1) return values[0]!;
  return values[channel] ?? fallback;
}

function checkSize(what: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${what} ${value} is not a positive whole number`);
  }
}

function checkElements(spec: InputSpec, shape: readonly number[]): void {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count > MAX_GENERATED_ELEMENTS) {
    throw new RangeError(
      `input '${spec.name}' of shape [${shape.join(', ')}] is larger than the ${MAX_GENERATED_ELEMENTS} elements accepted`,
    );
  }
}

function floatDType(spec: InputSpec): SampleDType {
  return isSampleDType(spec.dtype) && isFloat(spec.dtype) ? spec.dtype : 'float32';
}

/**
 * The sample tensor an image becomes for the image input `spec`: resized bilinearly to
 * the input's fixed height and width, else `options.size`, else the image's own size
 * scaled down to at most AUTO_IMAGE_MAX_SIDE with sides rounded to AUTO_IMAGE_MULTIPLE.
 * With one side fixed, the other keeps the aspect ratio, rounded to FREE_SIDE_MULTIPLE.
 * Values are (pixel / 255 − mean[c]) / std[c] in RGB or BGR order (1 channel: luma;
 * 4 channels: alpha last). The batch is 1, or the image repeated to a fixed batch size.
 */
export function imageSample(
  image: DecodedImage,
  spec: InputSpec,
  options: ImageOptions,
): SampleTensor {
  const found = imageLayout(spec, options.layout);
  if (!found) {
    throw new RangeError(
      `input '${spec.name}' (${spec.dtype ?? 'unknown type'}, shape [${(spec.shape ?? []).join(', ')}]) is not an image input`,
    );
  }
  const { layout, channels } = found;
  const shape = spec.shape!;
  const [heightAxis, widthAxis] = layout === 'NCHW' ? [2, 3] : [1, 2];
  const fixed = (axis: number) => {
    const dim = shape[axis];
    return isFixed(dim) ? dim : null;
  };
  if (options.size) {
    checkSize('image height', options.size[0]);
    checkSize('image width', options.size[1]);
  }
  for (const [c, s] of options.std.entries()) {
    if (!Number.isFinite(s) || s === 0) {
      throw new RangeError(`image standard deviation ${s} (channel ${c}) is not a non-zero number`);
    }
  }
  const [height, width] = targetSize(image, fixed(heightAxis), fixed(widthAxis), options.size);
  const batch = fixed(0) ?? 1;
  const outShape =
    layout === 'NCHW' ? [batch, channels, height, width] : [batch, height, width, channels];
  checkElements(spec, outShape);

  // Source channel (in RGBA) of each output channel; -1: luma of R, G, B.
  const bgr = options.channelOrder === 'BGR';
  const sources = channels === 1 ? [-1] : bgr ? [2, 1, 0, 3] : [0, 1, 2, 3];
  const mean = Array.from({ length: channels }, (_, c) => perChannel(options.mean, c, 0));
  const std = Array.from({ length: channels }, (_, c) => perChannel(options.std, c, 1));

  const rows = bilinearTaps(image.height, height);
  const cols = bilinearTaps(image.width, width);
  const { rgba } = image;
  const rowStride = image.width * 4;
  const plane = height * width;
  const values = new Float32Array(batch * channels * plane);
  const sample = (y: number, x: number, channel: number): number => {
    const top = rows.lo[y]! * rowStride;
    const bottom = rows.hi[y]! * rowStride;
    const left = cols.lo[x]! * 4 + channel;
    const right = cols.hi[x]! * 4 + channel;
    const wy = rows.weight[y]!;
    const wx = cols.weight[x]!;
    const upper = rgba[top + left]! * (1 - wx) + rgba[top + right]! * wx;
    const lower = rgba[bottom + left]! * (1 - wx) + rgba[bottom + right]! * wx;
    return upper * (1 - wy) + lower * wy;
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        const source = sources[c]!;
        const pixel =
          source < 0
            ? 0.299 * sample(y, x, 0) + 0.587 * sample(y, x, 1) + 0.114 * sample(y, x, 2)
            : sample(y, x, source);
        const index =
          layout === 'NCHW' ? c * plane + y * width + x : (y * width + x) * channels + c;
        values[index] = (pixel / 255 - mean[c]!) / std[c]!;
      }
    }
  }
  const one = channels * plane;
  for (let b = 1; b < batch; b++) values.copyWithin(b * one, 0, one);
  return sampleTensor(floatDType(spec), outShape, values);
}

const PCM_BITS: ReadonlySet<number> = new Set([8, 16, 24, 32]);

/** WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT and WAVE_FORMAT_EXTENSIBLE. */
const WAVE_PCM = 1;
const WAVE_FLOAT = 3;
const WAVE_EXTENSIBLE = 0xfffe;

interface WavFormat {
  audioFormat: number;
  numChannels: number;
  sampleRate: number;
  bitsPerSample: number;
  subformat?: number[];
}

/**
 * The channels of a WAV file (PCM 8/16/24/32-bit or 32-bit float, RIFF or RIFX) as
 * samples in [−1, 1]. The sample count in the header is checked against
 * MAX_AUDIO_SAMPLES before the samples are decoded.
 */
export function decodeWav(file: string, bytes: Uint8Array): DecodedAudio {
  const text = (from: number) => String.fromCharCode(...bytes.subarray(from, from + 4));
  if (bytes.length < 12 || !['RIFF', 'RIFX', 'RF64'].includes(text(0)) || text(8) !== 'WAVE') {
    throw new ModelFileError(file, 'is not a WAV file (it does not start with RIFF…WAVE)');
  }
  const wav = new WaveFile();
  const fail = (error: unknown): never => {
    throw new ModelFileError(
      file,
      `the WAV file cannot be read (${error instanceof Error ? error.message : String(error)})`,
    );
  };
  try {
    wav.fromBuffer(bytes, false);
  } catch (error) {
    fail(error);
  }
  const fmt = wav.fmt as WavFormat;
  let format = fmt.audioFormat;
  if (format === WAVE_EXTENSIBLE && fmt.subformat) format = fmt.subformat[0]! & 0xffff;
  const bits = fmt.bitsPerSample;
  const float = format === WAVE_FLOAT && bits === 32;
  if (!(float || (format === WAVE_PCM && PCM_BITS.has(bits)))) {
    throw new ModelFileError(
      file,
      `holds audio in format ${fmt.audioFormat} with ${bits}-bit samples; only PCM 8/16/24/32-bit and 32-bit float WAV files are supported`,
    );
  }
  const channelCount = fmt.numChannels;
  if (channelCount < 1 || !(fmt.sampleRate >= 1)) {
    throw new ModelFileError(
      file,
      `the WAV header gives ${channelCount} channels at ${fmt.sampleRate} Hz`,
    );
  }
  const dataBytes = Math.min((wav.data as { chunkSize: number }).chunkSize, bytes.length);
  const declared = Math.floor(dataBytes / (bits / 8));
  if (declared > MAX_AUDIO_SAMPLES) {
    throw new ModelFileError(
      file,
      `the WAV file holds ${declared} samples, more than the ${MAX_AUDIO_SAMPLES} accepted`,
    );
  }
  let raw: Float64Array | Int32Array;
  try {
    wav.fromBuffer(bytes, true);
    const data = (wav.data as { samples: Uint8Array }).samples;
    const whole = data.length - (data.length % (bits / 8));
    (wav.data as { samples: Uint8Array }).samples = data.subarray(0, whole);
    // Extensible float files are read as 32-bit integers by wavefile: keep the bits.
    raw = wav.getSamples(true, float && wav.bitDepth !== '32f' ? Int32Array : Float64Array) as
      Float64Array | Int32Array;
  } catch (error) {
    return fail(error);
  }
  let values: ArrayLike<number> = raw;
  if (float && raw instanceof Int32Array) values = new Float32Array(raw.buffer, 0, raw.length);
  const frames = Math.floor(values.length / channelCount);
  if (frames === 0) throw new ModelFileError(file, 'the WAV file holds no samples');
  const offset = bits === 8 ? 128 : 0;
  const scale = float ? 1 : 2 ** (bits - 1);
  const channels = Array.from({ length: channelCount }, () => new Float32Array(frames));
  for (let f = 0; f < frames; f++) {
    for (let c = 0; c < channelCount; c++) {
      channels[c]![f] = (values[f * channelCount + c]! - offset) / scale;
    }
  }
  return { sampleRate: fmt.sampleRate, channels };
}

/**
 * Whether `spec` looks like an audio input: a float input of rank 1 to 3 whose last
 * dimension is open (symbolic or unknown) or at least MIN_AUDIO_LENGTH, and whose other
 * dimensions are open or 1 (a batch and a channel of one).
 */
export function isAudioInput(spec: InputSpec): boolean {
  const shape = spec.shape;
  if (!isFloat(spec.dtype) || !shape || shape.length < 1 || shape.length > 3) return false;
  const last = shape[shape.length - 1];
  if (isFixed(last) ? last < MIN_AUDIO_LENGTH : typeof last === 'number') return false;
  return shape.slice(0, -1).every((dim) => !isFixed(dim) || dim === 1);
}

/** Samples of `mono` at `to` Hz, interpolated linearly from `from` Hz. */
function resampleLinear(mono: Float32Array, from: number, to: number): Float32Array {
  if (from === to) return mono;
  const length = Math.max(1, Math.round((mono.length * to) / from));
  const out = new Float32Array(length);
  const step = from / to;
  for (let i = 0; i < length; i++) {
    const position = Math.min(mono.length - 1, i * step);
    const first = Math.floor(position);
    const next = Math.min(mono.length - 1, first + 1);
    const weight = position - first;
    out[i] = mono[first]! * (1 - weight) + mono[next]! * weight;
  }
  return out;
}

/**
 * The sample tensor audio becomes for the audio input `spec`: channels mixed to mono,
 * resampled linearly to `options.sampleRate`, shaped [T], [1, T] or [1, 1, T]; a fixed
 * length T crops the audio or pads it with zeros.
 */
export function audioSample(
  audio: DecodedAudio,
  spec: InputSpec,
  options: AudioOptions,
): SampleTensor {
  const shape = spec.shape;
  if (
    !isFloat(spec.dtype) ||
    !shape ||
    shape.length < 1 ||
    shape.length > 3 ||
    shape.slice(0, -1).some((dim) => isFixed(dim) && dim !== 1)
  ) {
    throw new RangeError(
      `input '${spec.name}' (${spec.dtype ?? 'unknown type'}, shape [${(shape ?? []).join(', ')}]) is not an audio input`,
    );
  }
  if (!Number.isFinite(options.sampleRate) || options.sampleRate <= 0) {
    throw new RangeError(`audio sample rate ${options.sampleRate} is not a positive number`);
  }
  const frames = audio.channels[0]?.length ?? 0;
  if (frames === 0 || !(audio.sampleRate > 0)) {
    throw new RangeError(`audio for input '${spec.name}' holds no samples`);
  }
  const resampledLength = Math.round((frames * options.sampleRate) / audio.sampleRate);
  const last = shape[shape.length - 1];
  const length = isFixed(last) ? last : Math.max(1, resampledLength);
  const outShape = [...shape.slice(0, -1).map(() => 1), length];
  checkElements(spec, [Math.max(length, resampledLength)]);

  const mono = new Float32Array(frames);
  for (const channel of audio.channels) {
    for (let i = 0; i < frames; i++) mono[i]! += channel[i]! / audio.channels.length;
  }
  const resampled = resampleLinear(mono, audio.sampleRate, options.sampleRate);
  const values = new Float32Array(length);
  values.set(resampled.subarray(0, length));
  return sampleTensor(floatDType(spec), outShape, values);
}
