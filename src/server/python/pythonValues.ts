/**
 * What a Python expression in a training script stands for, as far as it can be known
 * without running it: imported names (`nn` → `torch.nn`), integer and string constants,
 * and file paths built with `os.path` or `pathlib` from literals, `__file__` and variables
 * assigned such values. Anything else is unknown (null); nothing is guessed.
 */
import { posix } from 'node:path';
import type { Node } from 'web-tree-sitter';

export type PyValue =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'bool'; readonly value: boolean }
  | { readonly kind: 'str'; readonly value: string }
  /** A pathlib path (joins with `/`); `value` is its text. */
  | { readonly kind: 'path'; readonly value: string }
  | { readonly kind: 'tuple'; readonly items: readonly (PyValue | null)[] }
  /**
   * A parameter of a class's `__init__`: its value depends on the call that builds the
   * module (`Block(129, 128)`); `fallback` is its default, or null without one.
   */
  | { readonly kind: 'param'; readonly name: string; readonly fallback: PyValue | null }
  /** Integer arithmetic on constructor parameters (`width * 2`), done once they are bound. */
  | {
      readonly kind: 'expr';
      readonly operator: IntegerOperator;
      readonly left: PyValue | null;
      readonly right: PyValue | null;
    };

export type IntegerOperator = '+' | '-' | '*' | '//';

function isIntegerOperator(operator: string): operator is IntegerOperator {
  return operator === '+' || operator === '-' || operator === '*' || operator === '//';
}

/** Whether the value depends on constructor parameters. */
function isSymbolic(value: PyValue | null): boolean {
  return value?.kind === 'param' || value?.kind === 'expr';
}

/** Integer arithmetic as Python does it (`//` floors); null for anything else. */
export function arithmetic(
  operator: IntegerOperator,
  left: PyValue | null,
  right: PyValue | null,
): PyValue | null {
  if (left?.kind !== 'int' || right?.kind !== 'int') return null;
  let value: number;
  switch (operator) {
    case '+':
      value = left.value + right.value;
      break;
    case '-':
      value = left.value - right.value;
      break;
    case '*':
      value = left.value * right.value;
      break;
    case '//':
      if (right.value === 0) return null;
      value = Math.floor(left.value / right.value);
      break;
  }
  return Number.isSafeInteger(value) ? { kind: 'int', value } : null;
}

/** The value with constructor parameters replaced by their defaults (and arithmetic done). */
export function concrete(value: PyValue | null): PyValue | null {
  if (value?.kind === 'param') return concrete(value.fallback);
  if (value?.kind === 'expr') {
    return arithmetic(value.operator, concrete(value.left), concrete(value.right));
  }
  return value;
}

/** Local name → fully qualified name, from the script's import statements. */
export type ImportTable = ReadonlyMap<string, string>;

/** Nesting of variable look-ups and expressions followed before giving up. */
const MAX_EVALUATION_DEPTH = 24;

const PATH_CONSTRUCTORS = new Set([
  'pathlib.Path',
  'pathlib.PurePath',
  'pathlib.PosixPath',
  'pathlib.PurePosixPath',
]);

const SCOPE_TYPES = new Set(['module', 'function_definition']);
/** Statements whose bodies belong to the enclosing scope (assignments inside them count). */
const NESTED_SCOPE_TYPES = new Set(['function_definition', 'class_definition', 'lambda']);

export function readImports(root: Node): Map<string, string> {
  const table = new Map<string, string>();
  for (const statement of root.descendantsOfType(['import_statement', 'import_from_statement'])) {
    if (!statement) continue;
    if (statement.type === 'import_statement') {
      for (const name of statement.childrenForFieldName('name')) {
        if (name.type === 'aliased_import') {
          const dotted = name.childForFieldName('name')?.text;
          const alias = name.childForFieldName('alias')?.text;
          if (dotted && alias) table.set(alias, dotted);
        } else if (name.type === 'dotted_name') {
          // `import torch.nn` binds `torch`; attribute access then spells out the rest.
          const first = name.text.split('.')[0]!;
          table.set(first, first);
        }
      }
    } else {
      const moduleName = statement.childForFieldName('module_name');
      if (!moduleName || moduleName.type === 'relative_import') continue;
      for (const name of statement.childrenForFieldName('name')) {
        if (name.type === 'aliased_import') {
          const imported = name.childForFieldName('name')?.text;
          const alias = name.childForFieldName('alias')?.text;
          if (imported && alias) table.set(alias, `${moduleName.text}.${imported}`);
        } else if (name.type === 'dotted_name') {
          table.set(name.text, `${moduleName.text}.${name.text}`);
        }
      }
    }
  }
  return table;
}

/** `nn.Linear` → `torch.nn.Linear` when `nn` was imported; null for names that were not. */
export function qualifiedName(node: Node, imports: ImportTable): string | null {
  if (node.type === 'identifier') return imports.get(node.text) ?? null;
  if (node.type === 'attribute') {
    const object = node.childForFieldName('object');
    const attribute = node.childForFieldName('attribute');
    if (!object || !attribute) return null;
    const base = qualifiedName(object, imports);
    return base === null ? null : `${base}.${attribute.text}`;
  }
  return null;
}

/** The value of a Python string literal, or null for f-strings with placeholders and byte strings. */
export function stringLiteral(node: Node): string | null {
  if (node.type === 'concatenated_string') {
    let text = '';
    for (const part of node.namedChildren) {
      const value = part ? stringLiteral(part) : null;
      if (value === null) return null;
      text += value;
    }
    return text;
  }
  if (node.type !== 'string') return null;
  const start = node.firstChild?.text ?? '';
  // string_start is the prefix letters (r, b, f, u in any case) followed by the quotes.
  const prefix = [...start]
    .filter((char) => char !== '"' && char !== "'")
    .join('')
    .toLowerCase();
  if (prefix.includes('b')) return null;
  const raw = prefix.includes('r');
  let text = '';
  for (const child of node.namedChildren) {
    if (!child) continue;
    if (child.type === 'interpolation') return null;
    if (child.type !== 'string_content') continue;
    // The content's text with its escape sequences (child nodes) decoded, unless raw.
    const content = child.text;
    let cursor = 0;
    for (const escape of child.namedChildren) {
      if (escape?.type !== 'escape_sequence' || raw) continue;
      const start = escape.startIndex - child.startIndex;
      text += content.slice(cursor, start) + unescape(escape.text);
      cursor = escape.endIndex - child.startIndex;
    }
    text += content.slice(cursor);
  }
  return text;
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  n: '\n',
  t: '\t',
  r: '\r',
  '0': '\0',
  '\\': '\\',
  "'": "'",
  '"': '"',
};

/** Hex digits after `\x`, `\u` and `\U`. */
const CODE_POINT_ESCAPES: Readonly<Record<string, number>> = { x: 2, u: 4, U: 8 };

function unescape(sequence: string): string {
  const code = sequence.slice(1);
  if (code in SIMPLE_ESCAPES) return SIMPLE_ESCAPES[code]!;
  const width = CODE_POINT_ESCAPES[code[0] ?? ''];
  if (width !== undefined && code.length === width + 1) {
    const point = Number(`0x${code.slice(1)}`);
    if (Number.isInteger(point) && point <= 0x10ffff) return String.fromCodePoint(point);
  }
  return sequence;
}

function integerLiteral(text: string): number | null {
  // Python spells integers as JavaScript's Number() reads them (0x…, 0o…, 0b…), plus `_` separators.
  const digits = text.replaceAll('_', '');
  if (digits === '') return null;
  const value = Number(digits);
  return Number.isSafeInteger(value) ? value : null;
}

/** Python's `os.path.join` on POSIX: an absolute part starts over. */
function joinPaths(parts: readonly string[]): string {
  let joined = '';
  for (const part of parts) {
    if (part.startsWith('/') || joined === '') joined = part;
    else joined = joined.endsWith('/') ? joined + part : `${joined}/${part}`;
  }
  return joined;
}

/** The innermost function or the module around `node`. */
export function enclosingScope(node: Node): Node {
  let current = node.parent;
  while (current && !SCOPE_TYPES.has(current.type)) current = current.parent;
  return current ?? node.tree.rootNode;
}

/** Statements whose blocks hold assignments of the scope they are in. */
function holdsStatements(type: string): boolean {
  return type === 'block' || type.endsWith('_statement') || type.endsWith('_clause');
}

/**
 * Assignments `name = …` made directly in `scope` (not in functions or classes nested in
 * it), by name, in source order.
 */
function assignmentsOf(scope: Node): Map<string, Node[]> {
  const body = scope.type === 'module' ? scope : scope.childForFieldName('body');
  const found = new Map<string, Node[]>();
  const record = (assignment: Node): void => {
    const left = assignment.childForFieldName('left');
    if (left?.type === 'identifier') {
      const list = found.get(left.text) ?? [];
      list.push(assignment);
      found.set(left.text, list);
    }
    // `a = b = value`: the right side is itself an assignment.
    const right = assignment.childForFieldName('right');
    if (right?.type === 'assignment') record(right);
  };
  const visit = (node: Node): void => {
    for (const child of node.namedChildren) {
      if (!child || NESTED_SCOPE_TYPES.has(child.type)) continue;
      if (child.type === 'expression_statement') {
        for (const expression of child.namedChildren) {
          if (expression?.type === 'assignment') record(expression);
        }
      } else if (holdsStatements(child.type)) {
        visit(child);
      }
    }
  };
  if (body) visit(body);
  return found;
}

function parameterDefault(scope: Node, name: string): Node | null {
  const parameters = scope.childForFieldName('parameters');
  for (const parameter of parameters?.namedChildren ?? []) {
    if (!parameter) continue;
    if (parameter.type !== 'default_parameter' && parameter.type !== 'typed_default_parameter')
      continue;
    if (parameter.childForFieldName('name')?.text === name)
      return parameter.childForFieldName('value');
  }
  return null;
}

/** Evaluates expressions of one script. */
export class Evaluator {
  /** Assignments by scope (node id), each scope read once. */
  private readonly scopes = new Map<number, Map<string, Node[]>>();

  constructor(
    private readonly imports: ImportTable,
    /** Absolute path of the script: the value of `__file__`. */
    private readonly scriptPath: string,
  ) {}

  evaluate(node: Node | null, depth = 0): PyValue | null {
    if (!node || depth > MAX_EVALUATION_DEPTH) return null;
    switch (node.type) {
      case 'integer': {
        const value = integerLiteral(node.text);
        return value === null ? null : { kind: 'int', value };
      }
      case 'true':
      case 'false':
        return { kind: 'bool', value: node.type === 'true' };
      case 'string':
      case 'concatenated_string': {
        const value = stringLiteral(node);
        return value === null ? null : { kind: 'str', value };
      }
      case 'parenthesized_expression':
        return concrete(this.evaluate(node.namedChildren[0] ?? null, depth + 1));
      case 'tuple':
      case 'list':
        return {
          kind: 'tuple',
          items: node.namedChildren.map((item) => this.evaluate(item, depth + 1)),
        };
      case 'unary_operator': {
        const operand = concrete(this.evaluate(node.childForFieldName('argument'), depth + 1));
        const operator = node.childForFieldName('operator')?.text;
        if (operand?.kind !== 'int') return null;
        if (operator === '-') return { kind: 'int', value: -operand.value };
        return operator === '+' ? operand : null;
      }
      case 'binary_operator':
        return this.binary(node, depth);
      case 'identifier':
        return this.variable(node, depth);
      case 'attribute':
        return this.attribute(node, depth);
      case 'call':
        return this.call(node, depth);
      default:
        return null;
    }
  }

  /** A string or path value as text, or null. */
  pathText(node: Node | null): string | null {
    const value = concrete(this.evaluate(node));
    return value?.kind === 'str' || value?.kind === 'path' ? value.value : null;
  }

  private binary(node: Node, depth: number): PyValue | null {
    const operator = node.childForFieldName('operator')?.text ?? '';
    const rawLeft = this.evaluate(node.childForFieldName('left'), depth + 1);
    const rawRight = this.evaluate(node.childForFieldName('right'), depth + 1);
    // Arithmetic on a constructor parameter waits for the call that binds it.
    if (isIntegerOperator(operator) && (isSymbolic(rawLeft) || isSymbolic(rawRight))) {
      return { kind: 'expr', operator, left: rawLeft, right: rawRight };
    }
    const left = concrete(rawLeft);
    const right = concrete(rawRight);
    if (!left || !right) return null;
    if (operator === '/' && (left.kind === 'path' || right.kind === 'path')) {
      if (!isText(left) || !isText(right)) return null;
      return { kind: 'path', value: joinPaths([left.value, right.value]) };
    }
    if (operator === '+' && left.kind === 'str' && right.kind === 'str') {
      return { kind: 'str', value: left.value + right.value };
    }
    return isIntegerOperator(operator) ? arithmetic(operator, left, right) : null;
  }

  private variable(node: Node, depth: number): PyValue | null {
    const name = node.text;
    if (name === '__file__') return { kind: 'str', value: this.scriptPath };
    let scope = enclosingScope(node);
    let before = node.startIndex;
    for (;;) {
      const assignments = this.assignments(scope).get(name) ?? [];
      const earlier = assignments.filter((assignment) => assignment.startIndex < before);
      // In the module scope a function reads the value assigned before it runs; a later
      // assignment is the only one when none comes before.
      const chosen = earlier.at(-1) ?? (scope.type === 'module' ? assignments[0] : undefined);
      if (chosen) return concrete(this.evaluate(chosen.childForFieldName('right'), depth + 1));
      if (scope.type === 'function_definition') {
        const defaultNode = parameterDefault(scope, name);
        const fallback = defaultNode ? concrete(this.evaluate(defaultNode, depth + 1)) : null;
        if (isConstructor(scope) && parameterNames(scope).includes(name)) {
          return { kind: 'param', name, fallback };
        }
        if (defaultNode) return fallback;
        if (parameterNames(scope).includes(name)) return null;
      }
      if (scope.type === 'module') return null;
      before = scope.startIndex;
      scope = enclosingScope(scope);
    }
  }

  private assignments(scope: Node): Map<string, Node[]> {
    let found = this.scopes.get(scope.id);
    if (!found) {
      found = assignmentsOf(scope);
      this.scopes.set(scope.id, found);
    }
    return found;
  }

  private attribute(node: Node, depth: number): PyValue | null {
    const attribute = node.childForFieldName('attribute')?.text;
    const object = concrete(this.evaluate(node.childForFieldName('object'), depth + 1));
    if (object?.kind !== 'path') return null;
    switch (attribute) {
      case 'parent':
        return { kind: 'path', value: posix.dirname(object.value) };
      case 'name':
        return { kind: 'str', value: posix.basename(object.value) };
      case 'stem':
        return { kind: 'str', value: posix.parse(object.value).name };
      default:
        return null;
    }
  }

  private call(node: Node, depth: number): PyValue | null {
    const callee = node.childForFieldName('function');
    const argumentNodes = positionalArguments(node);
    if (!callee) return null;
    const args = (): (PyValue | null)[] =>
      argumentNodes.map((argument) => concrete(this.evaluate(argument, depth + 1)));
    if (callee.type === 'attribute') {
      const method = callee.childForFieldName('attribute')?.text ?? '';
      const receiver = callee.childForFieldName('object');
      const target = concrete(this.evaluate(receiver, depth + 1));
      if (target?.kind === 'path') return this.pathMethod(target.value, method, args());
    }
    const name =
      callee.type === 'identifier' && !this.imports.has(callee.text)
        ? `builtins.${callee.text}`
        : qualifiedName(callee, this.imports);
    if (name === null) return null;
    if (PATH_CONSTRUCTORS.has(name)) {
      const parts = args();
      if (!parts.every(isText)) return null;
      return { kind: 'path', value: parts.length === 0 ? '.' : joinPaths(parts.map(textOf)) };
    }
    switch (name) {
      case 'os.path.join': {
        const parts = args();
        return parts.length > 0 && parts.every(isText)
          ? { kind: 'str', value: joinPaths(parts.map(textOf)) }
          : null;
      }
      case 'os.path.dirname':
      case 'os.path.abspath':
      case 'os.path.realpath':
      case 'os.path.normpath':
      case 'os.fspath':
      case 'builtins.str': {
        const [only] = args();
        if (!only || !isText(only) || argumentNodes.length !== 1) return null;
        if (name === 'os.path.dirname') return { kind: 'str', value: posix.dirname(only.value) };
        if (name === 'os.path.abspath' || name === 'os.path.normpath')
          return { kind: 'str', value: posix.normalize(only.value) };
        return { kind: 'str', value: only.value };
      }
      default:
        return null;
    }
  }

  private pathMethod(path: string, method: string, args: (PyValue | null)[]): PyValue | null {
    switch (method) {
      case 'joinpath':
        return args.every(isText)
          ? { kind: 'path', value: joinPaths([path, ...args.map(textOf)]) }
          : null;
      case 'resolve':
      case 'absolute':
        return { kind: 'path', value: posix.normalize(path) };
      case 'with_suffix': {
        const [suffix] = args;
        if (suffix?.kind !== 'str') return null;
        const parsed = posix.parse(path);
        return { kind: 'path', value: posix.join(parsed.dir, parsed.name + suffix.value) };
      }
      case 'with_name': {
        const [name] = args;
        if (name?.kind !== 'str') return null;
        return { kind: 'path', value: posix.join(posix.dirname(path), name.value) };
      }
      default:
        return null;
    }
  }
}

function isText(
  value: PyValue | null,
): value is Extract<PyValue, { kind: 'str' }> | Extract<PyValue, { kind: 'path' }> {
  return value?.kind === 'str' || value?.kind === 'path';
}

function textOf(value: PyValue | null): string {
  return isText(value) ? value.value : '';
}

/** `__init__` defined directly in a class body. */
function isConstructor(scope: Node): boolean {
  return (
    scope.childForFieldName('name')?.text === '__init__' &&
    (scope.parent?.parent?.type === 'class_definition' ||
      scope.parent?.parent?.parent?.type === 'class_definition')
  );
}

/** The parameters of `__init__` after `self`: name, and whether a position can fill it. */
export function constructorParameters(
  method: Node,
): { readonly name: string; readonly positional: boolean }[] {
  const result: { name: string; positional: boolean }[] = [];
  let positional = true;
  for (const parameter of method.childForFieldName('parameters')?.namedChildren.slice(1) ?? []) {
    if (!parameter) continue;
    const splat = parameter.type === 'typed_parameter' ? parameter.firstNamedChild : parameter;
    if (parameter.type === 'keyword_separator' || splat?.type === 'list_splat_pattern') {
      positional = false;
      continue;
    }
    const name = parameterName(parameter);
    if (name !== null) result.push({ name, positional });
  }
  return result;
}

/** A parameter's name (`x`, `x: int`, `x=1`, `x: int = 1`); null for `*args`, `**kw`, `/`, `*`. */
function parameterName(parameter: Node): string | null {
  const name =
    parameter.type === 'identifier'
      ? parameter
      : parameter.type === 'typed_parameter'
        ? parameter.firstNamedChild
        : parameter.childForFieldName('name');
  return name?.type === 'identifier' ? name.text : null;
}

function parameterNames(scope: Node): string[] {
  return (scope.childForFieldName('parameters')?.namedChildren ?? [])
    .map((parameter) => (parameter ? parameterName(parameter) : null))
    .filter((name): name is string => name !== null);
}

/** A call's positional arguments (no `*args`, keywords excluded). */
export function positionalArguments(call: Node): Node[] {
  const list = call.childForFieldName('arguments');
  if (!list || list.type !== 'argument_list') return [];
  const result: Node[] = [];
  for (const argument of list.namedChildren) {
    if (!argument || argument.type === 'comment') continue;
    if (argument.type === 'keyword_argument') continue;
    if (argument.type === 'list_splat' || argument.type === 'dictionary_splat') break;
    result.push(argument);
  }
  return result;
}

/** A call's keyword arguments by name. */
export function keywordArguments(call: Node): Map<string, Node> {
  const result = new Map<string, Node>();
  for (const argument of call.childForFieldName('arguments')?.namedChildren ?? []) {
    if (argument?.type !== 'keyword_argument') continue;
    const name = argument.childForFieldName('name')?.text;
    const value = argument.childForFieldName('value');
    if (name && value) result.set(name, value);
  }
  return result;
}

/** Whether the call's argument list has `*args` or `**kwargs` (positions are then unknown). */
export function hasSplat(call: Node): boolean {
  return (call.childForFieldName('arguments')?.namedChildren ?? []).some(
    (argument) => argument?.type === 'list_splat' || argument?.type === 'dictionary_splat',
  );
}
