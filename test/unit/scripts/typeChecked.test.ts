/**
 * Every TypeScript file of the extension, its tests, benches and scripts is in a project
 * that `npm run typecheck` checks (tsconfig.json, webview-ui/tsconfig.json): a file left
 * out (scripts/*.mts once were) would break without anyone noticing.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const FOLDERS = ['src', 'test', 'bench', 'scripts', 'webview-ui'];
const TYPESCRIPT = /\.(?:ts|mts|cts|tsx)$/;
// The wasm kernels' AssemblyScript, which scripts/build-wasm.mjs compiles with its own tsconfig.
const LEFT_OUT = [path.join('src', 'server', 'wasm') + path.sep];

function projectFiles(config: string): Set<string> {
  const parsed = ts.getParsedCommandLineOfConfigFile(
    path.join(ROOT, config),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
        throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
      },
    },
  );
  assert.ok(parsed, config);
  return new Set(parsed.fileNames.map((file) => path.resolve(file)));
}

test('every TypeScript file under src, test, bench, scripts and webview-ui is type-checked', () => {
  const checked = new Set([
    ...projectFiles('tsconfig.json'),
    ...projectFiles(path.join('webview-ui', 'tsconfig.json')),
  ]);
  const files = FOLDERS.flatMap((folder) =>
    readdirSync(path.join(ROOT, folder), { recursive: true, encoding: 'utf8' })
      .map((file) => path.join(folder, file))
      .filter((file) => TYPESCRIPT.test(file) && !LEFT_OUT.some((out) => file.startsWith(out))),
  );
  assert.ok(files.includes(path.join('scripts', 'readme-screenshot.mts')));
  assert.deepEqual(
    files.filter((file) => !checked.has(path.join(ROOT, file))),
    [],
  );
});
