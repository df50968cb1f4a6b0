// Compiles the AssemblyScript kernels in src/server/wasm/*.ts to dist/wasm/*.wasm (SIMD,
// optimised, no runtime: the host manages their memory). Skips a module whose .wasm is
// newer than its source. Run by the webpack build, by `npm test`, and on first use by
// source runs (tests under tsx) that find a module missing or stale.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const sourceDir = join(root, 'src', 'server', 'wasm');
const outputDir = join(root, 'dist', 'wasm');
const asc = join(root, 'node_modules', 'assemblyscript', 'bin', 'asc.js');

mkdirSync(outputDir, { recursive: true });
for (const file of readdirSync(sourceDir)
  .filter((name) => name.endsWith('.ts'))
  .sort()) {
  const source = join(sourceDir, file);
  const output = join(outputDir, file.replace(/\.ts$/, '.wasm'));
  if (existsSync(output) && statSync(output).mtimeMs >= statSync(source).mtimeMs) continue;
  execFileSync(
    process.execPath,
    [asc, source, '-o', output, '-O3', '--runtime', 'stub', '--noAssert', '--enable', 'simd'],
    { cwd: root, stdio: 'inherit' },
  );
  console.log(`built ${output.slice(root.length)}`);
}
