/**
 * ONNX reader: finds every stored tensor (initializers, sparse initializers, Constant
 * nodes, subgraphs of If/Loop/Scan, external data) and which layer uses it.
 */
import * as nodePath from 'node:path';
import type { onnx } from 'onnx-proto';
import { byteLengthOf, type DType } from '../../shared/dtypes';
import {
  MAX_KEPT_DECODED_ONNX_BYTES,
  MAX_KEPT_DECODED_ONNX_TENSORS,
  MAX_ONNX_PROTO_BYTES,
} from '../../shared/limits';
import {
  MODEL_FORMAT_INFO,
  type MetadataEntry,
  type ModelSummary,
  type TensorInfo,
  type TensorLocation,
  type ValueInfo,
} from '../../shared/model';
import {
  IR_VERSION_INITIALIZERS_NOT_INPUTS,
  isDefaultDomain,
  nodeLabel,
  OnnxModel,
  readOnnxFile,
  type Scope,
  type TensorSlot,
} from '../onnx';
import { dtypeFromOnnxCode } from './onnxDataTypes';
import {
  attributeTensor,
  densifySparse,
  describeSparseTensorProto,
  describeTensorProto,
  stringTensor,
  type DescribedSparseTensor,
  type DescribedTensor,
  type StoredValues,
  type TensorSite,
} from './onnxTensors';
import { int64ToSafeInteger, type ProtoInt64 } from '../onnx/int64';
import { decodeQuantizedWeights } from './onnxQuantized';
import { resolveReferencedFile, type ReferencedFile } from './referencedFile';
import { TimeSlicer } from '../jobs/eventLoop';
import { readVarint } from '../onnx/slicedDecode';
import {
  ModelFileError,
  type FormatModule,
  type OpenedModel,
  type OpenOptions,
  type TensorData,
  type TensorEntry,
} from './types';

/** Characters of the model's doc_string shown in the metadata. */
const MAX_DOC_STRING_CHARS = 1000;
/** Characters of one metadata_props value shown in the metadata. */
const MAX_METADATA_VALUE_CHARS = 4096;
/** Warnings listed individually; the rest are counted in one line. */
const MAX_LISTED_WARNINGS = 50;

/** A tensor found in the graph, before external files are checked. */
interface FoundTensor {
  readonly name: string;
  readonly location: Exclude<TensorLocation, 'external' | 'safetensors'>;
  readonly slot: TensorSlot;
  readonly site: TensorSite;
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

function siteOf(modelPath: string, name: string, scope: Scope): TensorSite {
  const where = scope.path ? ` in graph '${scope.path}'` : '';
  return { modelPath, label: `tensor '${name}'${where}` };
}

/** The value a Constant node holds in `attribute` (see constantValueAttribute) as a tensor. */
function describeConstantValue(
  attribute: onnx.IAttributeProto,
  fileBuffer: Buffer,
  site: TensorSite,
): { dense?: DescribedTensor; sparse?: DescribedSparseTensor } {
  switch (attribute.name) {
    case 'value':
      return { dense: describeTensorProto(attribute.t!, fileBuffer, site) };
    case 'sparse_value':
      return { sparse: describeSparseTensorProto(attribute.sparseTensor!, fileBuffer, site) };
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
    default: {
      const strings = (attribute.strings ?? []).map((s) => Uint8Array.from(s));
      return { dense: stringTensor([strings.length], strings, site) };
    }
  }
}

/** Each slot of the model (in the order of its tensor list) with its values described. */
async function describeSlots(
  model: OnnxModel,
  fileBuffer: Buffer,
  slicer: TimeSlicer,
): Promise<FoundTensor[]> {
  const found: FoundTensor[] = [];
  for (const slot of model.slots) {
    found.push(describeSlot(model, slot, fileBuffer));
    if (slicer.due()) await slicer.pause();
  }
  return found;
}

function describeSlot(model: OnnxModel, slot: TensorSlot, fileBuffer: Buffer): FoundTensor {
  const site = siteOf(model.path, slot.name, slot.scope);
  const common = { name: slot.name, slot, site };
  switch (slot.kind) {
    case 'initializer':
      return {
        ...common,
        location: 'initializer',
        dense: describeTensorProto(slot.proto!, fileBuffer, site),
      };
    case 'sparse-initializer':
      return {
        ...common,
        location: 'sparse-initializer',
        sparse: describeSparseTensorProto(slot.sparse!, fileBuffer, site),
      };
    case 'constant':
      return {
        ...common,
        location: 'constant',
        ...describeConstantValue(slot.value!, fileBuffer, site),
      };
  }
}

function truncate(text: string, limit: number): string {
  return text.length > limit ? `${text.slice(0, limit)}…` : text;
}

export function readValueInfo(info: onnx.IValueInfoProto): ValueInfo {
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

function countOps(model: OnnxModel, opCounts: Record<string, number>): number {
  let nodeCount = 0;
  for (const scope of model.scopes) {
    for (const node of scope.graph.node ?? []) {
      const op = node.opType ?? '';
      opCounts[op] = (opCounts[op] ?? 0) + 1;
      nodeCount++;
    }
  }
  return nodeCount;
}

/** The layer the reader names for a tensor: its consumer (see OnnxModel.layerOf), else its Constant node. */
function layerName(model: OnnxModel, slot: TensorSlot): { node: string; op: string | null } {
  const use = model.layerOf(slot.name, slot.scope);
  if (use) return { node: nodeLabel(use.node, use.nodeIndex), op: use.node.opType ?? '' };
  if (slot.kind === 'constant') return { node: slot.nodeName!, op: 'Constant' };
  return { node: '', op: null };
}

async function openOnnx(inputPath: string, options: OpenOptions = {}): Promise<OpenedModel> {
  const modelPath = nodePath.resolve(inputPath);
  const fileName = nodePath.basename(modelPath);
  const buffer = await readOnnxFile(modelPath);
  const fileBytes = buffer.length;
  const slicer = new TimeSlicer();
  const decoded = await OnnxModel.decodeSliced(modelPath, buffer, slicer);
  const model = decoded.proto;
  const mainGraph = model.graph!;
  const warnings = new WarningList();
  for (const warning of decoded.warnings) warnings.add(warning);
  // Every storage holds offsets or decoded values, not views into the file buffer.
  const found = await describeSlots(decoded, buffer, slicer);

  const externalFiles = new Map<string, ReferencedFile>();
  const externalLocations = new Set<string>();
  for (const tensor of found) {
    for (const part of [tensor.dense, tensor.sparse?.values, tensor.sparse?.indices]) {
      if (part?.stored.kind === 'external') externalLocations.add(part.stored.location);
    }
    if (slicer.due()) await slicer.pause();
  }
  for (const location of externalLocations) {
    externalFiles.set(
      location,
      await resolveReferencedFile(
        modelPath,
        location,
        'external data location',
        options.referenceFolder ?? nodePath.dirname(modelPath),
      ),
    );
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

  const stored: TensorEntry[] = [];
  for (const [index, tensor] of found.entries()) {
    const layer = layerName(decoded, tensor.slot);
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
        // Captures only what densifying needs, not `tensor`, whose slot holds the decoded model.
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
      graph: tensor.slot.scope.path,
      file,
      byteOffset: data.kind === 'file' ? data.offset : null,
    };
    stored.push({ info, data });
    if (slicer.due()) await slicer.pause();
  }

  const parametersByDType: Partial<Record<DType, number>> = {};
  const bytesByDType: Partial<Record<DType, number>> = {};
  let parameterCount = 0;
  // Counted as stored: quantized weights by their codes' type.
  for (const { info } of stored) {
    parametersByDType[info.dtype] = (parametersByDType[info.dtype] ?? 0) + info.parameterCount;
    bytesByDType[info.dtype] = (bytesByDType[info.dtype] ?? 0) + info.byteLength;
    parameterCount += info.parameterCount;
    if (slicer.due()) await slicer.pause();
  }
  const opCounts: Record<string, number> = {};
  const nodeCount = countOps(decoded, opCounts);
  const tensors = decodeQuantizedWeights(decoded, stored);

  const irVersion = int64ToSafeInteger(model.irVersion as ProtoInt64) ?? 0;
  // Before IR version 4 initializers are listed among the inputs too; they are not inputs.
  const initializerNames =
    irVersion >= IR_VERSION_INITIALIZERS_NOT_INPUTS
      ? new Set<string>()
      : new Set((mainGraph.initializer ?? []).map((t) => t.name ?? ''));
  const inputs = (mainGraph.input ?? [])
    .filter((input) => !initializerNames.has(input.name ?? ''))
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
  // Small files stay decoded for the work that follows; larger ones (in bytes or tensors) are
  // decoded again on demand.
  const kept =
    fileBytes <= MAX_KEPT_DECODED_ONNX_BYTES && found.length <= MAX_KEPT_DECODED_ONNX_TENSORS
      ? decoded
      : undefined;
  const onnxModel = (): Promise<OnnxModel> =>
    kept ? Promise.resolve(kept) : OnnxModel.read(modelPath);
  return { path: modelPath, summary, tensors, onnx: onnxModel };
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
  extensions: MODEL_FORMAT_INFO.onnx.extensions,
  match: looksLikeModelProto,
  open: openOnnx,
};
