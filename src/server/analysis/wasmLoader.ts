/**
 * Loads the WebAssembly modules built from src/server/wasm/*.ts (AssemblyScript). Bundled,
 * a module is dist/wasm/<name>.wasm beside the bundle; run from source (tests under tsx),
 * it is built into dist/wasm/ first when missing or older than its source.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

// The parts of the WebAssembly JS API used here (the project's libs do not declare it).
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: unknown };
};

function wasmFile(name: string): string {
  if (!__filename.endsWith('.ts')) return path.join(__dirname, 'wasm', `${name}.wasm`);
  const root = path.resolve(__dirname, '..', '..', '..');
  const output = path.join(root, 'dist', 'wasm', `${name}.wasm`);
  const source = path.join(root, 'src', 'server', 'wasm', `${name}.ts`);
  const stale = !fs.existsSync(output) || fs.statSync(output).mtimeMs < fs.statSync(source).mtimeMs;
  if (stale) {
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build-wasm.mjs')], {
      cwd: root,
      stdio: 'ignore',
    });
  }
  return output;
}

/** Module `name` compiled, for callers that make (and drop) their own instances; null when it cannot be loaded. */
export function compileWasm(name: string): object | null {
  try {
    return new WebAssembly.Module(fs.readFileSync(wasmFile(name)));
  } catch {
    return null;
  }
}

/** The exports of module `name`, instantiated in this thread; null when it cannot be loaded. */
export function instantiateWasm(name: string): Record<string, unknown> | null {
  const module = compileWasm(name);
  if (!module) return null;
  try {
    return new WebAssembly.Instance(module, {}).exports as Record<string, unknown>;
  } catch {
    return null;
  }
}
