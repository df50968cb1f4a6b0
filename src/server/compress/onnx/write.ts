/**
 * Writing the edited model: the protobuf at a temporary name, and, when the source kept
 * weights in external data (or new tensors derive from such weights), one new data file
 * `<output>.data` beside it holding every external tensor of the output. The source's
 * data files are only read. Both files are renamed into place by the caller's commit.
 */
import { open, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { MAX_ONNX_PROTO_BYTES, STATS_CHUNK_BYTES } from '../../../shared/limits';
import { ModelFileError, type TensorData } from '../../formats/types';
import type { OutputFiles } from '../output';
import { allScopes } from '../../onnx';
import { DATA_LOCATION_EXTERNAL } from './methods';

/** Tensors in the data file start on multiples of this (lets runtimes map them in place). */
const EXTERNAL_ALIGNMENT = 64;

/** Every TensorProto of the model: initializers, sparse parts, and tensor attributes. */
function allTensorProtos(model: onnx.IModelProto, modelPath: string): onnx.ITensorProto[] {
  const protos: onnx.ITensorProto[] = [];
  for (const scope of allScopes(model, modelPath)) {
    const graph = scope.graph;
    protos.push(...(graph.initializer ?? []));
    for (const sparse of graph.sparseInitializer ?? []) {
      if (sparse.values) protos.push(sparse.values);
      if (sparse.indices) protos.push(sparse.indices);
    }
    for (const node of graph.node ?? []) {
      for (const attribute of node.attribute ?? []) {
        if (attribute.t) protos.push(attribute.t);
        protos.push(...(attribute.tensors ?? []));
        if (attribute.sparseTensor?.values) protos.push(attribute.sparseTensor.values);
        if (attribute.sparseTensor?.indices) protos.push(attribute.sparseTensor.indices);
      }
    }
  }
  return protos;
}

async function copyRange(
  source: string,
  offset: number,
  length: number,
  target: FileHandle,
  at: number,
): Promise<void> {
  const handle = await open(source, 'r');
  try {
    const buffer = Buffer.alloc(Math.min(length, STATS_CHUNK_BYTES));
    let done = 0;
    while (done < length) {
      const want = Math.min(buffer.length, length - done);
      const { bytesRead } = await handle.read(buffer, 0, want, offset + done);
      if (bytesRead === 0)
        throw new ModelFileError(source, `the file ended before byte ${offset + length}`);
      await target.write(buffer, 0, bytesRead, at + done);
      done += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

export interface WrittenOnnx {
  readonly modelBytes: number;
  /** The data file's final path and size, when there is one. */
  readonly dataFile?: { readonly path: string; readonly bytes: number };
}

/**
 * Serialize `model` to the temporary paths of `files`. `sources` maps each TensorProto
 * that was external in the source to its bytes there; `externalize` lists new tensors
 * (with raw_data) that go to the data file.
 */
export async function writeOnnxModel(
  model: onnx.IModelProto,
  modelPath: string,
  files: OutputFiles,
  sources: ReadonlyMap<onnx.ITensorProto, TensorData>,
  externalize: ReadonlySet<onnx.ITensorProto>,
  signal?: AbortSignal,
): Promise<WrittenOnnx> {
  const outgoing = allTensorProtos(model, modelPath).filter(
    (proto) => proto.dataLocation === DATA_LOCATION_EXTERNAL || externalize.has(proto),
  );
  let dataFile: WrittenOnnx['dataFile'];
  if (outgoing.length > 0) {
    const finalPath = `${files.path}.data`;
    const location = path.basename(finalPath);
    const handle = await open(files.temp(finalPath), 'wx');
    let size = 0;
    try {
      for (const proto of outgoing) {
        signal?.throwIfAborted();
        size = Math.ceil(size / EXTERNAL_ALIGNMENT) * EXTERNAL_ALIGNMENT;
        let length: number;
        if (externalize.has(proto)) {
          const bytes = proto.rawData ?? new Uint8Array(0);
          await handle.write(bytes, 0, bytes.length, size);
          length = bytes.length;
        } else {
          const source = sources.get(proto);
          if (!source || source.kind !== 'file') {
            throw new ModelFileError(
              modelPath,
              `tensor '${proto.name ?? ''}' is stored as external data LayerLens cannot copy (sparse or attribute tensors)`,
            );
          }
          await copyRange(source.path, source.offset, source.length, handle, size);
          length = source.length;
        }
        proto.rawData = new Uint8Array(0);
        proto.dataLocation = DATA_LOCATION_EXTERNAL;
        proto.externalData = [
          { key: 'location', value: location },
          { key: 'offset', value: String(size) },
          { key: 'length', value: String(length) },
        ];
        size += length;
      }
    } finally {
      await handle.close();
    }
    dataFile = { path: finalPath, bytes: size };
  }
  signal?.throwIfAborted();
  const encoded = onnx.ModelProto.encode(model).finish();
  if (encoded.length > MAX_ONNX_PROTO_BYTES) {
    throw new ModelFileError(
      files.path,
      `the compressed model would be ${encoded.length} bytes, more than a protobuf ONNX file can hold`,
    );
  }
  const handle = await open(files.temp(), 'wx');
  try {
    await handle.writeFile(encoded);
  } finally {
    await handle.close();
  }
  return { modelBytes: encoded.length, ...(dataFile ? { dataFile } : {}) };
}
