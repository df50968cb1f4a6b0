#!/usr/bin/env node
// Makes sure Debian's python3 with numpy is installed: the unit tests check files that
// LayerLens writes with an independent reader in Python (test/support/python.ts), and those
// checks fail, not skip, without it. Installs `python3` and `python3-numpy` with apt-get
// when they are missing (as root: CI, a fresh container); otherwise says how. Idempotent:
// a no-op taking a few milliseconds when both are there.
//
//   node scripts/ensure-python.mjs
import { spawnSync } from 'node:child_process';

// python3-onnx builds the quantized models of test/support/quantizedOnnx.py.
const PACKAGES = ['python3', 'python3-numpy', 'python3-onnx'];
/** The interpreter the packages provide; test/support/python.ts prefers it too. */
const DEBIAN_PYTHON = '/usr/bin/python3';

function isInstalled(name) {
  const query = spawnSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' });
  return query.status === 0 && query.stdout.includes('install ok installed');
}

function importsNumpy(python) {
  return spawnSync(python, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
}

function run(command, args) {
  console.log(`$ ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (result.error) throw new Error(`${command} could not start: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (exit status ${result.status})`);
  }
}

function main() {
  const missing = PACKAGES.filter((name) => !isInstalled(name));
  if (missing.length > 0) {
    if (process.getuid?.() !== 0) {
      throw new Error(
        `missing Debian packages ${missing.join(', ')} (python3 with numpy, the independent ` +
          `reader of the unit tests). Install them with: ` +
          `sudo apt-get update && sudo apt-get install -y --no-install-recommends ${PACKAGES.join(' ')}`,
      );
    }
    console.log(`installing Debian packages: ${missing.join(', ')}`);
    run('apt-get', ['update']);
    run('apt-get', ['install', '-y', '--no-install-recommends', ...PACKAGES]);
  }
  if (!importsNumpy(DEBIAN_PYTHON)) {
    throw new Error(`${DEBIAN_PYTHON} cannot import numpy although python3-numpy is installed`);
  }
  console.log(`${DEBIAN_PYTHON} with numpy: ready`);
}

try {
  main();
} catch (error) {
  console.error(`ensure-python: FAILED: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
}
