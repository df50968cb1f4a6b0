/**
 * Reads a training script's syntax tree into plain data: the calls that write or read a
 * model file (with the path when it is built from literals), the torch.nn layers that
 * nn.Module classes define, and where one module class is used inside another.
 */
import type { Node, Tree } from 'web-tree-sitter';
import { isLayerType, type LayerArguments } from './layerTypes';
import {
  constructorParameters,
  Evaluator,
  hasSplat,
  keywordArguments,
  positionalArguments,
  qualifiedName,
  readImports,
  stringLiteral,
  type ImportTable,
  type PyValue,
} from './pythonValues';

export interface SourcePosition {
  /** Zero-based, as in LSP. */
  readonly line: number;
  /** Zero-based UTF-16 offset in the line, as in LSP. */
  readonly character: number;
}

export interface SourceRange {
  readonly start: SourcePosition;
  readonly end: SourcePosition;
}

export type ModelAccess = 'read' | 'write';

export interface ModelReference {
  /** The call as users know it: `torch.save`, `save_pretrained`, `onnxruntime.InferenceSession`. */
  readonly call: string;
  readonly access: ModelAccess;
  /** `folder`: a Hugging Face style directory (save_pretrained/from_pretrained). */
  readonly target: 'file' | 'folder';
  /** The path the argument evaluates to (absolute when built from `__file__`); null when unknown. */
  readonly path: string | null;
  /** The whole call. */
  readonly range: SourceRange;
  /** The path argument. */
  readonly pathRange: SourceRange;
}

export interface LayerDefinition {
  /** The nn.Module class whose attribute it is; null for a container assigned to a variable outside classes. */
  readonly owner: string | null;
  /** Attribute path inside the owner: `['encoder', 'fc1']`, `['net', '0']`. */
  readonly path: readonly string[];
  /** torch.nn class name: `Linear`, `Conv2d`… */
  readonly layerType: string;
  readonly args: LayerArguments;
  /** The defining statement, or the entry of a container. */
  readonly range: SourceRange;
}

/** `self.encoder = Encoder(…)`: a module class used as an attribute of another. */
export interface SubmoduleUse {
  readonly owner: string | null;
  readonly path: readonly string[];
  /** The name called, last component only (`Encoder` for `blocks.Encoder`). */
  readonly className: string;
  /** The call's arguments: they fill the class's constructor parameters. */
  readonly args: LayerArguments;
}

export interface ConstructorParameter {
  readonly name: string;
  /** False after `*` or `*args`: only a keyword fills it. */
  readonly positional: boolean;
}

export interface ClassDefinition {
  readonly name: string;
  /** Base classes, qualified where imported (`torch.nn.Module`), else as written. */
  readonly bases: readonly string[];
  /** `__init__`'s parameters after `self`. */
  readonly parameters: readonly ConstructorParameter[];
  readonly range: SourceRange;
}

export interface ScriptAnalysis {
  readonly references: readonly ModelReference[];
  readonly layers: readonly LayerDefinition[];
  readonly submodules: readonly SubmoduleUse[];
  readonly classes: readonly ClassDefinition[];
}

interface ModelCallSpec {
  readonly access: ModelAccess;
  readonly target: 'file' | 'folder';
  /** Position and keyword of the path argument. */
  readonly position: number;
  readonly keyword: string;
}

function fileCall(access: ModelAccess, position: number, keyword: string): ModelCallSpec {
  return { access, target: 'file', position, keyword };
}

/** Functions that take a model file's path, by qualified name. */
const MODEL_CALLS: Readonly<Record<string, ModelCallSpec>> = {
  'torch.save': fileCall('write', 1, 'f'),
  'torch.load': fileCall('read', 0, 'f'),
  'torch.onnx.export': fileCall('write', 2, 'f'),
  'safetensors.torch.save_file': fileCall('write', 1, 'filename'),
  'safetensors.torch.load_file': fileCall('read', 0, 'filename'),
  'safetensors.torch.save_model': fileCall('write', 1, 'filename'),
  'safetensors.torch.load_model': fileCall('read', 1, 'filename'),
  'safetensors.numpy.save_file': fileCall('write', 1, 'filename'),
  'safetensors.numpy.load_file': fileCall('read', 0, 'filename'),
  'safetensors.safe_open': fileCall('read', 0, 'filename'),
  'onnx.save': fileCall('write', 1, 'f'),
  'onnx.save_model': fileCall('write', 1, 'f'),
  'onnx.load': fileCall('read', 0, 'f'),
  'onnx.load_model': fileCall('read', 0, 'f'),
  'onnxruntime.InferenceSession': fileCall('read', 0, 'path_or_bytes'),
};

/** Methods that take a model folder, whatever object they are called on. */
const FOLDER_METHODS: Readonly<Record<string, ModelCallSpec>> = {
  save_pretrained: { access: 'write', target: 'folder', position: 0, keyword: 'save_directory' },
  from_pretrained: {
    access: 'read',
    target: 'folder',
    position: 0,
    keyword: 'pretrained_model_name_or_path',
  },
};

const NN = 'torch.nn.';
/** Path segment of a container entry built in a loop: any index (`layers.*.fc` is `layers.0.fc`, …). */
export const ANY_INDEX = '*';
const ORDERED_DICT = 'collections.OrderedDict';

function rangeOf(node: Node): SourceRange {
  return {
    start: { line: node.startPosition.row, character: node.startPosition.column },
    end: { line: node.endPosition.row, character: node.endPosition.column },
  };
}

export function analyzeTree(tree: Tree, scriptPath: string): ScriptAnalysis {
  const root = tree.rootNode;
  const imports = readImports(root);
  const evaluator = new Evaluator(imports, scriptPath);
  const collector = new ModuleCollector(imports, evaluator);
  for (const definition of root.descendantsOfType('class_definition')) {
    if (definition) collector.readClass(definition);
  }
  collector.readContainerVariables(root);
  return {
    references: readReferences(root, imports, evaluator),
    layers: collector.layers,
    submodules: collector.submodules,
    classes: collector.classes,
  };
}

function readReferences(root: Node, imports: ImportTable, evaluator: Evaluator): ModelReference[] {
  const references: ModelReference[] = [];
  for (const call of root.descendantsOfType('call')) {
    const callee = call?.childForFieldName('function');
    if (!call || !callee) continue;
    let name = qualifiedName(callee, imports);
    let spec = name === null ? undefined : MODEL_CALLS[name];
    if (!spec && callee.type === 'attribute') {
      const method = callee.childForFieldName('attribute')?.text ?? '';
      if (Object.hasOwn(FOLDER_METHODS, method)) {
        spec = FOLDER_METHODS[method];
        name = method;
      }
    }
    if (!spec || name === null) continue;
    const argument =
      keywordArguments(call).get(spec.keyword) ?? positionalArguments(call)[spec.position];
    if (!argument) continue;
    references.push({
      call: name,
      access: spec.access,
      target: spec.target,
      path: evaluator.pathText(argument),
      range: rangeOf(call),
      pathRange: rangeOf(argument),
    });
  }
  // Nested calls are found inside out; report them in reading order.
  return references.sort(
    (a, b) =>
      a.range.start.line - b.range.start.line || a.range.start.character - b.range.start.character,
  );
}

class ModuleCollector {
  readonly layers: LayerDefinition[] = [];
  readonly submodules: SubmoduleUse[] = [];
  readonly classes: ClassDefinition[] = [];

  constructor(
    private readonly imports: ImportTable,
    private readonly evaluator: Evaluator,
  ) {}

  readClass(definition: Node): void {
    const name = definition.childForFieldName('name')?.text;
    if (!name) return;
    const bases = (definition.childForFieldName('superclasses')?.namedChildren ?? [])
      .filter((base): base is Node => base !== null && base.type !== 'keyword_argument')
      .map((base) => qualifiedName(base, this.imports) ?? base.text);
    const body = definition.childForFieldName('body');
    let parameters: ConstructorParameter[] = [];
    for (const member of body?.namedChildren ?? []) {
      const method =
        member?.type === 'decorated_definition' ? member.childForFieldName('definition') : member;
      if (method?.type !== 'function_definition') continue;
      if (method.childForFieldName('name')?.text === '__init__') {
        parameters = constructorParameters(method);
      }
      this.readMethod(name, method);
    }
    this.classes.push({ name, bases, parameters, range: rangeOf(definition) });
  }

  /** Module-level or function-level `model = nn.Sequential(…)`: its entries are the state dict's roots. */
  readContainerVariables(root: Node): void {
    for (const assignment of root.descendantsOfType('assignment')) {
      const left = assignment?.childForFieldName('left');
      const right = assignment?.childForFieldName('right');
      if (!assignment || left?.type !== 'identifier' || right?.type !== 'call') continue;
      if (insideClass(assignment)) continue;
      const callee = right.childForFieldName('function');
      const name = callee ? qualifiedName(callee, this.imports) : null;
      if (name === `${NN}Sequential` || name === `${NN}ModuleList` || name === `${NN}ModuleDict`) {
        this.readModuleExpression(null, [], right, statementOf(assignment));
      }
    }
  }

  private readMethod(owner: string, method: Node): void {
    const parameters = method.childForFieldName('parameters')?.namedChildren ?? [];
    const first = parameters[0];
    const self = first?.type === 'identifier' ? first.text : null;
    if (!self) return;
    const body = method.childForFieldName('body');
    if (body) this.readStatements(owner, self, body);
  }

  private readStatements(owner: string, self: string, block: Node): void {
    for (const child of block.namedChildren) {
      if (!child || child.type === 'function_definition' || child.type === 'class_definition')
        continue;
      if (child.type === 'assignment') {
        const path = selfAttributePath(child.childForFieldName('left'), self);
        const right = child.childForFieldName('right');
        if (path && right) this.readModuleExpression(owner, path, right, statementOf(child));
        continue;
      }
      if (child.type === 'call' && this.readAddModule(owner, self, child)) continue;
      this.readStatements(owner, self, child);
    }
  }

  /** `self.add_module("name", module)` (or register_module): the module at `name`. */
  private readAddModule(owner: string, self: string, call: Node): boolean {
    const callee = call.childForFieldName('function');
    const method = callee?.childForFieldName('attribute')?.text;
    if (callee?.type !== 'attribute' || callee.childForFieldName('object')?.text !== self)
      return false;
    if (method !== 'add_module' && method !== 'register_module') return false;
    const [nameNode, module] = positionalArguments(call);
    const name = nameNode ? stringLiteral(nameNode) : null;
    if (name === null || !module) return false;
    this.readModuleExpression(owner, [name], module, statementOf(call));
    return true;
  }

  /** What a module-valued expression assigned at `path` defines. */
  private readModuleExpression(
    owner: string | null,
    path: readonly string[],
    expression: Node,
    definition: Node,
  ): void {
    if (expression.type !== 'call') return;
    const callee = expression.childForFieldName('function');
    if (!callee) return;
    const name = qualifiedName(callee, this.imports);
    if (name?.startsWith(NN)) {
      const type = name.slice(NN.length);
      if (isLayerType(type)) {
        this.layers.push({
          owner,
          path,
          layerType: type,
          args: this.layerArguments(expression),
          range: rangeOf(definition),
        });
      } else if (type === 'Sequential' || type === 'ModuleList' || type === 'ModuleDict') {
        for (const [key, entry] of this.containerEntries(expression)) {
          this.readModuleExpression(owner, [...path, key], entry, entry);
        }
      }
      return;
    }
    const className =
      callee.type === 'identifier' ? callee.text : callee.childForFieldName('attribute')?.text;
    if (className) {
      this.submodules.push({ owner, path, className, args: this.layerArguments(expression) });
    }
  }

  /** Entries of nn.Sequential / ModuleList / ModuleDict with their state-dict keys. */
  private containerEntries(call: Node): [string, Node][] {
    const comprehension = this.comprehensionEntry(call);
    if (comprehension) return [[ANY_INDEX, comprehension]];
    if (hasSplat(call)) return [];
    const positional = positionalArguments(call);
    const only = positional.length === 1 ? positional[0]! : null;
    const named = only ? this.namedEntries(only) : null;
    if (named) return named;
    // ModuleList([a, b]) holds a list; Sequential(a, b) takes the modules themselves.
    const items =
      only && (only.type === 'list' || only.type === 'tuple') ? only.namedChildren : positional;
    return items
      .filter((item): item is Node => item !== null && item.type !== 'comment')
      .map((item, index) => [String(index), item]);
  }

  /**
   * The module built by `ModuleList([Block() for _ in range(n)])` or
   * `Sequential(*[Block() for _ in range(n)])`: every index holds one.
   */
  private comprehensionEntry(call: Node): Node | null {
    const args = (call.childForFieldName('arguments')?.namedChildren ?? []).filter(
      (argument): argument is Node => argument !== null && argument.type !== 'comment',
    );
    if (args.length !== 1) return null;
    let only = args[0]!;
    if (only.type === 'list_splat') only = only.namedChildren[0] ?? only;
    if (only.type !== 'list_comprehension' && only.type !== 'generator_expression') return null;
    return only.childForFieldName('body');
  }

  /** `OrderedDict([("fc1", …), …])`, `OrderedDict(fc1=…)` or a dict literal: keys and modules. */
  private namedEntries(argument: Node): [string, Node][] | null {
    let source = argument;
    if (argument.type === 'call') {
      const callee = argument.childForFieldName('function');
      const name = callee ? qualifiedName(callee, this.imports) : null;
      if (name !== ORDERED_DICT && name !== 'builtins.dict' && callee?.text !== 'dict') return null;
      const keywords = keywordArguments(argument);
      if (keywords.size > 0) return [...keywords];
      const [inner] = positionalArguments(argument);
      if (!inner) return [];
      source = inner;
    }
    const entries: [string, Node][] = [];
    if (source.type === 'dictionary') {
      for (const pair of source.namedChildren) {
        if (pair?.type !== 'pair') continue;
        const key = pair.childForFieldName('key');
        const value = pair.childForFieldName('value');
        const keyText = key ? stringLiteral(key) : null;
        if (keyText !== null && value) entries.push([keyText, value]);
      }
      return entries;
    }
    if (source.type !== 'list' && source.type !== 'tuple') return null;
    for (const item of source.namedChildren) {
      if (item?.type !== 'tuple') return null;
      const [key, value] = item.namedChildren;
      const keyText = key ? stringLiteral(key) : null;
      if (keyText === null || !value) return null;
      entries.push([keyText, value]);
    }
    return entries;
  }

  private layerArguments(call: Node): LayerArguments {
    const keywords: Record<string, PyValue | null> = {};
    for (const [name, value] of keywordArguments(call))
      keywords[name] = this.evaluator.evaluate(value);
    return {
      positional: positionalArguments(call).map((argument) => this.evaluator.evaluate(argument)),
      keywords,
    };
  }
}

/** `self.a.b` → ['a', 'b']; null when the target is not an attribute of `self`. */
function selfAttributePath(target: Node | null, self: string): string[] | null {
  const path: string[] = [];
  let current = target;
  while (current?.type === 'attribute') {
    const attribute = current.childForFieldName('attribute');
    if (!attribute) return null;
    path.unshift(attribute.text);
    current = current.childForFieldName('object');
  }
  return current?.type === 'identifier' && current.text === self && path.length > 0 ? path : null;
}

function insideClass(node: Node): boolean {
  for (let current = node.parent; current; current = current.parent) {
    if (current.type === 'class_definition') return true;
  }
  return false;
}

/** The statement an assignment belongs to (its line is where the lens goes). */
function statementOf(assignment: Node): Node {
  return assignment.parent?.type === 'expression_statement' ? assignment.parent : assignment;
}
