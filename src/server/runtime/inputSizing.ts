/**
 * Sizes for the dimensions a model leaves open, so that sample inputs exercise it: each
 * open axis gets a role (batch, spatial, sequence or other) from the input's shape, the
 * dimension's name and the model's metadata, and a size with the reason it was chosen.
 * `grow` gives the next, larger proposal when the outputs do not respond at this one.
 */
import type { MetadataEntry } from '../../shared/model';
import { imageLayout } from './mediaInputs';
import type { InputSpec } from './sampleInputs';

export type AxisRole = 'batch' | 'spatial' | 'sequence' | 'other';

/** One open dimension and the size chosen for it. */
export interface AxisChoice {
  readonly input: string;
  readonly axis: number;
  /** The dimension's symbolic name, or null for an unnamed one. */
  readonly dim: string | null;
  readonly role: AxisRole;
  readonly size: number;
  readonly why: string;
  /** True when the size comes from the user (settings), so the search leaves it alone. */
  readonly fixed: boolean;
}

export interface SizeProposal {
  /** Concrete shapes by input name (inputs whose shape is fully known are included). */
  readonly shapes: ReadonlyMap<string, readonly number[]>;
  readonly choices: readonly AxisChoice[];
}

export interface SizingSettings {
  /** Sizes by dimension name (`validation.dimensions`). */
  readonly dimensions: Readonly<Record<string, number>>;
  /** Whole shapes by input name (`validation.shapes`). */
  readonly shapes: Readonly<Record<string, readonly number[]>>;
}

/** Spatial size of an image input whose height and width are both open. */
export const DEFAULT_IMAGE_SIDE = 256;
/** An open side next to a fixed one (a text line [1, 3, 48, W]) is this many times it. */
export const STRIP_ASPECT = 4;
/** Length of an open sequence or time axis when no setting names it. */
export const DEFAULT_SEQUENCE_LENGTH = 512;
/** Elements of one input that the search never goes past. */
export const MAX_SEARCH_ELEMENTS = 8 * 1024 * 1024;
/** Largest side the search grows a spatial axis to. */
export const MAX_SEARCH_SIDE = 2048;

const BATCH_NAME = /^(batch|batch_?size|n|b|bs|num_images)$/i;
const HEIGHT_NAME = /^(h|height|img_?h|image_?height|in_?h)$|height/i;
const WIDTH_NAME = /^(w|width|img_?w|image_?width|in_?w)$|width/i;
const SEQUENCE_NAME = /seq|sequence|time|length|len$|frames|samples|tokens|^t$|^l$|^s$|steps/i;

/** The axis that holds an image input's channels (mediaInputs.ts), or null. */
function imageChannelAxis(spec: InputSpec): 1 | 3 | null {
  const image = imageLayout(spec);
  return image ? (image.layout === 'NCHW' ? 1 : 3) : null;
}

/** Numbers in a metadata value: "640", "[640, 640]", "(3, 224, 224)". */
function numbersIn(value: string): number[] {
  return (value.match(/\d+/g) ?? []).map(Number).filter((n) => n > 0 && n <= MAX_SEARCH_SIDE);
}

/** An image side from the model's metadata (`imgsz`, `image_size`, `input_size`…). */
function metadataSide(
  metadata: readonly MetadataEntry[],
  which: 'height' | 'width',
): number | null {
  for (const { key, value } of metadata) {
    const k = key.toLowerCase();
    if (k === which || k === `image_${which}` || k === `input_${which}`) {
      const [n] = numbersIn(value);
      if (n) return n;
    }
  }
  for (const { key, value } of metadata) {
    if (!/^(imgsz|image_?size|input_?size|img_?size|resolution)$/i.test(key)) continue;
    const sides = numbersIn(value).filter((n) => n >= 8);
    if (sides.length === 1) return sides[0]!;
    // [h, w] or [c, h, w]: the last two.
    if (sides.length >= 2) return which === 'height' ? sides.at(-2)! : sides.at(-1)!;
  }
  return null;
}

function roundUp(value: number, multiple: number): number {
  return Math.max(multiple, Math.ceil(value / multiple) * multiple);
}

/**
 * The first proposal: settings first, then the model's metadata, then conventions for the
 * axis's role. Never 1 along a spatial axis the model leaves open.
 */
export function proposeSizes(
  specs: readonly InputSpec[],
  metadata: readonly MetadataEntry[],
  settings: SizingSettings,
): SizeProposal {
  const shapes = new Map<string, number[]>();
  const choices: AxisChoice[] = [];
  for (const spec of specs) {
    const given = settings.shapes[spec.name];
    if (given) {
      shapes.set(spec.name, [...given]);
      (spec.shape ?? []).forEach((dim, axis) => {
        if (typeof dim === 'number') return;
        choices.push({
          input: spec.name,
          axis,
          dim,
          role: 'other',
          size: given[axis] ?? 1,
          why: 'setting validation.shapes',
          fixed: true,
        });
      });
      continue;
    }
    const shape = spec.shape ?? [];
    const channelAxis = imageChannelAxis(spec);
    const spatialAxes = channelAxis === 1 ? [2, 3] : channelAxis === 3 ? [1, 2] : [];
    const sizes = shape.map((dim, axis): number => {
      if (typeof dim === 'number') return dim;
      const choose = (size: number, role: AxisRole, why: string, fixed = false): number => {
        choices.push({ input: spec.name, axis, dim, role, size, why, fixed });
        return size;
      };
      if (typeof dim === 'string' && settings.dimensions[dim] !== undefined) {
        const role: AxisRole = spatialAxes.includes(axis) ? 'spatial' : roleOfName(dim, axis);
        return choose(settings.dimensions[dim]!, role, 'setting validation.dimensions', true);
      }
      if (spatialAxes.includes(axis)) {
        const which = axis === spatialAxes[0] ? 'height' : 'width';
        const fromMetadata = metadataSide(metadata, which);
        if (fromMetadata) return choose(fromMetadata, 'spatial', `model metadata (${which})`);
        const other = shape[axis === spatialAxes[0] ? spatialAxes[1]! : spatialAxes[0]!];
        if (typeof other === 'number' && other > 1) {
          return choose(
            roundUp(other * STRIP_ASPECT, 8),
            'spatial',
            `${STRIP_ASPECT}× the fixed ${which === 'height' ? 'width' : 'height'} ${other} (a strip image)`,
          );
        }
        return choose(
          DEFAULT_IMAGE_SIDE,
          'spatial',
          `image input with open height and width: ${DEFAULT_IMAGE_SIDE}, a multiple of 32 and 64`,
        );
      }
      const role = roleOf(spec, axis, dim);
      switch (role) {
        case 'batch':
          return choose(1, role, 'batch');
        case 'sequence':
          return choose(
            settings.dimensions['sequence'] ?? DEFAULT_SEQUENCE_LENGTH,
            role,
            `sequence axis${typeof dim === 'string' ? ` '${dim}'` : ''}`,
          );
        default:
          return choose(
            1,
            role,
            'unknown role: smallest size, grown when the outputs do not respond',
          );
      }
    });
    shapes.set(spec.name, sizes);
  }
  return { shapes, choices };
}

function roleOfName(dim: string, axis: number): AxisRole {
  if (axis === 0 && BATCH_NAME.test(dim)) return 'batch';
  if (HEIGHT_NAME.test(dim) || WIDTH_NAME.test(dim)) return 'spatial';
  if (SEQUENCE_NAME.test(dim)) return 'sequence';
  return 'other';
}

/**
 * The role of an open axis: the first open axis of a multi-axis input is the batch unless
 * its name says otherwise; a later open axis of a numeric input of rank 3 or less, or one
 * named like a length, is a sequence.
 */
function roleOf(spec: InputSpec, axis: number, dim: string | null): AxisRole {
  const shape = spec.shape ?? [];
  if (typeof dim === 'string') {
    const byName = roleOfName(dim, axis);
    if (byName !== 'other') return byName;
  }
  const firstOpen = shape.findIndex((d) => typeof d !== 'number');
  if (axis === firstOpen && axis === 0 && shape.length >= 2) return 'batch';
  // [batch, time] or [batch, time, features]: a later open axis is the time axis.
  const numeric =
    spec.dtype?.startsWith('float') || spec.dtype === 'int64' || spec.dtype === 'int32';
  if (numeric && shape.length <= 3 && (axis === shape.length - 1 || axis > firstOpen))
    return 'sequence';
  return 'other';
}

function elements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * The next proposal when the outputs did not respond: every searchable spatial axis and
 * every 'other' axis doubled (a size of 1 becomes 8), within MAX_SEARCH_SIDE and
 * MAX_SEARCH_ELEMENTS per input. Null when nothing can grow.
 */
export function grow(proposal: SizeProposal): SizeProposal | null {
  const shapes = new Map([...proposal.shapes].map(([k, v]) => [k, [...v]]));
  const choices: AxisChoice[] = [];
  let grew = false;
  for (const choice of proposal.choices) {
    const searchable = !choice.fixed && (choice.role === 'spatial' || choice.role === 'other');
    if (!searchable) {
      choices.push(choice);
      continue;
    }
    const shape = shapes.get(choice.input)!;
    const next = choice.size === 1 ? 8 : choice.size * 2;
    const trial = [...shape];
    trial[choice.axis] = next;
    if (next > MAX_SEARCH_SIDE || elements(trial) > MAX_SEARCH_ELEMENTS) {
      choices.push(choice);
      continue;
    }
    shape[choice.axis] = next;
    grew = true;
    choices.push({
      ...choice,
      size: next,
      why: `${choice.why}; grown to ${next} because the outputs did not respond at ${choice.size}`,
    });
  }
  return grew ? { shapes, choices } : null;
}

/** "image [1, 3, 256, 256] (height=256: …)" for each input, for reports. */
export function describeSizes(proposal: SizeProposal): string {
  return [...proposal.shapes]
    .map(([name, shape]) => {
      const reasons = proposal.choices
        .filter((c) => c.input === name && c.role !== 'batch')
        .map((c) => `${c.dim ?? `axis ${c.axis}`}=${c.size}: ${c.why}`);
      return `${name} [${shape.join(', ')}]${reasons.length > 0 ? ` (${reasons.join('; ')})` : ''}`;
    })
    .join(', ');
}
