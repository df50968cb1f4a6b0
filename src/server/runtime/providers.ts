/**
 * The onnxruntime execution provider for the `layerlens.compute.backend` setting, with the
 * reason when the installed onnxruntime cannot offer it (the computation then runs on cpu).
 */
import type { ComputeBackend } from '../../shared/settings';
import { ort } from './ort';

/** onnxruntime's name of the execution provider behind each backend setting. */
const PROVIDER_NAMES: Record<ComputeBackend, string> = {
  cpu: 'cpu',
  cuda: 'cuda',
  dml: 'dml',
  coreml: 'coreml',
  webgpu: 'webgpu',
};

export interface ProviderChoice {
  /** The provider to ask onnxruntime for. */
  readonly provider: string;
  /** Why the requested backend is not used; null when it is. */
  readonly fallback: string | null;
}

/** The provider for `backend`, or cpu with the reason when this onnxruntime lacks it. */
export function chooseProvider(backend: ComputeBackend): ProviderChoice {
  if (backend === 'cpu') return { provider: 'cpu', fallback: null };
  const wanted = PROVIDER_NAMES[backend];
  let available: string[];
  try {
    available = ort()
      .listSupportedBackends()
      .map((entry) => entry.name);
  } catch (error) {
    return {
      provider: 'cpu',
      fallback: `${backend} not available: onnxruntime could not list its providers (${error instanceof Error ? error.message : String(error)})`,
    };
  }
  if (!available.includes(wanted)) {
    return {
      provider: 'cpu',
      fallback: `${backend} not available in this onnxruntime, which offers ${available.join(', ')}`,
    };
  }
  return { provider: wanted, fallback: null };
}

/** "cpu", "cuda", or "cpu (cuda not available …)" for a result's `backend` line. */
export function describeProvider(choice: ProviderChoice, detail: string): string {
  const base = `${choice.provider} (${detail})`;
  return choice.fallback ? `${base}; ${choice.fallback}` : base;
}
