/**
 * ONNX reader: finds every stored tensor (initializers, sparse initializers, Constant
 * nodes, subgraphs of If/Loop/Scan, external data) and which layer uses it.
 */
import { promises as fsp } from 'node:fs';
import * as nodePath from 'node:path';
import { onnx } from 'onnx-proto';
import { byteLengthOf, type DType } from '../../shared/dtypes';
import { MAX_ONNX_PROTO_BYTES, MAX_SUBGRAPH_DEPTH, MAX_TENSORS } from '../../shared/limits';
import type {
  MetadataEntry,
  ModelSummary,
  TensorInfo,
  TensorLocation,
  ValueInfo,
} from '../../shared/model';
import { dtypeFromOnnxCode } from './onnxDataTypes';
import {
  attributeTensor,
  densifySparse,
  describeSparseTensorProto,
  describeTensorProto,
  int64ToSafeInteger,
  stringTensor,
  type DescribedSparseTensor,
  type DescribedTensor,
  type ProtoInt64,
  type StoredValues,
  type TensorSite,
} from './onnxTensors';
import {
  ModelFileError,
  type FormatModule,
  type OpenedModel,
  type TensorData,
  type TensorEntry,
} from './types';

/** Characters of the model's doc_string shown in the metadata. */
const MAX_DOC_STRING_CHARS = 1000;
/** Characters of one metadata_props value shown in the metadata. */
const MAX_METADATA_VALUE_CHARS = 4096;
/** Warnings listed individually; the rest are counted in one line. */
const MAX_LISTED_WARNINGS = 50;
/** Pass-through nodes followed from a weight to the layer that uses it. */
const MAX_PASS_THROUGH_STEPS = 16;

/** IR version from which graph inputs no longer list every initializer. */
const IR_VERSION_INITIALIZERS_NOT_INPUTS = 4;

/**
 * Ops that only move or re-type a weight on its way to the layer that computes with it.
 * A weight feeding one of them (as its data input, or any input of DequantizeLinear,
 * whose scale and zero point belong to the weight too) is attributed to the first other
 * op downstream.
 */
const PASS_THROUGH_OPS: ReadonlySet<string> = new Set([
  'Identity',
  'Cast',
  'CastLike',
  'Transpose',
  'Reshape',
  'Squeeze',
  'Unsqueeze',
  'Flatten',
  'DequantizeLinear',
  // Exporters split fused weights (an LSTM's four gates) and join them again.
  'Slice',
  'Split',
  'Concat',
]);

function isDefaultDomain(domain: string | null | undefined): boolean {
  return !domain || domain === 'ai.onnx';
}

/** A node that reads a name, within the scope that holds the node. */
interface ConsumerRef {
  readonly scope: GraphScope;
  readonly nodeIndex: number;
}

/** One graph (main or subgraph) with the name lookups attribution needs. */
interface GraphScope {
  readonly proto: onnx.IGraphProto;
  /** `""` for the main graph, `If_0/then_branch` for subgraphs. */
  readonly path: string;
  /** Node names, or `${opType}_${index}` for unnamed nodes. */
  readonly nodeNames: readonly string[];
  /** Subgraphs per node index. */
  readonly children: Map<number, GraphScope[]>;
  /**
   * For every name read in this graph or (without being redefined there) in one of its
   * subgraphs: the first node that reads it, in node order. Names a subgraph reads from
   * outer scopes are thereby found in the outer graph's table too.
   */
  readonly firstConsumers: Map<string, ConsumerRef>;
}

function definedNames(graph: onnx.IGraphProto): Set<string> {
  const names = new Set<string>();
  for (const tensor of graph.initializer ?? []) names.add(tensor.name ?? '');
  for (const sparse of graph.sparseInitializer ?? []) names.add(sparse.values?.name ?? '');
  for (const input of graph.input ?? []) names.add(input.name ?? '');
  for (const node of graph.node ?? []) for (const output of node.output ?? []) names.add(output);
  names.delete('');
  return names;
}

function buildScope(
  graph: onnx.IGraphProto,
  path: string,
  depth: number,
  modelPath: string,
): GraphScope {
  if (depth > MAX_SUBGRAPH_DEPTH) {
    throw new ModelFileError(
      modelPath,
      `subgraphs are nested more than ${MAX_SUBGRAPH_DEPTH} levels deep (at ${path})`,
    );
  }
  const nodes = graph.node ?? [];
  const nodeNames = nodes.map((node, index) => node.name || `${node.opType ?? 'Node'}_${index}`);
  const children = new Map<number, GraphScope[]>();
  const firstConsumers = new Map<string, ConsumerRef>();
  const scope: GraphScope = { proto: graph, path, nodeNames, children, firstConsumers };
  const prefix = path ? `${path}/` : '';
  nodes.forEach((node, nodeIndex) => {
    const self: ConsumerRef = { scope, nodeIndex };
    for (const input of node.input ?? []) {
      if (input && !firstConsumers.has(input)) firstConsumers.set(input, self);
    }
    const subgraphs: GraphScope[] = [];
    for (const attribute of node.attribute ?? []) {
      const name = attribute.name ?? '';
      const at = `${prefix}${nodeNames[nodeIndex]}/${name}`;
      if (attribute.g) subgraphs.push(buildScope(attribute.g, at, depth + 1, modelPath));
      (attribute.graphs ?? []).forEach((subgraph, i) => {
        subgraphs.push(buildScope(subgraph, `${at}[${i}]`, depth + 1, modelPath));
      });
    }
    for (const subgraph of subgraphs) {
      const innerNames = definedNames(subgraph.proto);
      for (const [name, consumer] of subgraph.firstConsumers) {
        if (!innerNames.has(name) && !firstConsumers.has(name)) firstConsumers.set(name, consumer);
      }
    }
    if (subgraphs.length > 0) children.set(nodeIndex, subgraphs);
  });
  return scope;
}

function takesPassThroughInput(node: onnx.INodeProto, inputName: string): boolean {
  if (!isDefaultDomain(node.domain) || !PASS_THROUGH_OPS.has(node.opType ?? '')) return false;
  if (!node.output?.[0]) return false;
  // Every input of these carries weight values; for the others only the data input does
  // (a Reshape's shape or a Slice's bounds are not part of the weight).
  const anyInput = node.opType === 'DequantizeLinear' || node.opType === 'Concat';
  return anyInput || node.input?.[0] === inputName;
}

/**
 * The layer a tensor belongs to. Rule: the first node (in node order) that reads the
 * tensor, searching the tensor's graph and, with ONNX scoping, the subgraphs that read it
 * from the outer scope without redefining the name. While that node is a pass-through op
 * (see PASS_THROUGH_OPS), its output is followed the same way, at most
 * MAX_PASS_THROUGH_STEPS times; a chain that ends without another op gives its last
 * node. Callers fall back to the producing Constant node, or to no node at all.
 */
function findLayer(name: string, scope: GraphScope): { node: string; op: string } | undefined {
  let current = name;
  let currentScope = scope;
  let found: ConsumerRef | undefined;
  for (let step = 0; step <= MAX_PASS_THROUGH_STEPS; step++) {
    const consumer = currentScope.firstConsumers.get(current);
    if (!consumer) break;
    found = consumer;
    const node = consumer.scope.proto.node![consumer.nodeIndex]!;
    if (!takesPassThroughInput(node, current)) break;
    current = node.output![0]!;
    currentScope = consumer.scope;
  }
  if (!found) return undefined;
  const node = found.scope.proto.node![found.nodeIndex]!;
  return { node: found.scope.nodeNames[found.nodeIndex]!, op: node.opType ?? '' };
}

/** A tensor found in the graph, before external files are checked. */
interface FoundTensor {
  readonly name: string;
  readonly location: Exclude<TensorLocation, 'external' | 'safetensors'>;
  readonly scope: GraphScope;
  readonly site: TensorSite;
  /** For Constant nodes: the node, used when nothing consumes the tensor. */
  readonly producer?: { readonly node: string; readonly op: string };
  readonly dense?: DescribedTensor;
  readonly sparse?: DescribedSparseTensor;
}

class WarningList {
  private readonly listed: string[] = [];
  private unlisted = 0;
  add(warning: string): void {
    if (this.listed.length < MAX_LISTED_WARNINGS) this.listed.push(warning);
    else this.unlisted++;
  }
  toArray(): string[] {
    return this.unlisted > 0
      ? [...this.listed, `… and ${this.unlisted} more warnings`]
      : [...this.listed];
  }
}

function siteOf(modelPath: string, name: string, scope: GraphScope): TensorSite {
  const where = scope.path ? ` in graph '${scope.path}'` : '';
  return { modelPath, label: `tensor '${name}'${where}` };
}

/** The value of a Constant node as a tensor, or undefined when it has none we know. */
function describeConstantValue(
  node: onnx.INodeProto,
  fileBuffer: Buffer,
  site: TensorSite,
): { dense?: DescribedTensor; sparse?: DescribedSparseTensor } | undefined {
  for (const attribute of node.attribute ?? []) {
    switch (attribute.name) {
      case 'value':
        if (attribute.t) return { dense: describeTensorProto(attribute.t, fileBuffer, site) };
        break;
      case 'sparse_value':
        if (attribute.sparseTensor)
          return { sparse: describeSparseTensorProto(attribute.sparseTensor, fileBuffer, site) };
        break;
      case 'value_float':
        return { dense: attributeTensor('float32', [], [attribute.f ?? 0], site) };
      case 'value_floats': {
        const floats = attribute.floats ?? [];
        return { dense: attributeTensor('float32', [floats.length], floats, site) };
      }
      case 'value_int':
        return { dense: attributeTensor('int64', [], [(attribute.i ?? 0) as ProtoInt64], site) };
      case 'value_ints': {
        const ints = (attribute.ints ?? []) as ProtoInt64[];
        return { dense: attributeTensor('int64', [ints.length], ints, site) };
      }
      case 'value_string':
        return { dense: stringTensor([], [Uint8Array.from(attribute.s ?? [])], site) };
      case 'value_strings': {
        const strings = (attribute.strings ?? []).map((s) => Uint8Array.from(s));
        return { dense: stringTensor([strings.length], strings, site) };
      }
    }
  }
  return undefined;
}

/** Walks a graph and its subgraphs in reading order: initializers, then nodes (and their subgraphs). */
function collectTensors(
  scope: GraphScope,
  fileBuffer: Buffer,
  modelPath: string,
  found: FoundTensor[],
  warnings: WarningList,
): void {
  const seen = new Set<string>();
  const add = (tensor: FoundTensor): void => {
    if (found.length >= MAX_TENSORS) {
      throw new ModelFileError(modelPath, `the model holds more than ${MAX_TENSORS} tensors`);
    }
    if (seen.has(tensor.name)) {
      warnings.add(
        `tensor name '${tensor.name}' is defined more than once in graph '${scope.path || 'main'}'`,
      );
    }
    seen.add(tensor.name);
    found.push(tensor);
  };
  const graph = scope.proto;
  for (const proto of graph.initializer ?? []) {
    const name = proto.name ?? '';
    const site = siteOf(modelPath, name, scope);
    add({
      name,
      location: 'initializer',
      scope,
      site,
      dense: describeTensorProto(proto, fileBuffer, site),
    });
  }
  for (const proto of graph.sparseInitializer ?? []) {
    const name = proto.values?.name ?? '';
    const site = siteOf(modelPath, name, scope);
    add({
      name,
      location: 'sparse-initializer',
      scope,
      site,
      sparse: describeSparseTensorProto(proto, fileBuffer, site),
    });
  }
  (graph.node ?? []).forEach((node, nodeIndex) => {
    if (node.opType === 'Constant' && isDefaultDomain(node.domain)) {
      const nodeName = scope.nodeNames[nodeIndex]!;
      const name = node.output?.[0] || nodeName;
      const site = siteOf(modelPath, name, scope);
      const value = describeConstantValue(node, fileBuffer, site);
      if (value) {
        add({
          name,
          location: 'constant',
          scope,
          site,
          producer: { node: nodeName, op: 'Constant' },
          ...value,
        });
      } else {
        warnings.add(`Constant node '${nodeName}' has no value LayerLens can read`);
      }
    }
    for (const child of scope.children.get(nodeIndex) ?? [])
      collectTensors(child, fileBuffer, modelPath, found, warnings);
  });
}

/** An external data file, checked to lie inside the model's folder. */
interface ExternalFile {
  readonly path: string;
  /** Relative to the model's folder, with `/` separators. */
  readonly relativeName: string;
  readonly size: number;
}

function isInside(folder: string, candidate: string): boolean {
  const relative = nodePath.relative(folder, candidate);
  return relative !== '' && !relative.startsWith('..') && !nodePath.isAbsolute(relative);
}

async function resolveExternalFile(modelPath: string, location: string): Promise<ExternalFile> {
  const refuse = (why: string): never => {
    throw new ModelFileError(modelPath, `external data location '${location}' ${why}`);
  };
  if (nodePath.posix.isAbsolute(location) || nodePath.win32.isAbsolute(location)) {
    refuse("is an absolute path; external data must be a relative path inside the model's folder");
  }
  const modelDir = nodePath.dirname(modelPath);
  const candidate = nodePath.resolve(modelDir, ...location.split(/[\\/]+/));
  if (!isInside(modelDir, candidate)) refuse("points outside the model's folder");
  let realPath: string;
  let realDir: string;
  try {
    [realPath, realDir] = await Promise.all([fsp.realpath(candidate), fsp.realpath(modelDir)]);
  } catch {
    return refuse('names a file that does not exist');
  }
  if (!isInside(realDir, realPath))
    refuse("leads (through a symbolic link) outside the model's folder");
  const stats = await fsp.stat(realPath);
  if (!stats.isFile()) refuse('is not a regular file');
  return {
    path: candidate,
    relativeName: nodePath.relative(modelDir, candidate).split(nodePath.sep).join('/'),
    size: stats.size,
  };
}

function truncate(text: string, limit: number): string {
  return text.length > limit ? `${text.slice(0, limit)}…` : text;
}

function readValueInfo(info: onnx.IValueInfoProto): ValueInfo {
  const tensorType = info.type?.tensorType ?? info.type?.sparseTensorType;
  if (!tensorType) return { name: info.name ?? '', dtype: null, shape: null };
  const dtype = dtypeFromOnnxCode(tensorType.elemType ?? 0) ?? null;
  const shape = tensorType.shape
    ? (tensorType.shape.dim ?? []).map((dim): number | string | null => {
        if (dim.dimParam) return dim.dimParam;
        if (dim.dimValue !== null && dim.dimValue !== undefined) {
          const value = int64ToSafeInteger(dim.dimValue as ProtoInt64);
          return value !== undefined && value >= 0 ? value : null;
        }
        return null;
      })
    : null;
  return { name: info.name ?? '', dtype, shape };
}

function readMetadata(model: onnx.ModelProto): MetadataEntry[] {
  const entries: MetadataEntry[] = [];
  const irVersion = int64ToSafeInteger(model.irVersion as ProtoInt64);
  entries.push({ key: 'IR version', value: String(irVersion ?? '?') });
  for (const opset of model.opsetImport ?? []) {
    const domain = isDefaultDomain(opset.domain) ? 'ai.onnx' : opset.domain!;
    entries.push({
      key: `opset ${domain}`,
      value: String(int64ToSafeInteger(opset.version as ProtoInt64) ?? '?'),
    });
  }
  const producer = [model.producerName, model.producerVersion].filter(Boolean).join(' ');
  if (producer) entries.push({ key: 'producer', value: producer });
  if (model.domain) entries.push({ key: 'domain', value: model.domain });
  const modelVersion = int64ToSafeInteger(model.modelVersion as ProtoInt64);
  if (modelVersion) entries.push({ key: 'model version', value: String(modelVersion) });
  if (model.graph?.name)
    entries.push({
      key: 'graph name',
      value: truncate(model.graph.name, MAX_METADATA_VALUE_CHARS),
    });
  if (model.docString)
    entries.push({ key: 'doc string', value: truncate(model.docString, MAX_DOC_STRING_CHARS) });
  for (const prop of model.metadataProps ?? []) {
    entries.push({
      key: prop.key ?? '',
      value: truncate(prop.value ?? '', MAX_METADATA_VALUE_CHARS),
    });
  }
  return entries;
}

function countOps(scope: GraphScope, opCounts: Record<string, number>): number {
  let nodeCount = 0;
  for (const node of scope.proto.node ?? []) {
    const op = node.opType ?? '';
    opCounts[op] = (opCounts[op] ?? 0) + 1;
    nodeCount++;
  }
  for (const subgraphs of scope.children.values()) {
    for (const subgraph of subgraphs) nodeCount += countOps(subgraph, opCounts);
  }
  return nodeCount;
}

async function readModelFile(modelPath: string): Promise<Buffer> {
  let size: number;
  try {
    const stats = await fsp.stat(modelPath);
    if (!stats.isFile()) throw new ModelFileError(modelPath, 'is not a regular file');
    size = stats.size;
  } catch (error) {
    if (error instanceof ModelFileError) throw error;
    throw new ModelFileError(modelPath, `cannot be read (${(error as Error).message})`);
  }
  if (size === 0) throw new ModelFileError(modelPath, 'not a valid ONNX model: the file is empty');
  if (size > MAX_ONNX_PROTO_BYTES) {
    throw new ModelFileError(
      modelPath,
      `is ${size} bytes, more than the ${MAX_ONNX_PROTO_BYTES} a protobuf ONNX file can hold (larger models keep their weights in external data files)`,
    );
  }
  return fsp.readFile(modelPath);
}

function decodeModel(modelPath: string, buffer: Buffer): onnx.ModelProto {
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(buffer);
  } catch (error) {
    throw new ModelFileError(
      modelPath,
      `not a valid ONNX model: the protobuf is truncated or corrupt (${(error as Error).message})`,
    );
  }
  if (!model.graph) throw new ModelFileError(modelPath, 'not a valid ONNX model: it has no graph');
  return model;
}

async function openOnnx(inputPath: string): Promise<OpenedModel> {
  const modelPath = nodePath.resolve(inputPath);
  const fileName = nodePath.basename(modelPath);
  let buffer: Buffer | undefined = await readModelFile(modelPath);
  const fileBytes = buffer.length;
  const model = decodeModel(modelPath, buffer);
  const mainGraph = model.graph!;
  const mainScope = buildScope(mainGraph, '', 0, modelPath);
  const warnings = new WarningList();
  const found: FoundTensor[] = [];
  collectTensors(mainScope, buffer, modelPath, found, warnings);
  // Every storage now holds offsets or decoded values, not views into the file buffer.
  buffer = undefined;

  const externalFiles = new Map<string, ExternalFile>();
  const externalLocations = new Set<string>();
  for (const tensor of found) {
    for (const part of [tensor.dense, tensor.sparse?.values, tensor.sparse?.indices]) {
      if (part?.stored.kind === 'external') externalLocations.add(part.stored.location);
    }
  }
  for (const location of externalLocations) {
    externalFiles.set(location, await resolveExternalFile(modelPath, location));
  }

  const toTensorData = (
    stored: StoredValues,
    site: TensorSite,
  ): { data: TensorData; file: string } => {
    switch (stored.kind) {
      case 'model-file':
        return {
          data: { kind: 'file', path: modelPath, offset: stored.offset, length: stored.length },
          file: fileName,
        };
      case 'memory':
        return { data: stored, file: fileName };
      case 'external': {
        const external = externalFiles.get(stored.location)!;
        const end = stored.offset + stored.length;
        if (end > external.size) {
          throw new ModelFileError(
            external.path,
            `${site.label} needs bytes ${stored.offset}–${end} of this external data file, but it has only ${external.size} bytes`,
          );
        }
        return {
          data: { kind: 'file', path: external.path, offset: stored.offset, length: stored.length },
          file: external.relativeName,
        };
      }
    }
  };

  const tensors: TensorEntry[] = found.map((tensor, index) => {
    const layer = findLayer(tensor.name, tensor.scope) ?? tensor.producer ?? { node: '', op: null };
    let dtype: DType;
    let shape: readonly number[];
    let parameterCount: number;
    let byteLength: number;
    let data: TensorData;
    let file: string;
    let location: TensorLocation = tensor.location;
    if (tensor.sparse) {
      const sparse = tensor.sparse;
      const site = tensor.site;
      const values = toTensorData(sparse.values.stored, site);
      const indices = toTensorData(sparse.indices.stored, site);
      ({ dtype, shape, elementCount: parameterCount, byteLength } = sparse);
      file = values.file;
      data = {
        kind: 'memory',
        length: byteLengthOf(dtype, parameterCount),
        // Captures only what densifying needs, not `tensor`, whose scope holds the decoded model.
        load: () => densifySparse(sparse, values.data, indices.data, site),
      };
    } else {
      const dense = tensor.dense!;
      ({ dtype, shape, elementCount: parameterCount, byteLength } = dense);
      ({ data, file } = toTensorData(dense.stored, tensor.site));
      // Constants and initializers alike: where the bytes are matters more to users than how they were declared.
      if (dense.stored.kind === 'external') location = 'external';
    }
    const info: TensorInfo = {
      index,
      name: tensor.name,
      dtype,
      shape,
      parameterCount,
      byteLength,
      node: layer.node,
      op: layer.op,
      location,
      graph: tensor.scope.path,
      file,
      byteOffset: data.kind === 'file' ? data.offset : null,
    };
    return { info, data };
  });

  const parametersByDType: Partial<Record<DType, number>> = {};
  const bytesByDType: Partial<Record<DType, number>> = {};
  let parameterCount = 0;
  for (const { info } of tensors) {
    parametersByDType[info.dtype] = (parametersByDType[info.dtype] ?? 0) + info.parameterCount;
    bytesByDType[info.dtype] = (bytesByDType[info.dtype] ?? 0) + info.byteLength;
    parameterCount += info.parameterCount;
  }
  const opCounts: Record<string, number> = {};
  const nodeCount = countOps(mainScope, opCounts);

  const irVersion = int64ToSafeInteger(model.irVersion as ProtoInt64) ?? 0;
  const initializerNames = new Set((mainGraph.initializer ?? []).map((t) => t.name ?? ''));
  const inputs = (mainGraph.input ?? [])
    .filter(
      (input) =>
        irVersion >= IR_VERSION_INITIALIZERS_NOT_INPUTS || !initializerNames.has(input.name ?? ''),
    )
    .map(readValueInfo);

  const dataFiles = [...externalFiles.values()];
  const summary: ModelSummary = {
    format: 'onnx',
    fileName,
    fileBytes,
    totalBytes: fileBytes + dataFiles.reduce((sum, f) => sum + f.size, 0),
    dataFiles: dataFiles.map((f) => f.relativeName),
    parameterCount,
    tensorCount: tensors.length,
    parametersByDType,
    bytesByDType,
    opCounts,
    nodeCount,
    inputs,
    outputs: (mainGraph.output ?? []).map(readValueInfo),
    metadata: readMetadata(model),
    warnings: warnings.toArray(),
  };
  return { path: modelPath, summary, tensors };
}

/** Wire types of ModelProto's fields (onnx.proto), to recognise a model by its first bytes. */
const MODEL_FIELD_WIRE_TYPES: ReadonlyMap<number, number> = new Map([
  [1, 0], // ir_version
  [2, 2], // producer_name
  [3, 2], // producer_version
  [4, 2], // domain
  [5, 0], // model_version
  [6, 2], // doc_string
  [7, 2], // graph
  [8, 2], // opset_import
  [14, 2], // metadata_props
  [20, 2], // training_info
  [25, 2], // functions
]);
/** The highest IR version accepted as plausible (ONNX is at 11 as of 2025). */
const MAX_PLAUSIBLE_IR_VERSION = 100;
/** Fields checked by `match` before it says yes. */
const MATCH_FIELDS = 8;

function readVarint(bytes: Uint8Array, start: number): { value: number; next: number } | undefined {
  let value = 0;
  let scale = 1;
  for (let i = start; i < bytes.length && i < start + 10; i++) {
    const byte = bytes[i]!;
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if ((byte & 0x80) === 0) return { value, next: i + 1 };
  }
  return undefined;
}

/**
 * ONNX has no magic number: check that the first fields parse as ModelProto fields
 * with the right wire types (exporters write ir_version first; the order is not required).
 */
function looksLikeModelProto(head: Uint8Array): boolean {
  let position = 0;
  let fields = 0;
  while (position < head.length && fields < MATCH_FIELDS) {
    const tag = readVarint(head, position);
    if (!tag) return fields > 0;
    const fieldNumber = Math.floor(tag.value / 8);
    const wireType = tag.value % 8;
    if (MODEL_FIELD_WIRE_TYPES.get(fieldNumber) !== wireType) return false;
    const payload = readVarint(head, tag.next);
    if (!payload) return fields > 0;
    fields++;
    if (wireType === 0) {
      if (fieldNumber === 1 && (payload.value < 1 || payload.value > MAX_PLAUSIBLE_IR_VERSION))
        return false;
      position = payload.next;
    } else {
      if (payload.value > MAX_ONNX_PROTO_BYTES) return false;
      position = payload.next + payload.value;
    }
  }
  return fields > 0;
}

export const onnxFormat: FormatModule = {
  format: 'onnx',
  extensions: ['.onnx'],
  match: looksLikeModelProto,
  open: openOnnx,
};
