/**
 * The Python parser: web-tree-sitter with the tree-sitter-python grammar, both WebAssembly.
 * The two .wasm files are copied next to the bundled server (dist/) by the webpack build;
 * run from the sources (tsx, tests), they are read from node_modules.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Language, Parser, type Tree } from 'web-tree-sitter';

export const RUNTIME_WASM = 'web-tree-sitter.wasm';
export const PYTHON_GRAMMAR_WASM = 'tree-sitter-python.wasm';

/** Folders searched for each .wasm file, first match wins: the bundle's folder, then node_modules. */
function wasmCandidates(file: string): string[] {
  const projectRoot = resolve(__dirname, '..', '..', '..');
  const packageFolder = file === RUNTIME_WASM ? 'web-tree-sitter' : 'tree-sitter-python';
  return [join(__dirname, file), join(projectRoot, 'node_modules', packageFolder, file)];
}

export function locateWasm(file: string): string {
  const candidates = wasmCandidates(file);
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found) throw new Error(`${file} not found (looked in ${candidates.join(', ')})`);
  return found;
}

let loading: Promise<Parser> | undefined;

async function createParser(): Promise<Parser> {
  const runtime = await readFile(locateWasm(RUNTIME_WASM));
  // wasmBinary: the runtime is handed over as bytes, so no URL or folder lookup happens inside.
  await Parser.init({ wasmBinary: runtime } as Parameters<typeof Parser.init>[0]);
  const language = await Language.load(await readFile(locateWasm(PYTHON_GRAMMAR_WASM)));
  const parser = new Parser();
  parser.setLanguage(language);
  return parser;
}

/** The shared parser, created on first use. A failed start is retried on the next call. */
function pythonParser(): Promise<Parser> {
  loading ??= createParser();
  loading.catch(() => {
    loading = undefined;
  });
  return loading;
}

/**
 * Parses Python source. Syntax errors do not fail: tree-sitter returns a tree with ERROR
 * nodes, and the analysis reads what it can. The caller must `delete()` the tree.
 */
export async function parsePython(source: string): Promise<Tree> {
  const parser = await pythonParser();
  const tree = parser.parse(source);
  if (!tree) throw new Error('the Python parser returned no tree');
  return tree;
}
