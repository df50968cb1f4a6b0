/**
 * The Python interpreter with numpy that tests use as an independent reference (a reader
 * written from the file format's description, NumPy writing files for LayerLens to read).
 *
 * Which one: Debian's `/usr/bin/python3` when it imports numpy — `npm test` and `.ci/run`
 * install it with `python3-numpy` (scripts/ensure-python.mjs) — else `python3` on PATH (a
 * pyenv or venv interpreter, as on some development machines) when that imports numpy.
 * Preferring the system one keeps the choice the same whatever PATH says.
 *
 * The checks that need it fail, never skip, when neither has numpy: a reference check that
 * quietly does not run is worse than none.
 */
import { spawnSync } from 'node:child_process';

const CANDIDATES = ['/usr/bin/python3', 'python3'] as const;

const SETUP_HINT =
  'run `node scripts/ensure-python.mjs` (as root it installs Debian’s python3 and ' +
  'python3-numpy; `npm test` and .ci/run do this) or ' +
  '`sudo apt-get install -y --no-install-recommends python3 python3-numpy`';

function importsNumpy(python: string): boolean {
  return spawnSync(python, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
}

let found: string | null | undefined;

/** The first candidate that imports numpy, or null; probed once per process. */
export function findPythonWithNumpy(): string | null {
  if (found === undefined) found = CANDIDATES.find(importsNumpy) ?? null;
  return found;
}

/** The interpreter to run reference scripts with; throws (failing the test) when there is none. */
export function pythonWithNumpy(): string {
  const python = findPythonWithNumpy();
  if (python === null) {
    throw new Error(
      `python3 with numpy is required for this independent check, but neither ` +
        `${CANDIDATES.join(' nor ')} imports numpy: ${SETUP_HINT}`,
    );
  }
  return python;
}

/** What Debian's python3-onnx says of a model file. */
export interface OnnxCheck {
  /** The newest default-domain opset the installed onnx package knows. */
  readonly newestOpset: number;
  /** `onnx.checker.check_model`'s error, or null when the model passes. */
  readonly error: string | null;
}

/**
 * Run the ONNX checker (python3-onnx, an implementation independent of LayerLens and of
 * onnxruntime) on a model file. It refuses nodes out of topological order, unknown
 * operators of the default domain and attributes or inputs an operator's version lacks.
 */
export function checkOnnxModel(path: string): OnnxCheck {
  const script = [
    'import sys, json, onnx, onnx.defs',
    'newest = onnx.defs.onnx_opset_version()',
    'try:',
    '    onnx.checker.check_model(onnx.load(sys.argv[1]))',
    '    error = None',
    'except Exception as e:',
    '    error = str(e)',
    'print(json.dumps({"newestOpset": newest, "error": error}))',
  ].join('\n');
  const result = spawnSync(pythonWithNumpy(), ['-c', script, path], { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(
      `python3 -c 'import onnx' failed (is python3-onnx installed?): ${result.stderr}`,
    );
  }
  return JSON.parse(result.stdout) as OnnxCheck;
}
