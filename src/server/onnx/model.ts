/**
 * One decoded ONNX model and what every part of the server asks of its structure: the
 * scopes (main graph and subgraphs), the stored tensors in the order of the model's
 * tensor list (slots), which nodes use a name, which layers read a tensor as a weight,
 * and the layer the reader names for a tensor.
 *
 * The reader decodes a file once (formats/onnx.ts) and the opened model hands the same
 * OnnxModel to sensitivity, planning and compression (`onnxModelOf`). That one is shared
 * and never edited; its use index is built once. Work that edits the model (compression,
 * the measured sweep) takes `editableCopy()`: the same bytes decoded again into its own
 * objects, whose uses are looked up afresh on every question because the graph changes
 * under them.
 */
import { promises as fsp } from 'node:fs';
import { onnx } from 'onnx-proto';
import { MAX_ONNX_PROTO_BYTES } from '../../shared/limits';
import { ModelFileError } from '../formats/modelFileError';
import type { TimeSlicer } from '../jobs/eventLoop';

/** What checkSameTensors reads of an opened model: its path and its tensors' names. */
export interface OpenedTensorNames {
  readonly path: string;
  readonly tensors: readonly { readonly info: { readonly name: string } }[];
}
import { defaultOpset, irVersionOf } from './opset';
import { allScopes, mainScope, type Scope } from './scopes';
import { decodeModelSliced } from './slicedDecode';
import { tensorSlotsSliced, tensorSlotsWithWarnings, type TensorSlot } from './slots';
import { collectUses, usesOf, type Use } from './uses';
import { layerOf, weightUses, type WeightUse } from './weights';

/** The file's bytes, after checking that it is a regular, non-empty file a protobuf can hold. */
export async function readOnnxFile(modelPath: string): Promise<Buffer> {
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

/**
 * A plain Uint8Array view, not a Node Buffer: protobufjs (bundled, without its Buffer
 * support) builds empty bytes fields with `new buf.constructor(0)`, which for a Buffer is
 * the deprecated `Buffer()` constructor (DEP0005 on every ONNX run).
 */
function plainView(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function corrupt(modelPath: string, error: unknown): ModelFileError {
  return new ModelFileError(
    modelPath,
    `not a valid ONNX model: the protobuf is truncated or corrupt (${(error as Error).message})`,
  );
}

function checkHasGraph(modelPath: string, model: onnx.ModelProto): onnx.ModelProto {
  if (!model.graph) throw new ModelFileError(modelPath, 'not a valid ONNX model: it has no graph');
  return model;
}

function decodeProto(modelPath: string, bytes: Uint8Array): onnx.ModelProto {
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(plainView(bytes));
  } catch (error) {
    throw corrupt(modelPath, error);
  }
  return checkHasGraph(modelPath, model);
}

export class OnnxModel {
  /** The main graph. */
  readonly main: Scope;
  /** Every stored tensor; `slots[i]` is tensor `i` of the opened model. */
  readonly slots: readonly TensorSlot[];
  /** What the walk found odd (names defined twice, unreadable Constants), in walk order. */
  readonly warnings: readonly string[];
  private scopeList?: readonly Scope[];
  /** Per graph: the uses of every name it reads (built on first question; shared models only). */
  private readonly useIndex = new Map<onnx.IGraphProto, Map<string, Use[]>>();

  private constructor(
    /** Absolute path of the model file (for messages and external data). */
    readonly path: string,
    /** The file's bytes, which `proto`'s byte fields view. Never written to. */
    readonly bytes: Uint8Array,
    readonly proto: onnx.ModelProto,
    /** True for a copy being edited: uses are then looked up afresh every time. */
    readonly editable: boolean,
    /** The slots, when the caller found them already. */
    found?: { slots: TensorSlot[]; warnings: string[] },
  ) {
    this.main = mainScope(proto);
    ({ slots: this.slots, warnings: this.warnings } =
      found ?? tensorSlotsWithWarnings(proto, path));
  }

  /** Decode `bytes` (the file at `modelPath`) into a shared model nobody edits. */
  static decode(modelPath: string, bytes: Uint8Array): OnnxModel {
    return new OnnxModel(modelPath, bytes, decodeProto(modelPath, bytes), false);
  }

  /**
   * Like `decode`, for the reader: yields to the event loop (see `slicer`) while decoding the
   * main graph and finding its tensors, so that a model with a million tensors does not hold
   * the server for seconds.
   */
  static async decodeSliced(
    modelPath: string,
    bytes: Uint8Array,
    slicer: TimeSlicer,
  ): Promise<OnnxModel> {
    let model: onnx.ModelProto;
    try {
      model = await decodeModelSliced(plainView(bytes), slicer);
    } catch (error) {
      throw corrupt(modelPath, error);
    }
    checkHasGraph(modelPath, model);
    const found = await tensorSlotsSliced(model, modelPath, slicer);
    return new OnnxModel(modelPath, bytes, model, false, found);
  }

  /** Read and decode the file at `modelPath` (an absolute path). */
  static async read(modelPath: string): Promise<OnnxModel> {
    return OnnxModel.decode(modelPath, await readOnnxFile(modelPath));
  }

  /** A copy to edit: the same bytes decoded into objects of its own (no file is read). */
  editableCopy(): OnnxModel {
    return new OnnxModel(this.path, this.bytes, decodeProto(this.path, this.bytes), true);
  }

  /** Every graph of the model, outer before inner. */
  get scopes(): readonly Scope[] {
    if (this.editable) return allScopes(this.proto, this.path);
    this.scopeList ??= allScopes(this.proto, this.path);
    return this.scopeList;
  }

  get opset(): number {
    return defaultOpset(this.proto);
  }

  get irVersion(): number {
    return irVersionOf(this.proto);
  }

  /** Every node reading `name` in `scope`, and in subgraphs that do not redefine it, in walk order. */
  usesOf(name: string, scope: Scope): readonly Use[] {
    if (this.editable) return usesOf(name, scope, this.path);
    let index = this.useIndex.get(scope.graph);
    if (!index) {
      index = collectUses(scope, this.path);
      this.useIndex.set(scope.graph, index);
    }
    return index.get(name) ?? [];
  }

  /** The compute nodes a tensor reaches as a weight, or why it is not one (see weights.ts). */
  weightUses(name: string, scope: Scope): { uses: WeightUse[]; problem?: string } {
    return weightUses((n, s) => this.usesOf(n, s), name, scope);
  }

  /** The node the reader names as a tensor's layer (see weights.ts), or undefined. */
  layerOf(name: string, scope: Scope): Use | undefined {
    return layerOf((n, s) => this.usesOf(n, s), name, scope);
  }

  /** Refuse when the slots are not the opened model's tensors (the file changed in between). */
  checkSameTensors(opened: OpenedTensorNames, doing: string): void {
    const tensors = opened.tensors;
    if (
      this.slots.length !== tensors.length ||
      this.slots.some((slot, i) => slot.name !== tensors[i]!.info.name)
    ) {
      throw new ModelFileError(opened.path, `the model changed while it was being ${doing}`);
    }
  }
}
