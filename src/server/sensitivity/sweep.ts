/**
 * The measured sweep in one onnxruntime session. The model is rewritten once so that
 * every swept weight is a graph input (an initializer of the main graph simply becomes
 * one; a weight stored in a subgraph, e.g. an If branch, or in a Constant node becomes an
 * Identity of a fresh main-graph input, which the subgraph reads from the outer scope).
 * The original values are fed for every weight but the one being swept, which gets Ŵ;
 * each run's outputs are compared with the baseline run's.
 */
import type * as Ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import type { DeviationMetric } from '../../shared/sensitivity';
import { MAX_ONNX_PROTO_BYTES } from '../../shared/limits';
import type { LayerLensSettings } from '../../shared/settings';
import { DATA_LOCATION_EXTERNAL } from '../compress/onnx/methods';
import { storedData } from '../formats/decodedValues';
import { loadTensorData } from '../formats/onnxTensors';
import { ModelFileError, type OpenedModel } from '../formats/types';
import { attr, makeNode, NameAllocator, usedNames, type OnnxModel } from '../onnx';
import { ort } from '../runtime/ort';
import { findSampleSet, firstLine, type Feeds } from '../runtime/sampleSet';
import { openSession } from '../runtime/sessions';
import { outputDeviation } from './deviation';
import type { SweepTensor } from './traits';

const FLOAT = onnx.TensorProto.DataType.FLOAT;

/** A swept weight as the rewritten model reads it. */
interface LiftedWeight {
  readonly feedName: string;
  readonly dims: readonly number[];
  readonly original: Ort.Tensor;
}

/**
 * Rewrite `edited` (an editable copy, edited in place) so that each tensor of `tensors` is
 * a graph input; external data of the other tensors is read into the model, so that the
 * bytes can be loaded without the model's folder. Returns the feed name of each tensor.
 */
export function liftWeights(
  edited: OnnxModel,
  opened: OpenedModel,
  tensors: readonly SweepTensor[],
): Map<number, string> {
  const model = edited.proto;
  const names = new NameAllocator(usedNames(model, opened.path));
  const main = model.graph!;
  const feedNames = new Map<number, string>();
  const removed = new Set<onnx.ITensorProto>();
  const slotOf = (tensor: SweepTensor) => edited.slots[tensor.entry.info.index];
  for (const tensor of tensors) {
    const slot = slotOf(tensor);
    if (!slot?.proto) throw new Error(`tensor ${tensor.entry.info.name} is not a stored weight`);
    const graph = slot.scope.graph;
    const dims = tensor.entry.info.shape;
    let feedName: string;
    // A float16/bfloat16 weight is fed as float32 and Cast back to its dtype.
    const dataType = slot.proto.dataType ?? FLOAT;
    if (slot.kind === 'initializer' && slot.scope.depth === 0 && dataType === FLOAT) {
      feedName = slot.name;
      removed.add(slot.proto);
      // Before IR 4 initializers are listed as graph inputs too: keep a single entry.
      main.input = (main.input ?? []).filter((input) => input.name !== slot.name);
    } else {
      feedName = names.fresh(`${slot.name}_sweep`);
      const identity =
        dataType === FLOAT
          ? makeNode('Identity', [feedName], [slot.name], names.fresh(`${slot.name}_Identity`))
          : makeNode('Cast', [feedName], [slot.name], names.fresh(`${slot.name}_Cast`), [
              attr.int('to', dataType),
            ]);
      if (slot.kind === 'initializer') {
        removed.add(slot.proto);
        graph.input = (graph.input ?? []).filter((input) => input.name !== slot.name);
        graph.node = [identity, ...(graph.node ?? [])];
      } else {
        const list = graph.node ?? [];
        list.splice(list.indexOf(slot.node!), 1, identity);
        graph.node = list;
      }
    }
    main.input = [
      ...(main.input ?? []),
      {
        name: feedName,
        type: {
          tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } },
        },
      },
    ];
    feedNames.set(tensor.entry.info.index, feedName);
  }
  const swept = new Set(tensors.map((t) => slotOf(t)!.proto!));
  const dropRemoved = (graph: onnx.IGraphProto): void => {
    graph.initializer = (graph.initializer ?? []).filter((proto) => !removed.has(proto));
  };
  forEachGraph(main, dropRemoved);
  inlineExternalData(model, opened, swept);
  return feedNames;
}

/** Put the bytes of every external tensor (but the swept ones) into the model itself. */
function inlineExternalData(
  model: onnx.IModelProto,
  opened: OpenedModel,
  swept: ReadonlySet<onnx.ITensorProto>,
): void {
  const byName = new Map(opened.tensors.map((entry) => [entry.info.name, entry]));
  let inlined = 0;
  forEachGraph(model.graph!, (graph) => {
    for (const proto of graph.initializer ?? []) {
      if (proto.dataLocation !== DATA_LOCATION_EXTERNAL || swept.has(proto)) continue;
      const entry = byName.get(proto.name ?? '');
      if (!entry) throw new ModelFileError(opened.path, `external tensor ${proto.name} not found`);
      inlined += entry.data.length;
      if (inlined > MAX_ONNX_PROTO_BYTES) {
        throw new ModelFileError(
          opened.path,
          `the external data is too large to sweep in one model (more than ${MAX_ONNX_PROTO_BYTES} bytes)`,
        );
      }
      proto.rawData = loadTensorData(storedData(entry.data));
      proto.dataLocation = 0;
      proto.externalData = [];
    }
  });
}

/** `visit` on `graph` and every subgraph in it. */
function forEachGraph(graph: onnx.IGraphProto, visit: (graph: onnx.IGraphProto) => void): void {
  visit(graph);
  for (const node of graph.node ?? []) {
    for (const attribute of node.attribute ?? []) {
      if (attribute.g) forEachGraph(attribute.g, visit);
      for (const sub of attribute.graphs ?? []) forEachGraph(sub, visit);
    }
  }
}

/** A model ready to run with any one swept weight replaced, on every sample input. */
export class MeasuredSweep {
  /** Inference runs made so far (the baseline included). */
  runs = 0;
  readonly sessions = 1;

  private constructor(
    private readonly session: Ort.InferenceSession,
    /** Per sample: its inputs plus every weight's original value. */
    private readonly feeds: readonly Record<string, Ort.Tensor>[],
    private readonly weights: ReadonlyMap<number, LiftedWeight>,
    private readonly baselines: readonly Ort.InferenceSession.OnnxValueMapType[],
    /** The sample inputs (the model's own inputs, without the weights). */
    readonly samples: readonly Feeds[],
    /** How the sample inputs were made. */
    readonly inputs: string,
    /** Why a deviation on these inputs cannot be seen (empty when it can). */
    readonly problems: readonly string[],
    /** The execution provider, with any fallback. */
    readonly backend: string,
    baselineRuns: number,
  ) {
    this.runs = baselineRuns;
  }

  /**
   * Rewrite a copy of the model, open its one session, and run the baseline on the sample inputs
   * of the `validation.*` settings. `values` gives each swept tensor's float32 values.
   * Returns a string (why) when the model cannot run on sample inputs.
   */
  static async open(
    opened: OpenedModel,
    decoded: OnnxModel,
    tensors: readonly SweepTensor[],
    values: ReadonlyMap<number, Float32Array>,
    settings: LayerLensSettings,
    signal?: AbortSignal,
  ): Promise<MeasuredSweep | string> {
    const edited = decoded.editableCopy();
    const feedNames = liftWeights(edited, opened, tensors);
    const bytes = onnx.ModelProto.encode(edited.proto).finish();
    signal?.throwIfAborted();
    let opening;
    try {
      opening = await openSession(bytes, settings['compute.backend']);
    } catch (error) {
      throw new ModelFileError(
        opened.path,
        `onnxruntime cannot load the model: ${firstLine(error)}`,
      );
    }
    const { session } = opening;
    const backend = [opening.provider, ...opening.notes].join('; ');
    try {
      const weights = new Map<number, LiftedWeight>();
      const weightFeeds: Record<string, Ort.Tensor> = {};
      for (const tensor of tensors) {
        const index = tensor.entry.info.index;
        const dims = tensor.entry.info.shape;
        const original = new (ort().Tensor)('float32', values.get(index)!, [...dims]);
        const feedName = feedNames.get(index)!;
        weights.set(index, { feedName, dims, original });
        weightFeeds[feedName] = original;
      }
      let baselineRuns = 0;
      const found = await findSampleSet(
        opened.path,
        opened.summary,
        settings,
        (sample) => {
          baselineRuns++;
          return session.run({ ...sample, ...weightFeeds });
        },
        { signal },
      );
      if ('skipped' in found) {
        await session.release();
        return found.skipped;
      }
      return new MeasuredSweep(
        session,
        found.feeds.map((sample) => ({ ...sample, ...weightFeeds })),
        weights,
        found.references,
        found.feeds,
        found.description,
        found.problems,
        backend,
        baselineRuns,
      );
    } catch (error) {
      await session.release();
      throw error;
    }
  }

  /** The worst deviation over the samples of the outputs with tensor `index` replaced by `restored`. */
  async deviation(index: number, restored: Float32Array, metric: DeviationMetric): Promise<number> {
    const weight = this.weights.get(index);
    if (!weight) throw new Error(`tensor ${index} is not part of this sweep`);
    const replaced = new (ort().Tensor)('float32', restored, [...weight.dims]);
    let worst = 0;
    for (let k = 0; k < this.feeds.length; k++) {
      const feeds = { ...this.feeds[k]!, [weight.feedName]: replaced };
      this.runs++;
      const outputs = await this.session.run(feeds);
      const deviation = outputDeviation(metric, this.baselines[k]!, outputs);
      if (!(deviation <= worst)) worst = deviation; // NaN sticks
    }
    return worst;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
