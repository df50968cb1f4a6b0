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
