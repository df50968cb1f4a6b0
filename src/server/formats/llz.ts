/**
 * Packed models (`*.llz`, see docs/llz-format.md) opened as the model they hold. The
 * inner file's structure (safetensors header, ONNX protobuf without its raw tensor bytes)
 * is decoded into a sparse temporary file of the original's size, the inner format's own
 * reader parses it, and each tensor stored in the file is then served by decoding only its
 * chunks of the container when its values are asked for.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { formatBytes } from '../../shared/format';
import { MAX_LLZ_STRUCTURE_BYTES } from '../../shared/limits';
import type { MetadataEntry, ModelFormat } from '../../shared/model';
import { CHUNK_HASH_NAMES } from '../lossless/chunkHash';
import {
  basePathOf,
  chunkHashOf,
  hasLlzMagic,
  readContainer,
  type LlzContainer,
} from '../lossless/container';
import { readOriginalRange } from '../lossless/reader';
import { temporarySubfolder } from '../tempFiles';
import { mapStoredData } from './decodedValues';
import {
  ModelFileError,
  type FormatModule,
  type OpenedModel,
  type TensorData,
  type TensorEntry,
} from './types';

/** The reader of the format a packed file holds (the registry's, passed in to keep it acyclic). */
export type InnerReader = (format: ModelFormat) => FormatModule;

/**
 * Write the non-tensor segments of the original into a sparse file of the original's size,
 * a chunk at a time (memory stays at one chunk; each write lets the event loop run).
 */
async function writeSkeleton(container: LlzContainer, skeletonPath: string): Promise<void> {
  const handle = await fs.open(skeletonPath, 'wx');
  const step = container.index.chunkBytes;
  try {
    for (const segment of container.index.segments) {
      if (segment.kind !== 'other') continue;
      for (let done = 0; done < segment.length; done += step) {
        const length = Math.min(step, segment.length - done);
        const bytes = readOriginalRange(container, null, segment.offset + done, length);
        await handle.write(bytes, 0, bytes.length, segment.offset + done);
      }
    }
    await handle.truncate(container.index.original.size);
  } finally {
    await handle.close();
  }
}

function packedMetadata(
  container: LlzContainer,
  basePath: string | null,
  baseProblem: string,
): MetadataEntry[] {
  const { original, base } = container.index;
  const entries: MetadataEntry[] = [
    { key: 'packed from', value: `${original.name} (${formatBytes(original.size)})` },
    {
      key: 'packed ratio',
      value: `${(container.size / Math.max(1, original.size)).toFixed(4)} (${formatBytes(container.size)})`,
    },
    original.digest === undefined
      ? { key: 'original SHA-256', value: original.sha256! }
      : {
          key: `original SHA-256 of chunk ${CHUNK_HASH_NAMES[chunkHashOf(container.index.version)!]}s`,
          value: original.digest,
        },
  ];
  if (base) {
    entries.push({
      key: 'delta against',
      value: `${base.path}${basePath ? '' : ` (${baseProblem}: tensor values cannot be read)`}`,
    });
  }
  return entries;
}

async function existingFile(filePath: string | null): Promise<string | null> {
  if (!filePath) return null;
  try {
    return (await fs.stat(filePath)).isFile() ? filePath : null;
  } catch {
    return null;
  }
}

async function openPacked(filePath: string, readerOf: InnerReader): Promise<OpenedModel> {
  const absolute = path.resolve(filePath);
  const container = await readContainer(absolute);
  const { original } = container.index;
  const inner = readerOf(original.format);
  const structureBytes = container.index.segments
    .filter((segment) => segment.kind === 'other')
    .reduce((sum, segment) => sum + segment.length, 0);
  if (structureBytes > MAX_LLZ_STRUCTURE_BYTES) {
    throw new ModelFileError(
      absolute,
      `the packed model's structure (non-tensor bytes) is ${structureBytes} bytes, more than the limit of ${MAX_LLZ_STRUCTURE_BYTES}`,
    );
  }
  // A recorded base path that leads out of the folder is not followed: the model still
  // opens, its delta tensors unreadable, as when the base is missing.
  let basePath: string | null = null;
  let baseProblem = 'missing';
  try {
    basePath = await existingFile(await basePathOf(container));
  } catch (error) {
    if (!(error instanceof ModelFileError)) throw error;
    baseProblem = `refused: ${error.problem}`;
  }
  const folder = temporarySubfolder();
  // The name never comes from the container (it may be '..', too long or hold a NUL): a fixed
  // stem with the extension the inner reader expects.
  const skeletonPath = path.join(folder, `model${inner.extensions[0] ?? ''}`);
  // The skeleton lies on disk only while it is read: at the opening, and again each time the
  // inner model's structure is asked for (one at a time: they share the path).
  let reading: Promise<unknown> = Promise.resolve();
  const withSkeleton = <T>(read: () => Promise<T>): Promise<T> => {
    const done = reading.then(async () => {
      await fs.mkdir(folder, { recursive: true, mode: 0o700 });
      try {
        await writeSkeleton(container, skeletonPath);
        return await read();
      } catch (error) {
        if (error instanceof ModelFileError) {
          throw new ModelFileError(
            absolute,
            `the packed ${original.format} model cannot be read: ${error.problem}`,
          );
        }
        throw error;
      } finally {
        await fs.rm(folder, { recursive: true, force: true });
      }
    });
    reading = done.catch(() => undefined);
    return done;
  };
  // Files the inner model names (ONNX external data) lie beside the packed file.
  const opened = await withSkeleton(() =>
    inner.open(skeletonPath, { referenceFolder: path.dirname(absolute) }),
  );
  // The inner reader's decoded model, when it keeps one, or its file read again.
  const innerDecoded = opened.onnx;
  const fileName = path.basename(absolute);
  const fromContainer = (data: TensorData): TensorData => {
    if (data.kind === 'memory' && data.derived?.path === opened.path) {
      // Values derived from a range of the original: that range read from the container.
      const { offset, length, derive } = data.derived;
      return {
        kind: 'memory',
        length: data.length,
        load: () => derive(readOriginalRange(container, basePath, offset, length)),
      };
    }
    if (data.kind !== 'file' || data.path !== opened.path) return data;
    const { offset, length } = data;
    return {
      kind: 'memory',
      length,
      load: () => readOriginalRange(container, basePath, offset, length),
      packed: { container: container.path, base: basePath, offset },
      ...(data.blocks ? { blocks: data.blocks } : {}),
    };
  };
  const tensors = opened.tensors.map((entry): TensorEntry => ({
    info: { ...entry.info, file: fileName },
    // Decoded tensors (quantized weights) read each stored part from the container.
    data: mapStoredData(entry.data, fromContainer),
  }));
  return {
    path: absolute,
    summary: {
      ...opened.summary,
      fileName,
      fileBytes: container.size,
      totalBytes: container.size + opened.summary.totalBytes - original.size,
      metadata: [...packedMetadata(container, basePath, baseProblem), ...opened.summary.metadata],
      ...(container.index.base ? { deltaBase: basePath } : {}),
    },
    tensors,
    packed: true,
    // Its bytes are the skeleton's, so it is offered for its structure alone, not as `onnx`.
    ...(innerDecoded ? { onnxStructure: () => withSkeleton(innerDecoded) } : {}),
  };
}

/** Packed files, whose inner model `readerOf` reads (the registry's format of that model). */
export function packedFormat(readerOf: InnerReader): FormatModule {
  return {
    format: 'llz',
    extensions: ['.llz'],
    match: hasLlzMagic,
    open: (filePath) => openPacked(filePath, readerOf),
  };
}
