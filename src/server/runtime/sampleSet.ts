/**
 * The sample inputs a model is checked on: several of them (`validation.samples`), read
 * from the user's folder where it has files and generated for the rest, at sizes that
 * exercise the model (inputSizing.ts). When the outputs do not respond at the first
 * sizes, the open spatial and unknown axes grow until they do, within a time and byte
 * budget. The result says which sizes were chosen and why, and what a check on these
 * inputs cannot see (responsiveness.ts).
 */
import * as path from 'node:path';
import type * as Ort from 'onnxruntime-node';
import type { MetadataEntry } from '../../shared/model';
import { DEFAULT_SETTINGS, type LayerLensSettings } from '../../shared/settings';
import { readInputFolder, readMediaFolder } from './inputFiles';
import { ort } from './ort';
import { describeSizes, grow, proposeSizes, type SizeProposal } from './inputSizing';
import { responseProblems } from './responsiveness';
import { generateInputs, type InputSpec, type SampleTensor } from './sampleInputs';

type Outputs = Ort.InferenceSession.OnnxValueMapType;
export type Feeds = Record<string, Ort.Tensor>;

/** Samples the search runs at each size it tries (the rest are run at the chosen size). */
const SEARCH_SAMPLES = 3;
/** Sizes the search tries after the first proposal. */
const MAX_SEARCH_STEPS = 6;
/** Wall time the search may spend running the model before it keeps what it has. */
export const SEARCH_BUDGET_MS = 30_000;
/** Most samples a run takes, whatever the setting says. */
export const MAX_SAMPLES = 64;

export interface SampleSet {
  /** The model's own inputs, one record per sample. */
  readonly feeds: readonly Feeds[];
  /** The original model's outputs on each sample. */
  readonly references: readonly Outputs[];
  /** Where the inputs come from and at which sizes, with the reasons. */
  readonly description: string;
  /** Why a comparison on these inputs cannot see a difference; empty when it can. */
  readonly problems: readonly string[];
}

export interface SampleSetSkipped {
  readonly skipped: string;
  readonly inputs: string;
}

/** The model facts the sizes are chosen from. */
export interface SampleModel {
  readonly inputs: readonly InputSpec[];
  readonly metadata: readonly MetadataEntry[];
}

export function toOrtTensor(sample: SampleTensor): Ort.Tensor {
  return new (ort().Tensor)(sample.dtype, sample.data, [...sample.shape]);
}

export function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!.slice(0, 300);
}

/** The number of samples the settings ask for, within 1…MAX_SAMPLES. */
export function sampleCount(settings: Partial<LayerLensSettings>): number {
  const asked = settings['validation.samples'] ?? DEFAULT_SETTINGS['validation.samples'];
  return Math.max(1, Math.min(MAX_SAMPLES, Math.floor(Number(asked) || 1)));
}

/**
 * The sample inputs of the `validation.*` settings for the model at `modelPath`, and the
 * original model's outputs on them (`run`). `skipped` says why no inputs could be made.
 */
export async function findSampleSet(
  modelPath: string,
  model: SampleModel,
  partialSettings: Partial<LayerLensSettings>,
  run: (feeds: Feeds) => Promise<Outputs>,
  options: { readonly signal?: AbortSignal; readonly seed?: number } = {},
): Promise<SampleSet | SampleSetSkipped> {
  const settings: LayerLensSettings = { ...DEFAULT_SETTINGS, ...partialSettings };
  const seed = options.seed ?? 0;
  const { samples: fileSamples, source: fileSource } = await samplesFromFiles(
    modelPath,
    model.inputs,
    settings,
  );
  const given = new Set(fileSamples.flatMap((s) => [...s.keys()]));
  const missing = model.inputs.filter((spec) => !given.has(spec.name));
  // Inputs all from files: one run per file sample; otherwise the setting's count.
  const count =
    missing.length === 0
      ? Math.min(fileSamples.length, MAX_SAMPLES)
      : Math.max(sampleCount(settings), Math.min(fileSamples.length, MAX_SAMPLES));
  const sizing = {
    dimensions: settings['validation.dimensions'],
    shapes: settings['validation.shapes'],
  };
  const makeFeeds = (proposal: SizeProposal, k: number): Feeds => {
    const generated = generateInputs(missing, {
      shapes: Object.fromEntries(proposal.shapes),
      values: settings['validation.inputValues'],
      seed: seed + k,
    });
    const fromFiles = fileSamples.length > 0 ? fileSamples[k % fileSamples.length]! : new Map();
    const all = new Map<string, SampleTensor>([...fromFiles, ...generated]);
    return Object.fromEntries([...all].map(([name, sample]) => [name, toOrtTensor(sample)]));
  };
  const runAll = async (proposal: SizeProposal, from: number, to: number) => {
    const feeds: Feeds[] = [];
    const outputs: Outputs[] = [];
    for (let k = from; k < to; k++) {
      options.signal?.throwIfAborted();
      const sample = makeFeeds(proposal, k);
      outputs.push(await run(sample));
      feeds.push(sample);
    }
    return { feeds, outputs };
  };

  const started = performance.now();
  const first = proposeSizes(missing, model.metadata, sizing);
  const candidates = [first, ...fallbacks(missing, first)];
  let current: SizeProposal | undefined;
  let trial: { feeds: Feeds[]; outputs: Outputs[] } | undefined;
  let lastError = '';
  for (const candidate of candidates) {
    try {
      trial = await runAll(candidate, 0, Math.min(count, SEARCH_SAMPLES));
      current = candidate;
      break;
    } catch (error) {
      if (error instanceof RangeError) {
        return {
          skipped: `run skipped: ${error.message}; give it as a file in layerlens.validation.inputsFolder`,
          inputs: 'none',
        };
      }
      if (isAbort(error)) throw error;
      lastError = firstLine(error);
    }
  }
  if (!current || !trial) {
    return {
      skipped: `run skipped: the original model fails on the sample inputs (${lastError}); set layerlens.validation.shapes, dimensions or inputValues`,
      inputs: 'generated inputs rejected by the original model',
    };
  }
  const names = Object.keys(trial.outputs[0]!);
  // Grow the open axes while the outputs do not respond, within the budget.
  const searchNotes: string[] = [];
  const start = { proposal: current, trial };
  let responds = responseProblems(trial.outputs, names).length === 0;
  for (let step = 0; step < MAX_SEARCH_STEPS && trial.outputs.length >= 2 && !responds; step++) {
    if (performance.now() - started > SEARCH_BUDGET_MS) {
      searchNotes.push(`size search stopped after ${SEARCH_BUDGET_MS / 1000} s`);
      break;
    }
    const next = grow(current);
    if (!next) break;
    try {
      const grown = await runAll(next, 0, Math.min(count, SEARCH_SAMPLES));
      current = next;
      trial = grown;
      responds = responseProblems(trial.outputs, names).length === 0;
    } catch (error) {
      if (isAbort(error)) throw error;
      searchNotes.push(`the model fails at larger sizes (${firstLine(error)})`);
      break;
    }
  }
  if (!responds && current !== start.proposal) {
    // Larger sizes did not help: the first sizes cost less and show the same.
    searchNotes.push(
      `growing the open axes up to ${[...current.shapes].map(([name, shape]) => `${name} [${shape.join(', ')}]`).join(', ')} did not make the outputs respond; the first sizes were kept`,
    );
    ({ proposal: current, trial } = start);
  }
  const rest = await runAll(current, trial.feeds.length, count);
  const feeds = [...trial.feeds, ...rest.feeds];
  const references = [...trial.outputs, ...rest.outputs];
  const parts: string[] = [];
  if (fileSource) parts.push(fileSource);
  if (missing.length > 0) parts.push(`generated (seeds ${seed}–${seed + count - 1})`);
  const fromFiles = Object.entries(feeds[0]!)
    .filter(([name]) => given.has(name))
    .map(([name, t]) => `${name} [${t.dims.join(', ')}]`);
  const sizes = [...fromFiles, describeSizes(current)].filter((p) => p).join(', ');
  const description = `${count} sample${count === 1 ? '' : 's'}, ${parts.join('; ')}: ${sizes}${
    searchNotes.length > 0 ? `; ${searchNotes.join('; ')}` : ''
  }`;
  return { feeds, references, description, problems: responseProblems(references, names) };
}

/** Proposals tried when the model rejects the first one: every open axis 1, then 512. */
function fallbacks(specs: readonly InputSpec[], first: SizeProposal): SizeProposal[] {
  return [1, 512].map((later) => {
    const shapes = new Map<string, number[]>();
    for (const spec of specs) {
      if (first.choices.some((c) => c.input === spec.name && c.fixed)) {
        shapes.set(spec.name, [...first.shapes.get(spec.name)!]);
        continue;
      }
      let seen = false;
      shapes.set(
        spec.name,
        (spec.shape ?? []).map((dim) => {
          if (typeof dim === 'number') return dim;
          const size = seen ? later : 1;
          seen = true;
          return size;
        }),
      );
    }
    const choices = first.choices.map((c) => ({
      ...c,
      size: shapes.get(c.input)![c.axis] ?? c.size,
      why: c.fixed ? c.why : `the model rejected the first sizes; tried ${later}`,
      fixed: true,
    }));
    return { shapes, choices };
  });
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

/**
 * Samples from `validation.inputsFolder`: arrays named after inputs (.npy, .npz, .json)
 * are part of every sample; each image or WAV file is one sample of its input.
 */
async function samplesFromFiles(
  modelPath: string,
  inputs: readonly InputSpec[],
  settings: LayerLensSettings,
): Promise<{ samples: Map<string, SampleTensor>[]; source: string }> {
  const folderSetting = settings['validation.inputsFolder'];
  if (!folderSetting) return { samples: [], source: '' };
  const folder = path.resolve(path.dirname(modelPath), folderSetting);
  const { feeds, files } = await readInputFolder(folder, inputs);
  const media = await readMediaFolder(
    folder,
    inputs.filter((spec) => !feeds.has(spec.name)),
    settings,
    MAX_SAMPLES,
  );
  const parts: string[] = [];
  if (files.length > 0) parts.push(`files: ${files.join(', ')}`);
  parts.push(...media.coverage);
  const samples =
    media.samples.length > 0
      ? media.samples.map((sample) => new Map([...feeds, ...sample]))
      : feeds.size > 0
        ? [feeds]
        : [];
  return { samples, source: parts.join('; ') };
}
