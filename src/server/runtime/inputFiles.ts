/**
 * User-provided sample inputs: a folder with `<input>.npy` or `<input>.json` per model
 * input, or `.npz` archives whose entries are named after the inputs. Names that are not
 * valid file names match with every character outside `[A-Za-z0-9._-]` replaced by `_`.
 * JSON holds a (nested) array of numbers, or `{ "shape": [...], "data": [...] }`.
 * Values are converted to the input's element type. Images (PNG, JPEG) and WAV files
 * in the folder are each one sample of the model's image or audio input (mediaInputs.ts).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { MAX_SAMPLE_INPUT_BYTES } from '../../shared/limits';
import { decodeValues } from '../analysis/decode';
import { parseFileJson } from '../formats/jsonText';
import { ModelFileError } from '../formats/types';
import type { LayerLensSettings } from '../../shared/settings';
import {
  audioSample,
  decodeImage,
  decodeWav,
  imageLayout,
  imageSample,
  isAudioInput,
} from './mediaInputs';
import { readNumpyFile, type NpyArray } from './npy';
import { isSampleDType, sampleTensor, type InputSpec, type SampleTensor } from './sampleInputs';

function fileStem(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

function npyValues(array: NpyArray): ArrayLike<number> {
  const { dtype, data } = array;
  const count = array.shape.reduce((a, b) => a * b, 1);
  const copy = new Uint8Array(data);
  switch (dtype) {
    case 'int64':
      return Array.from(new BigInt64Array(copy.buffer, 0, count), Number);
    case 'uint64':
      return Array.from(new BigUint64Array(copy.buffer, 0, count), Number);
    default:
      return decodeValues(dtype, copy, count);
  }
}

function jsonTensor(value: unknown, file: string): { shape: number[]; values: number[] } {
  const fail = (problem: string): never => {
    throw new ModelFileError(file, `not a usable JSON sample input: ${problem}`);
  };
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const record = value as { shape?: unknown; data?: unknown };
    if (!Array.isArray(record.shape) || !Array.isArray(record.data))
      fail('an object needs "shape" and "data" arrays');
    const shape = (record.shape as unknown[]).map((d) => {
      if (typeof d !== 'number' || !Number.isInteger(d) || d < 0)
        fail(`dimension ${JSON.stringify(d)} is not a size`);
      return d as number;
    });
    const values = (record.data as unknown[])
      .flat(Infinity)
      .map((v) => (typeof v === 'boolean' ? Number(v) : v));
    if (values.some((v) => typeof v !== 'number'))
      fail('"data" holds something other than numbers');
    if (values.length !== shape.reduce((a, b) => a * b, 1)) {
      fail(
        `"data" has ${values.length} values, shape [${shape.join(', ')}] needs ${shape.reduce((a, b) => a * b, 1)}`,
      );
    }
    return { shape, values: values as number[] };
  }
  const shape: number[] = [];
  let level: unknown = value;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0];
  }
  const values = Array.isArray(value) ? (value as unknown[]).flat(Infinity) : [value];
  if (values.some((v) => typeof v !== 'number' && typeof v !== 'boolean'))
    fail('it holds something other than numbers');
  if (values.length !== shape.reduce((a, b) => a * b, 1)) fail('the nested arrays are ragged');
  return { shape, values: values.map(Number) };
}

/**
 * The sample inputs found in `folder` for `specs`; inputs without a file are left out
 * (the caller generates them). `files` lists what was read.
 */
export async function readInputFolder(
  folder: string,
  specs: readonly InputSpec[],
): Promise<{ feeds: Map<string, SampleTensor>; files: string[] }> {
  let entries: string[];
  try {
    entries = await readdir(folder);
  } catch (error) {
    throw new ModelFileError(
      folder,
      `the sample-input folder cannot be read (${(error as Error).message})`,
    );
  }
  const feeds = new Map<string, SampleTensor>();
  const files: string[] = [];
  const archives = entries.filter((e) => e.toLowerCase().endsWith('.npz')).sort();
  const archiveArrays: { file: string; arrays: Map<string, NpyArray> }[] = [];
  for (const archive of archives) {
    const file = path.join(folder, archive);
    archiveArrays.push({ file, arrays: (await readNumpyFile(file)) as Map<string, NpyArray> });
  }
  for (const spec of specs) {
    if (!isSampleDType(spec.dtype)) continue;
    const stems = [spec.name, fileStem(spec.name)];
    const npy = entries.find((e) => stems.some((s) => e === `${s}.npy`));
    const json = entries.find((e) => stems.some((s) => e === `${s}.json`));
    let shape: readonly number[];
    let values: ArrayLike<number>;
    let source: string;
    if (npy) {
      source = path.join(folder, npy);
      const array = (await readNumpyFile(source)) as NpyArray;
      ({ shape } = array);
      values = npyValues(array);
    } else if (json) {
      source = path.join(folder, json);
      const info = await stat(source);
      if (info.size > MAX_SAMPLE_INPUT_BYTES) {
        throw new ModelFileError(
          source,
          `is ${info.size} bytes, more than the ${MAX_SAMPLE_INPUT_BYTES} accepted`,
        );
      }
      const parsed = parseFileJson(source, await readFile(source, 'utf8'), 'the input file');
      ({ shape, values } = jsonTensor(parsed, source));
    } else {
      const hit = archiveArrays.find(({ arrays }) => stems.some((s) => arrays.has(s)));
      if (!hit) continue;
      const array = stems.map((s) => hit.arrays.get(s)).find((a) => a !== undefined)!;
      source = `${hit.file}:${spec.name}`;
      ({ shape } = array);
      values = npyValues(array);
    }
    feeds.set(spec.name, sampleTensor(spec.dtype, shape, values));
    files.push(source);
  }
  return { feeds, files };
}

const IMAGE_FILE = /\.(png|jpe?g)$/i;
const WAV_FILE = /\.wav$/i;

/** Sample inputs from the images and WAV files of a folder: one sample per file. */
export interface MediaSamples {
  readonly samples: Map<string, SampleTensor>[];
  /** "images: 12 files for input 'x'", for reports; empty when none were used. */
  readonly coverage: string[];
}

/**
 * The images (PNG, JPEG) and WAV files in `folder`, each decoded into one sample of the
 * model's image input or audio input (at most `limit` files each, in name order). Files
 * of a kind the model has no input for are left out, and the coverage says so.
 */
export async function readMediaFolder(
  folder: string,
  specs: readonly InputSpec[],
  settings: LayerLensSettings,
  limit: number,
): Promise<MediaSamples> {
  let entries: string[];
  try {
    entries = (await readdir(folder)).sort();
  } catch {
    return { samples: [], coverage: [] };
  }
  const images = entries.filter((e) => IMAGE_FILE.test(e));
  const sounds = entries.filter((e) => WAV_FILE.test(e));
  const samples: Map<string, SampleTensor>[] = [];
  const coverage: string[] = [];
  const imageSpec = specs.find((s) => imageLayout(s, settings['validation.imageLayout']));
  const audioSpec = specs.find((s) => s !== imageSpec && isAudioInput(s));
  const use = async (
    files: readonly string[],
    spec: InputSpec | undefined,
    kind: string,
    decode: (file: string, bytes: Uint8Array) => SampleTensor,
  ): Promise<void> => {
    if (files.length === 0) return;
    if (!spec) {
      coverage.push(`${files.length} ${kind} files left out: the model has no ${kind} input`);
      return;
    }
    const used = files.slice(0, limit);
    for (const name of used) {
      const file = path.join(folder, name);
      const info = await stat(file);
      if (info.size > MAX_SAMPLE_INPUT_BYTES) {
        throw new ModelFileError(
          file,
          `is ${info.size} bytes, more than the ${MAX_SAMPLE_INPUT_BYTES} accepted`,
        );
      }
      samples.push(new Map([[spec.name, decode(file, await readFile(file))]]));
    }
    coverage.push(
      `${used.length} of ${files.length} ${kind} files from ${folder} for input '${spec.name}'`,
    );
  };
  await use(images, imageSpec, 'image', (file, bytes) => {
    const size = settings['validation.imageSize'];
    return imageSample(decodeImage(file, bytes), imageSpec!, {
      layout: settings['validation.imageLayout'],
      size: size.length === 2 ? [size[0]!, size[1]!] : null,
      mean: settings['validation.imageMean'],
      std: settings['validation.imageStd'],
      channelOrder: settings['validation.channelOrder'],
    });
  });
  await use(sounds, audioSpec, 'WAV', (file, bytes) =>
    audioSample(decodeWav(file, bytes), audioSpec!, {
      sampleRate: settings['validation.audioSampleRate'],
    }),
  );
  return { samples, coverage };
}
