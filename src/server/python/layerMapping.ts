/**
 * Links layer definitions in Python (`self.fc1 = nn.Linear(…)`) to the tensors of model
 * files. Pure: no file access, so every rule is tested on its own.
 *
 * A layer's full attribute path comes from its class and every place that class is used
 * as a submodule (`self.encoder = Encoder()` makes `fc1` in Encoder `encoder.fc1`). A
 * tensor belongs to the layer when its name is that path plus a parameter name
 * (`encoder.fc1.weight`), possibly behind a prefix the script does not show (a wrapper's
 * `module.`, an ONNX subgraph's `If_0_then_branch__`); for ONNX tensors without such a name
 * (`onnx::MatMul_12`), the consuming node's scope (`/encoder/fc1/MatMul`) stands in for it.
 * When several places in one file match equally well, all of them are returned.
 */
import { DTYPES } from '../../shared/dtypes';
import type { TensorInfo } from '../../shared/model';
import {
  expectedParameters,
  onnxOpsOf,
  type Dim,
  type ExpectedParameter,
  type LayerArguments,
} from './layerTypes';
import type { PyValue } from './pythonValues';
import {
  ANY_INDEX,
  type ClassDefinition,
  type LayerDefinition,
  type SubmoduleUse,
} from './scriptAnalysis';

/** What the mapping knows about every script of the workspace. */
export interface ModuleIndex {
  readonly classes: readonly ClassDefinition[];
  readonly submodules: readonly SubmoduleUse[];
}

export interface MappableModel {
  /** Absolute path of the model file (or the file inside a model folder). */
  readonly path: string;
  readonly tensors: readonly TensorInfo[];
  /** Its format stores a graph of operators (the lenses offer "Reveal in graph"). */
  readonly graph?: boolean;
}

export interface TensorMatch {
  readonly tensor: TensorInfo;
  /** The parameter name relative to the layer (`weight`, `bias`, `weight_ih_l0`). */
  readonly parameter: string;
  /** What the layer's arguments declare for it; null when the parameter is not one the type declares. */
  readonly declared: readonly Dim[] | null;
}

/** One place in a model file that holds the layer's tensors. */
export interface LayerInstance {
  /** The layer's path as the file spells it: `encoder.fc1`, `If_0_then_branch__decoder.rnn`, `/encoder/fc1`. */
  readonly modulePath: string;
  readonly tensors: readonly TensorMatch[];
}

export interface ModelMatch {
  readonly modelPath: string;
  /** One entry normally; several when the class is used more than once or the match is ambiguous. */
  readonly instances: readonly LayerInstance[];
}

/** Submodule nesting followed when building a layer's full paths (guards cycles, deep trees). */
const MAX_NESTING = 12;
/** Full paths one layer can have (a class reused in many places). */
const MAX_PATHS_PER_LAYER = 256;
/** Text that may glue a prefix the script does not know to the layer's path (besides a dot). */
/** Between an ONNX subgraph's or inlined function's prefix and the module path: `If_0_then_branch__encoder`. */
export const GLUED_PREFIX_SEPARATOR = '__';
const PREFIX_SEPARATORS = ['/', GLUED_PREFIX_SEPARATOR];
/** Rank from which an unnamed ONNX tensor of a layer is its matrix or kernel (below: its bias). */
const WEIGHT_RANK_MIN = 2;

/** Where a class's attributes sit: the path from the state dict's root, and the uses that lead there. */
export interface ModulePrefix {
  readonly path: readonly string[];
  /** `self.x = Class(…)` calls from the outermost module inwards (their arguments bind parameters). */
  readonly uses: readonly SubmoduleUse[];
}

/** Every place under which `owner`'s attributes appear; the first is the class as the root. */
export function modulePrefixes(owner: string | null, index: ModuleIndex): ModulePrefix[] {
  const result: ModulePrefix[] = [];
  const seen = new Set<string>();
  const visit = (
    className: string | null,
    suffix: readonly string[],
    uses: readonly SubmoduleUse[],
    depth: number,
  ): void => {
    if (result.length >= MAX_PATHS_PER_LAYER) return;
    const key = suffix.join('.');
    if (!seen.has(key)) {
      seen.add(key);
      result.push({ path: suffix, uses });
    }
    if (className === null || depth >= MAX_NESTING) return;
    for (const use of index.submodules) {
      if (use.className === className) {
        visit(use.owner, [...use.path, ...suffix], [use, ...uses], depth + 1);
      }
    }
  };
  visit(owner, [], [], 0);
  return result;
}

/** The full dotted paths a layer definition can have in a state dict. */
export function layerPaths(layer: LayerDefinition, index: ModuleIndex): string[] {
  return modulePrefixes(layer.owner, index).map((prefix) =>
    [...prefix.path, ...layer.path].join('.'),
  );
}

type Binding = ReadonlyMap<string, PyValue | null>;

/** A value with the constructor parameters that `binding` knows replaced by what the call passed. */
function substitute(value: PyValue | null, binding: Binding): PyValue | null {
  if (value?.kind === 'param' && binding.has(value.name)) return binding.get(value.name) ?? null;
  if (value?.kind === 'tuple') {
    return { kind: 'tuple', items: value.items.map((item) => substitute(item, binding)) };
  }
  if (value?.kind === 'expr') {
    return {
      ...value,
      left: substitute(value.left, binding),
      right: substitute(value.right, binding),
    };
  }
  return value;
}

function substituteAll(args: LayerArguments, binding: Binding): LayerArguments {
  const keywords: Record<string, PyValue | null> = {};
  for (const [name, value] of Object.entries(args.keywords))
    keywords[name] = substitute(value, binding);
  return { positional: args.positional.map((value) => substitute(value, binding)), keywords };
}

/**
 * The constructor arguments of the innermost class of a chain of uses: each call's
 * arguments fill its class's `__init__` parameters, and may themselves be parameters of
 * the class that makes the call (`Block(width, width)` inside a class taking `width`).
 */
export function constructorBinding(uses: readonly SubmoduleUse[], index: ModuleIndex): Binding {
  let binding: Binding = new Map();
  for (const use of uses) {
    const definition = index.classes.find((candidate) => candidate.name === use.className);
    const next = new Map<string, PyValue | null>();
    if (definition) {
      const positional = definition.parameters.filter((parameter) => parameter.positional);
      use.args.positional.forEach((value, position) => {
        const parameter = positional[position];
        if (parameter) next.set(parameter.name, substitute(value, binding));
      });
      for (const [name, value] of Object.entries(use.args.keywords)) {
        if (definition.parameters.some((parameter) => parameter.name === name))
          next.set(name, substitute(value, binding));
      }
    }
    binding = next;
  }
  return binding;
}

interface LayerPath {
  readonly path: string;
  /** Parameters with the shapes this place's constructor arguments give them. */
  readonly parameters: readonly ExpectedParameter[];
}

interface Candidate {
  readonly instance: string;
  readonly match: TensorMatch;
  /** Higher is more specific: an exact name beats a suffix, a longer path beats a shorter one. */
  readonly score: number;
}

const EXACT_BONUS = 1000;

function isIndex(segment: string): boolean {
  return segment !== '' && [...segment].every((char) => char >= '0' && char <= '9');
}

function segmentMatches(actual: string, wanted: string): boolean {
  return wanted === ANY_INDEX ? isIndex(actual) : actual === wanted;
}

/**
 * Whether the dotted `text` is `path`, or ends with `path` after a prefix separator
 * (`*` in `path` stands for any index); the score when it is.
 */
function pathScore(text: string, path: string): number | null {
  const wanted = path.split('.');
  const actual = text.split('.');
  const offset = actual.length - wanted.length;
  if (offset < 0) return null;
  for (let i = wanted.length - 1; i >= 1; i--) {
    if (!segmentMatches(actual[offset + i]!, wanted[i]!)) return null;
  }
  const first = actual[offset]!;
  const firstWanted = wanted[0]!;
  if (segmentMatches(first, firstWanted)) {
    return offset === 0 ? EXACT_BONUS + wanted.length : wanted.length;
  }
  // A prefix glued to the first segment: `If_0_then_branch__encoder`, `graph/encoder`.
  if (firstWanted === ANY_INDEX) return null;
  return PREFIX_SEPARATORS.some((separator) => first.endsWith(separator + firstWanted))
    ? wanted.length
    : null;
}

function byName(
  tensor: TensorInfo,
  path: string,
  parameters: readonly ExpectedParameter[],
): Candidate | null {
  const name = tensor.name;
  // Declared parameter names first (they may hold a dot: `out_proj.weight`), then any
  // single trailing component (a buffer, a layer of an LSTM whose depth is not known).
  for (const parameter of parameters) {
    if (!name.endsWith(`.${parameter.name}`)) continue;
    const modulePath = name.slice(0, -parameter.name.length - 1);
    const score = pathScore(modulePath, path);
    if (score !== null) {
      return {
        instance: modulePath,
        match: { tensor, parameter: parameter.name, declared: parameter.shape },
        score,
      };
    }
  }
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return null;
  const modulePath = name.slice(0, dot);
  const score = pathScore(modulePath, path);
  if (score === null) return null;
  return {
    instance: modulePath,
    match: { tensor, parameter: name.slice(dot + 1), declared: null },
    score,
  };
}

function byNode(
  tensor: TensorInfo,
  path: string,
  layerType: string,
  parameters: readonly ExpectedParameter[],
): Candidate | null {
  if (tensor.op === null || !onnxOpsOf(layerType).includes(tensor.op)) return null;
  if (!DTYPES[tensor.dtype].isFloat) return null;
  const scope = tensor.node.split('/');
  scope.pop();
  const modulePath = scope.filter((part) => part !== '').join('.');
  const score = pathScore(modulePath, path);
  if (score === null) return null;
  // Without a name, the role follows from the rank: the matrix or kernel is the weight.
  const parameter = tensor.shape.length >= WEIGHT_RANK_MIN ? 'weight' : 'bias';
  const declared = parameters.find((candidate) => candidate.name === parameter)?.shape ?? null;
  return { instance: scope.join('/'), match: { tensor, parameter, declared }, score };
}

/** The places in each model that hold the layer's tensors; models without any are left out. */
export function mapLayer(
  layer: LayerDefinition,
  index: ModuleIndex,
  models: readonly MappableModel[],
): ModelMatch[] {
  const paths: LayerPath[] = modulePrefixes(layer.owner, index).map((prefix) => ({
    path: [...prefix.path, ...layer.path].join('.'),
    parameters: expectedParameters(
      layer.layerType,
      substituteAll(layer.args, constructorBinding(prefix.uses, index)),
    ),
  }));
  const parameters = paths[0]?.parameters ?? [];
  const result: ModelMatch[] = [];
  for (const model of models) {
    const instances = new Map<string, { score: number; tensors: TensorMatch[] }>();
    for (const tensor of model.tensors) {
      let best: Candidate | null = null;
      for (const { path, parameters: declared } of paths) {
        const candidate =
          byName(tensor, path, declared) ?? byNode(tensor, path, layer.layerType, declared);
        if (candidate && (!best || candidate.score > best.score)) best = candidate;
      }
      if (!best) continue;
      const instance = instances.get(best.instance) ?? { score: best.score, tensors: [] };
      instance.score = Math.max(instance.score, best.score);
      instance.tensors.push(best.match);
      instances.set(best.instance, instance);
    }
    if (instances.size === 0) continue;
    let top = -Infinity;
    for (const instance of instances.values()) top = Math.max(top, instance.score);
    result.push({
      modelPath: model.path,
      instances: [...instances]
        .filter(([, instance]) => instance.score === top)
        .map(([modulePath, instance]) => ({
          modulePath,
          tensors: orderByDeclaration(instance.tensors, parameters),
        })),
    });
  }
  return result;
}

/** Tensors in the order the layer type declares its parameters, undeclared ones last. */
function orderByDeclaration(
  tensors: readonly TensorMatch[],
  parameters: readonly ExpectedParameter[],
): TensorMatch[] {
  const rank = (match: TensorMatch): number => {
    const position = parameters.findIndex((parameter) => parameter.name === match.parameter);
    return position < 0 ? parameters.length : position;
  };
  return [...tensors].sort((a, b) => rank(a) - rank(b) || a.tensor.index - b.tensor.index);
}

export type ShapeStatus = 'match' | 'mismatch' | 'unknown';

export interface ShapeCheck {
  readonly status: ShapeStatus;
  /** The tensor the check is about: the first mismatching one, else the layer's main weight. */
  readonly parameter: string;
  readonly declared: readonly Dim[] | null;
  readonly file: readonly number[];
}

function compareDims(declared: readonly Dim[], file: readonly number[]): ShapeStatus {
  if (declared.length !== file.length) return 'mismatch';
  let unknown = false;
  for (let i = 0; i < declared.length; i++) {
    const dim = declared[i];
    if (dim === null || dim === undefined) unknown = true;
    else if (dim !== file[i]) return 'mismatch';
  }
  return unknown ? 'unknown' : 'match';
}

/**
 * Declared shape against the file's. ONNX MatMul stores a Linear weight transposed
 * ([in, out]); that orientation counts as a match for MatMul consumers.
 */
export function checkTensorShape(match: TensorMatch): ShapeStatus {
  if (!match.declared) return 'unknown';
  const direct = compareDims(match.declared, match.tensor.shape);
  if (direct !== 'mismatch') return direct;
  if (match.tensor.op === 'MatMul' && match.declared.length === 2) {
    return compareDims([...match.declared].reverse(), match.tensor.shape);
  }
  return 'mismatch';
}

/** The layer's shape check: any mismatch wins; otherwise the main (first) tensor decides. */
export function checkInstanceShapes(instance: LayerInstance): ShapeCheck | null {
  const [main] = instance.tensors;
  if (!main) return null;
  const mismatch = instance.tensors.find((match) => checkTensorShape(match) === 'mismatch');
  const subject = mismatch ?? main;
  return {
    status: checkTensorShape(subject),
    parameter: subject.parameter,
    declared: subject.declared,
    file: subject.tensor.shape,
  };
}
