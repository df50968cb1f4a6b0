/**
 * onnxruntime-node, loaded when first used. Loading it (its native library with it) costs
 * about 30 ms, which the commands and workers that never run a session should not pay:
 * pack, unpack and statistics start their work that much sooner. Types come from
 * `import type` of the package, which loads nothing.
 */
import type * as Ort from 'onnxruntime-node';

let loaded: typeof Ort | undefined;

export function ort(): typeof Ort {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- an import would load it with this module
  loaded ??= require('onnxruntime-node') as typeof Ort;
  return loaded;
}
