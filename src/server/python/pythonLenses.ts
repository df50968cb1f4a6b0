/**
 * Code lenses and hovers for Python training scripts: a lens on every call that writes or
 * reads a model file, and on every layer definition that maps to tensors of the model files
 * the workspace's scripts write or read.
 *
 * Lenses come back fast with everything read from headers; the layer lens's statistics
 * (sparsity) are filled in by codeLens/resolve, for the lenses VS Code actually shows.
 */
import { basename } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { CodeLens, Command, Hover, Position } from 'vscode-languageserver';
import {
  COMPRESS_COMMAND,
  REVEAL_IN_GRAPH_COMMAND,
  SHOW_TENSOR_COMMAND,
  type RevealInGraphArguments,
} from '../../shared/codeLens';
import { DTYPES } from '../../shared/dtypes';
import { formatBytes, formatCompactCount, formatCount } from '../../shared/format';
import { MAX_HOVER_TENSORS } from '../../shared/limits';
import { hasGraph, isStatsError, type TensorInfo, type TensorStats } from '../../shared/model';
import type { ModelService } from '../modelService';
import {
  checkInstanceShapes,
  layerPaths,
  mapLayer,
  type LayerInstance,
  type MappableModel,
  type ModelMatch,
  type ModuleIndex,
} from './layerMapping';
import { expectedParameters } from './layerTypes';
import {
  candidateNames,
  candidateTitle,
  candidatesTitle,
  candidateTooltip,
  countLayers,
  formatDims,
  layerLensTitle,
  LENS_PREFIX,
  modelLensTitle,
  modelProblemTitle,
  NOT_WRITTEN_TITLE,
  notFoundTitle,
  shapeCheckText,
  tensorTable,
  type LayerLensFacts,
  type LayerMetrics,
} from './lensText';
import { readModelState, referencedFile, type ModelState } from './modelFiles';
import type {
  LayerDefinition,
  ModelReference,
  SourcePosition,
  SourceRange,
} from './scriptAnalysis';
import { WorkspaceScripts, type OpenScript } from './workspaceScripts';

/** Candidates of an ambiguous layer that get their own lens; the hover lists all of them. */
const MAX_CANDIDATE_LENSES = 2;

/** What an unresolved lens carries to codeLens/resolve. */
/** The effective rank of a model's tensor, or null when it is not computed unasked. */
export type EffectiveRankSource = (
  modelPath: string,
  tensorIndex: number,
) => Promise<number | null>;

interface LayerStatsData {
  readonly kind: 'layerStats';
  readonly modelPath: string;
  readonly tensorIndex: number;
  readonly facts: LayerLensFacts;
}

/** A command with no id: VS Code shows the lens as text that does nothing when clicked. */
function label(title: string): Command {
  return { title, command: '' };
}

function showTensor(title: string, modelPath: string, tensorName?: string): Command {
  const uri = pathToFileURL(modelPath).toString();
  return {
    title,
    command: SHOW_TENSOR_COMMAND,
    arguments: tensorName === undefined ? [uri] : [uri, tensorName],
  };
}

function revealInGraph(modelPath: string, tensorName: string): Command {
  const args: RevealInGraphArguments = [pathToFileURL(modelPath).toString(), tensorName];
  return { title: 'Reveal in graph', command: REVEAL_IN_GRAPH_COMMAND, arguments: args };
}

function compress(modelPath: string, indices: readonly number[]): Command {
  return {
    title: 'Compress…',
    command: COMPRESS_COMMAND,
    arguments: [pathToFileURL(modelPath).toString(), [...indices]],
  };
}

function lineRange(range: SourceRange): CodeLens['range'] {
  return { start: range.start, end: range.start };
}

function contains(range: SourceRange, position: SourcePosition): boolean {
  const after =
    position.line > range.start.line ||
    (position.line === range.start.line && position.character >= range.start.character);
  const before =
    position.line < range.end.line ||
    (position.line === range.end.line && position.character <= range.end.character);
  return after && before;
}

function isFloatTensor(tensor: TensorInfo): boolean {
  return DTYPES[tensor.dtype].isFloat;
}

/** The tensors a compression of the layer would change: its matrices and kernels, else all of them. */
function compressibleIndices(instances: readonly LayerInstance[]): number[] {
  const tensors = instances.flatMap((instance) => instance.tensors.map((match) => match.tensor));
  const weights = tensors.filter((tensor) => tensor.shape.length >= 2 && isFloatTensor(tensor));
  return (weights.length > 0 ? weights : tensors).map((tensor) => tensor.index);
}

/** The tensor a layer's lens is about: its first (main) tensor. */
function mainTensor(instance: LayerInstance): TensorInfo {
  return instance.tensors[0]!.tensor;
}

function instanceFacts(instance: LayerInstance): LayerLensFacts {
  return {
    check: checkInstanceShapes(instance),
    parameterCount: instance.tensors.reduce((sum, match) => sum + match.tensor.parameterCount, 0),
  };
}

export class PythonLenses {
  readonly scripts: WorkspaceScripts;

  constructor(
    private readonly models: ModelService,
    log: (message: string) => void = () => undefined,
    private readonly effectiveRank: EffectiveRankSource = async () => null,
  ) {
    this.scripts = new WorkspaceScripts(log);
  }

  async codeLenses(document: OpenScript, openScripts: readonly OpenScript[]): Promise<CodeLens[]> {
    const analysis = await this.scripts.analyzeOpen(document);
    const states = new Map<string, Promise<ModelState>>();
    const own = await this.referenceStates(document.path, analysis.references, states);
    const lenses: CodeLens[] = own.map(({ reference, state }) => ({
      range: lineRange(reference.range),
      command: referenceCommand(reference, state),
    }));
    if (analysis.layers.length === 0) return lenses;
    const { index, models } = await this.mappingContext(document, openScripts, own, states);
    if (models.length === 0) return lenses;
    for (const layer of analysis.layers) {
      const [primary] = mapLayer(layer, index, models);
      const graph = models.find((model) => model.path === primary?.modelPath)?.graph === true;
      if (primary) lenses.push(...layerLenses(layer, primary, graph));
    }
    return lenses;
  }

  async resolveCodeLens(lens: CodeLens): Promise<CodeLens> {
    const data = lens.data as LayerStatsData | undefined;
    if (lens.command || data?.kind !== 'layerStats') return lens;
    const title = layerLensTitle(data.facts);
    try {
      const [[stats], effectiveRank] = await Promise.all([
        this.models.tensorStats(data.modelPath, [data.tensorIndex]),
        this.effectiveRank(data.modelPath, data.tensorIndex).catch(() => null),
      ]);
      const metrics: LayerMetrics = {
        ...(stats && !isStatsError(stats) ? { sparsity: stats.sparsity } : {}),
        ...(effectiveRank !== null ? { effectiveRank } : {}),
      };
      return { ...lens, command: label(layerLensTitle(data.facts, metrics)) };
    } catch {
      return { ...lens, command: label(title) };
    }
  }

  async hover(
    document: OpenScript,
    openScripts: readonly OpenScript[],
    position: Position,
  ): Promise<Hover | null> {
    const analysis = await this.scripts.analyzeOpen(document);
    const states = new Map<string, Promise<ModelState>>();
    const reference = analysis.references.find((candidate) => contains(candidate.range, position));
    if (reference) return this.referenceHover(document, reference, states);
    const layer = analysis.layers.find((candidate) => contains(candidate.range, position));
    if (!layer) return null;
    const own = await this.referenceStates(document.path, analysis.references, states);
    const { index, models } = await this.mappingContext(document, openScripts, own, states);
    const matches = mapLayer(layer, index, models);
    return {
      contents: { kind: 'markdown', value: await this.layerHoverText(layer, index, matches) },
      range: layer.range,
    };
  }

  private modelState(path: string, states: Map<string, Promise<ModelState>>): Promise<ModelState> {
    let state = states.get(path);
    if (!state) {
      state = readModelState(this.models, path);
      states.set(path, state);
    }
    return state;
  }

  /** The model state of each reference whose path is known, in the script's order. */
  private async referenceStates(
    scriptPath: string,
    references: readonly ModelReference[],
    states: Map<string, Promise<ModelState>>,
  ): Promise<ReferenceState[]> {
    const result: ReferenceState[] = [];
    for (const reference of references) {
      const file = await referencedFile(reference, scriptPath, this.scripts.workspaceFolders);
      if (file) result.push({ reference, state: await this.modelState(file.path, states) });
    }
    return result;
  }

  /**
   * Classes and submodule uses of every script, and the models layers map to: the ones the
   * script itself writes or reads, else those of every script in the workspace.
   */
  private async mappingContext(
    document: OpenScript,
    openScripts: readonly OpenScript[],
    own: readonly ReferenceState[],
    states: Map<string, Promise<ModelState>>,
  ): Promise<{ index: ModuleIndex; models: readonly MappableModel[] }> {
    const open = openScripts.some((script) => script.path === document.path)
      ? openScripts
      : [document, ...openScripts];
    const all = await this.scripts.all(open);
    const index: ModuleIndex = {
      classes: [...all.values()].flatMap((analysis) => analysis.classes),
      submodules: [...all.values()].flatMap((analysis) => analysis.submodules),
    };
    const ownModels = modelsOf(own);
    if (ownModels.length > 0) return { index, models: ownModels };
    const workspaceStates: ReferenceState[] = [];
    for (const [path, analysis] of all) {
      workspaceStates.push(...(await this.referenceStates(path, analysis.references, states)));
    }
    return { index, models: modelsOf(workspaceStates) };
  }

  private async referenceHover(
    document: OpenScript,
    reference: ModelReference,
    states: Map<string, Promise<ModelState>>,
  ): Promise<Hover | null> {
    const file = await referencedFile(reference, document.path, this.scripts.workspaceFolders);
    if (!file) return null;
    const state = await this.modelState(file.path, states);
    const lines = [
      `**${LENS_PREFIX}** · \`${reference.call}\` ${reference.access === 'write' ? 'writes' : 'reads'} \`${file.path}\``,
      '',
    ];
    switch (state.kind) {
      case 'missing':
        lines.push(
          reference.access === 'write'
            ? 'The file is not written yet.'
            : 'The file does not exist.',
        );
        break;
      case 'unsupported':
        lines.push(
          `${basename(state.path)}: ${state.problem} (LayerLens reads ONNX, safetensors and PyTorch checkpoints).`,
        );
        break;
      case 'error':
        lines.push(`LayerLens cannot read this file: ${state.problem}`);
        break;
      case 'model': {
        const { summary } = state;
        lines.push(
          `${summary.format} · ${formatCount(summary.parameterCount)} parameters (${formatCompactCount(summary.parameterCount)}) · ${formatBytes(summary.totalBytes)} · ${formatCount(summary.tensorCount)} tensors · ${formatCount(countLayers(state.tensors, isFloatTensor))} layers`,
        );
        if (summary.nodeCount > 0) lines.push('', `${formatCount(summary.nodeCount)} nodes`);
        break;
      }
    }
    return { contents: { kind: 'markdown', value: lines.join('\n') }, range: reference.range };
  }

  private async layerHoverText(
    layer: LayerDefinition,
    index: ModuleIndex,
    matches: readonly ModelMatch[],
  ): Promise<string> {
    const declared = expectedParameters(layer.layerType, layer.args)
      .map((parameter) => `${parameter.name} ${formatDims(parameter.shape)}`)
      .join(', ');
    const lines = [
      `**${LENS_PREFIX}** · \`nn.${layer.layerType}\` at \`${layerPaths(layer, index).join('`, `')}\``,
      '',
      `Declared: ${declared || 'no parameters known for this layer type'}`,
    ];
    if (matches.length === 0)
      lines.push('', 'No tensor of the workspace’s model files matches this layer.');
    let budget = MAX_HOVER_TENSORS;
    for (const match of matches) {
      for (const instance of match.instances) {
        const check = checkInstanceShapes(instance);
        lines.push(
          '',
          `**${basename(match.modelPath)}** · \`${instance.modulePath}\`${check ? ` · ${shapeCheckText(check)}` : ''}`,
          '',
          `\`${match.modelPath}\``,
          '',
        );
        const tensors = instance.tensors.map((tensorMatch) => tensorMatch.tensor);
        const shown = tensors.slice(0, Math.max(0, budget));
        budget -= shown.length;
        const stats = await this.statsOf(match.modelPath, shown);
        lines.push(
          tensorTable(shown.map((tensor) => ({ tensor, stats: stats.get(tensor.index) }))),
        );
        if (shown.length < tensors.length)
          lines.push('', `… and ${tensors.length - shown.length} more tensors`);
      }
    }
    return lines.join('\n');
  }

  private async statsOf(
    modelPath: string,
    tensors: readonly TensorInfo[],
  ): Promise<Map<number, TensorStats | string>> {
    const result = new Map<number, TensorStats | string>();
    if (tensors.length === 0) return result;
    try {
      for (const stats of await this.models.tensorStats(
        modelPath,
        tensors.map((tensor) => tensor.index),
      )) {
        result.set(stats.index, isStatsError(stats) ? stats.error : stats);
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      for (const tensor of tensors) result.set(tensor.index, message);
    }
    return result;
  }
}

interface ReferenceState {
  readonly reference: ModelReference;
  readonly state: ModelState;
}

/** The readable models among the references, each once, in order. */
function modelsOf(references: readonly ReferenceState[]): MappableModel[] {
  const models: MappableModel[] = [];
  for (const { state } of references) {
    if (state.kind === 'model' && !models.some((model) => model.path === state.path)) {
      models.push({ path: state.path, tensors: state.tensors, graph: hasGraph(state.summary) });
    }
  }
  return models;
}

function referenceCommand(reference: ModelReference, state: ModelState): Command {
  switch (state.kind) {
    case 'missing':
      if (reference.call === 'from_pretrained' && reference.path !== null) {
        return label(notFoundTitle(`no local folder ${reference.path}`));
      }
      return label(NOT_WRITTEN_TITLE);
    case 'unsupported':
      return label(modelProblemTitle(basename(state.path), state.problem));
    case 'error':
      // The editor shows the full error; the lens names the problem.
      return showTensor(modelProblemTitle(basename(state.path), state.problem), state.path);
    case 'model':
      return showTensor(
        modelLensTitle(state.summary, countLayers(state.tensors, isFloatTensor)),
        state.path,
      );
  }
}

/** A layer's lenses; `graph`: the model has a graph, where the layer's node can be shown. */
function layerLenses(layer: LayerDefinition, match: ModelMatch, graph: boolean): CodeLens[] {
  const range = lineRange(layer.range);
  const fileName = basename(match.modelPath);
  const indices = compressibleIndices(match.instances);
  if (match.instances.length === 1) {
    const instance = match.instances[0]!;
    const main = mainTensor(instance);
    const data: LayerStatsData = {
      kind: 'layerStats',
      modelPath: match.modelPath,
      tensorIndex: main.index,
      facts: instanceFacts(instance),
    };
    return [
      { range, data },
      { range, command: showTensor('Show in LayerLens', match.modelPath, main.name) },
      ...(graph ? [{ range, command: revealInGraph(match.modelPath, main.name) }] : []),
      { range, command: compress(match.modelPath, indices) },
    ];
  }
  // Mismatches first: they are what a reader of the script needs to see.
  const checks = new Map(
    match.instances.map((instance) => [instance, checkInstanceShapes(instance)]),
  );
  const names = new Map(
    match.instances.map((instance, i) => [
      instance,
      candidateNames(match.instances.map((candidate) => candidate.modulePath))[i]!,
    ]),
  );
  const mismatchFirst = [...match.instances].sort(
    (a, b) =>
      Number(checks.get(b)?.status === 'mismatch') - Number(checks.get(a)?.status === 'mismatch'),
  );
  /** The same module in another branch, when it matches what the script declares. */
  const twinOf = (instance: LayerInstance) => {
    const key = names.get(instance)!.twinKey;
    const twin = match.instances.find(
      (other) =>
        other !== instance &&
        names.get(other)!.twinKey === key &&
        checks.get(other)?.status === 'match',
    );
    return twin ? { instance: twin, check: checks.get(twin)! } : undefined;
  };
  // With a mismatch, the mismatches alone (each says why); the rest are in the hover.
  const anyMismatch = match.instances.some(
    (instance) => checks.get(instance)?.status === 'mismatch',
  );
  const shown = mismatchFirst
    .filter((instance) => !anyMismatch || checks.get(instance)?.status === 'mismatch')
    .slice(0, MAX_CANDIDATE_LENSES);
  const hidden = match.instances.length - shown.length;
  return [
    {
      range,
      command: label(
        candidatesTitle(
          fileName,
          match.instances.map((i) => checks.get(i)!),
        ),
      ),
    },
    ...shown.map((instance) => {
      const check = checks.get(instance)!;
      const twin = twinOf(instance);
      return {
        range,
        command: {
          ...showTensor(
            candidateTitle(
              names.get(instance)!.short,
              check,
              twin && { name: names.get(twin.instance)!.short, check: twin.check },
            ),
            match.modelPath,
            mainTensor(instance).name,
          ),
          tooltip: candidateTooltip(
            instance.modulePath,
            check,
            twin && { modulePath: twin.instance.modulePath, check: twin.check },
          ),
        },
      };
    }),
    ...(hidden > 0 ? [{ range, command: label(`+${hidden} more (hover for all)`) }] : []),
    { range, command: compress(match.modelPath, indices) },
  ];
}

/** `file:` URI of a document → its path; null for other schemes. */
export function documentPath(uri: string): string | null {
  if (!uri.startsWith('file:')) return null;
  try {
    return fileURLToPath(uri);
  } catch {
    return null;
  }
}
