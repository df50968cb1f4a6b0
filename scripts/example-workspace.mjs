#!/usr/bin/env node
// Prepares the example workspace that `npm start` opens and the end-to-end tests copy:
// the committed files under example/ plus generated models in the ignored example/models/.
//
//   node scripts/example-workspace.mjs          fill example/models/ (idempotent)
//   node scripts/example-workspace.mjs --copy D  also copy the whole workspace to folder D
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const exampleDir = path.join(projectRoot, 'example');
export const exampleModelsDir = path.join(exampleDir, 'models');

/** Real trained ONNX models (Silero VAD) that ship inside an npm package. */
const SILERO_MODELS = ['silero_vad_legacy.onnx', 'silero_vad_v5.onnx', 'silero_vad_v6.onnx'];
const SILERO_SOURCE_DIR = path.join(projectRoot, 'node_modules', '@ricky0123', 'vad-web', 'dist');

export const SAFETENSORS_MODEL = 'mlp_classifier.safetensors';
export const BROKEN_MODEL = 'broken.onnx';

/**
 * The small MLP written to the safetensors file: names, dtypes and shapes in file order.
 * The values are seeded, so the file is the same bytes on every machine.
 */
export const MLP_TENSORS = [
  { name: 'encoder.fc1.weight', dtype: 'F32', shape: [64, 32] },
  { name: 'encoder.fc1.bias', dtype: 'F32', shape: [64] },
  { name: 'encoder.norm.weight', dtype: 'F32', shape: [64] },
  { name: 'encoder.norm.bias', dtype: 'F32', shape: [64] },
  { name: 'head.fc2.weight', dtype: 'F16', shape: [10, 64] },
  { name: 'head.fc2.bias', dtype: 'F16', shape: [10] },
];

const MLP_METADATA = {
  format: 'pt',
  description: 'LayerLens example: a small MLP classifier (32 features -> 10 classes)',
  generator: 'scripts/example-workspace.mjs',
};

/** Deterministic uniform generator in [0, 1) (mulberry32). */
function seededRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box-Muller) from a seeded uniform generator. */
function seededNormal(seed) {
  const uniform = seededRandom(seed);
  return () => {
    const u = 1 - uniform();
    const v = uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

const float32Scratch = new Float32Array(1);
const float32ScratchBits = new Uint32Array(float32Scratch.buffer);

/** IEEE 754 half-precision bits of a number (round to nearest even; normals and subnormals). */
export function toFloat16Bits(value) {
  float32Scratch[0] = value;
  const bits = float32ScratchBits[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign;
    const fullMantissa = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    let half = fullMantissa >>> shift;
    const remainder = fullMantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && half & 1)) half += 1;
    return sign | half;
  }
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  if (remainder > 0x1000 || (remainder === 0x1000 && half & 1)) half += 1;
  return sign | half;
}

function elementCount(shape) {
  return shape.reduce((product, dim) => product * dim, 1);
}

/** Values for one MLP tensor: Kaiming-like weights, small biases, norm scales near 1. */
function tensorValues(tensor, index) {
  const normal = seededNormal(0x1a7e5 + index);
  const count = elementCount(tensor.shape);
  const fanIn = tensor.shape.length > 1 ? tensor.shape[1] : tensor.shape[0];
  const values = new Array(count);
  for (let i = 0; i < count; i++) {
    if (tensor.name.endsWith('norm.weight')) values[i] = 1 + 0.05 * normal();
    else if (tensor.name.endsWith('bias')) values[i] = 0.02 * normal();
    else values[i] = normal() * Math.sqrt(2 / fanIn);
  }
  return values;
}

function encodeTensor(tensor, values) {
  if (tensor.dtype === 'F32') {
    const buffer = Buffer.alloc(values.length * 4);
    values.forEach((value, i) => buffer.writeFloatLE(value, i * 4));
    return buffer;
  }
  if (tensor.dtype === 'F16') {
    const buffer = Buffer.alloc(values.length * 2);
    values.forEach((value, i) => buffer.writeUInt16LE(toFloat16Bits(value), i * 2));
    return buffer;
  }
  throw new Error(`example writer does not encode dtype ${tensor.dtype}`);
}

/**
 * Encodes a safetensors file: an 8-byte little-endian header length, the JSON header
 * (padded with spaces to 8 bytes), then the tensors' bytes back to back.
 */
export function encodeSafetensors(tensors, metadata) {
  const header = { __metadata__: metadata };
  const payloads = [];
  let offset = 0;
  tensors.forEach((tensor, index) => {
    const bytes = encodeTensor(tensor, tensorValues(tensor, index));
    header[tensor.name] = {
      dtype: tensor.dtype,
      shape: tensor.shape,
      data_offsets: [offset, offset + bytes.length],
    };
    payloads.push(bytes);
    offset += bytes.length;
  });
  let headerJson = JSON.stringify(header);
  headerJson += ' '.repeat((8 - (Buffer.byteLength(headerJson) % 8)) % 8);
  const headerBytes = Buffer.from(headerJson, 'utf8');
  const lengthPrefix = Buffer.alloc(8);
  lengthPrefix.writeBigUInt64LE(BigInt(headerBytes.length));
  return Buffer.concat([lengthPrefix, headerBytes, ...payloads]);
}

/** Bytes that look nothing like a model: a text line, then a seeded noise tail. */
function brokenModelBytes() {
  const uniform = seededRandom(0xbad);
  const noise = Buffer.alloc(512);
  for (let i = 0; i < noise.length; i++) noise[i] = Math.floor(uniform() * 256);
  return Buffer.concat([Buffer.from('this is not an ONNX model\n', 'utf8'), noise]);
}

function writeIfDifferent(file, bytes) {
  if (existsSync(file) && readFileSync(file).equals(bytes)) return false;
  writeFileSync(file, bytes);
  return true;
}

/**
 * Fills example/models/ with the generated and copied models. Returns the model paths.
 * `log` receives one line per file written.
 */
export function prepareExampleWorkspace({ log = () => {} } = {}) {
  mkdirSync(exampleModelsDir, { recursive: true });
  for (const name of SILERO_MODELS) {
    const source = path.join(SILERO_SOURCE_DIR, name);
    if (!existsSync(source)) {
      throw new Error(`missing ${source}: run \`npm ci\` first (it comes with @ricky0123/vad-web)`);
    }
    if (writeIfDifferent(path.join(exampleModelsDir, name), readFileSync(source))) {
      log(`copied ${name}`);
    }
  }
  const safetensorsPath = path.join(exampleModelsDir, SAFETENSORS_MODEL);
  if (writeIfDifferent(safetensorsPath, encodeSafetensors(MLP_TENSORS, MLP_METADATA))) {
    log(`wrote ${SAFETENSORS_MODEL}`);
  }
  const brokenPath = path.join(exampleModelsDir, BROKEN_MODEL);
  if (writeIfDifferent(brokenPath, brokenModelBytes())) log(`wrote ${BROKEN_MODEL}`);
  return {
    workspace: exampleDir,
    models: [...SILERO_MODELS, SAFETENSORS_MODEL, BROKEN_MODEL].map((name) =>
      path.join(exampleModelsDir, name),
    ),
  };
}

/** Prepares the example workspace and copies it to `destination` (e.g. a test's temp folder). */
export function copyExampleWorkspace(destination, options) {
  prepareExampleWorkspace(options);
  cpSync(exampleDir, destination, { recursive: true });
  return destination;
}

function main(args) {
  const log = (line) => console.log(`example-workspace: ${line}`);
  const copyIndex = args.indexOf('--copy');
  if (copyIndex >= 0) {
    const destination = args[copyIndex + 1];
    if (!destination) throw new Error('--copy needs a destination folder');
    copyExampleWorkspace(path.resolve(destination), { log });
    log(`copied the workspace to ${path.resolve(destination)}`);
  } else {
    const { models } = prepareExampleWorkspace({ log });
    log(`ready: ${models.length} models in ${path.relative(process.cwd(), exampleModelsDir)}`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2));
  } catch (error) {
    console.error(`example-workspace: ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  }
}
