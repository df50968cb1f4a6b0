/**
 * onnxruntime sessions of whole models (validation, the sensitivity sweep) on the provider
 * of the `compute.backend` setting, or on cpu with the reason when this onnxruntime lacks
 * that provider or the provider cannot load the model.
 */
import type * as Ort from 'onnxruntime-node';
import type { ComputeBackend } from '../../shared/settings';
import { ort } from './ort';
import { chooseProvider } from './providers';
import { firstLine } from './sampleSet';

/** onnxruntime's own log level: fatal only (failures come back as errors and are reported). */
const QUIET_LOGS = 4;

export interface OpenedSession {
  readonly session: Ort.InferenceSession;
  /** The provider that runs it. */
  readonly provider: string;
  /** Why it does not run on the requested backend's provider; empty when it does. */
  readonly notes: readonly string[];
}

/** A session of `model` (a file or its bytes); throws when not even cpu can load it. */
export async function openSession(
  model: string | Uint8Array,
  backend: ComputeBackend,
): Promise<OpenedSession> {
  const create = (provider: string) => {
    const options = { executionProviders: [provider], logSeverityLevel: QUIET_LOGS } as const;
    return typeof model === 'string'
      ? ort().InferenceSession.create(model, options)
      : ort().InferenceSession.create(model, options);
  };
  const choice = chooseProvider(backend);
  const notes = choice.fallback ? [choice.fallback] : [];
  if (choice.provider !== 'cpu') {
    try {
      return { session: await create(choice.provider), provider: choice.provider, notes };
    } catch (error) {
      notes.push(`${choice.provider} failed to load the model (${firstLine(error)}); ran on cpu`);
    }
  }
  return { session: await create('cpu'), provider: 'cpu', notes };
}
