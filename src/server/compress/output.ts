/**
 * Where a compressed model is written, and how, for every format.
 *
 * - Naming (src/server/outputPaths.ts): in the output folder (beside the original unless
 *   `layerlens.output.folder` says otherwise), `<stem>.<method><ext>` (`model.onnx` →
 *   `model.int8.onnx`), then `<stem>.<method>-1<ext>`, `-2`…; the report goes to
 *   `model.onnx.layerlens/model.int8.onnx.report.json`. Sidecar files
 *   (`model.int8.onnx.data`) sit beside the model. Nothing is ever overwritten.
 * - Writing: every file goes to a temporary path first (src/server/tempFiles.ts: LayerLens's
 *   own temporary folder, or beside the output when that folder is on another file system)
 *   and is moved to its final name by `commit`, which refuses to replace an existing file. A job
 *   that fails or is cancelled calls `discard` (done by `withOutputFiles`), which removes
 *   its temporary files and whatever it had already committed: no partial output remains.
 *
 * Format modules use it through `withOutputFiles`:
 *
 *     withOutputFiles(source, output, async (files) => {
 *       await writeModel(files.temp());         // the model, at a temporary path
 *       await files.commit();                   // now at files.path
 *       return writeReport(files, report);      // files.reportPath
 *     });
 */
import { mkdirSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import type {
  CompressionMethod,
  CompressionOptions,
  CompressionReport,
  MethodShare,
} from '../../shared/compress';
import { ModelFileError, type TensorEntry } from '../formats/types';
import { artifactPath, chosenOrDefault, defaultOutputPath } from '../outputPaths';
import { temporaryPath } from '../tempFiles';

/** One tensor of a compression job and the options it is compressed with. */
export interface TensorChoice {
  readonly entry: TensorEntry;
  readonly options: CompressionOptions;
}

/** What the written report says about a job of any format, and where its output goes. */
export interface ChoicesOutput {
  /** The default output name's tag: `<stem>.<name><ext>`. */
  readonly name: string;
  readonly method: CompressionMethod;
  readonly options: CompressionOptions;
  /** A per-tensor compression's settings (the report's `methods`). */
  readonly methods?: readonly MethodShare[];
  readonly outPath?: string;
  /** `layerlens.output.folder`: where a default output name goes. */
  readonly folder?: string;
}

/** The report's fields that name the method(s) of `output`. */
export function reportMethods(
  output: ChoicesOutput,
): Pick<CompressionReport, 'method' | 'options' | 'methods'> {
  return {
    method: output.method,
    options: output.options,
    ...(output.methods ? { methods: output.methods } : {}),
  };
}

/** Whether a path exists (any kind of entry, dangling links included). */
async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch {
    return false;
  }
}

function errorCode(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error ? String(error.code) : undefined;
}

/**
 * Move `temp` to `final` without ever replacing an existing `final`: a hard link fails
 * atomically when the name exists; where the file system has no hard links, a check
 * followed by a rename.
 */
async function moveWithoutOverwrite(temp: string, final: string): Promise<void> {
  try {
    await fs.link(temp, final);
    await fs.unlink(temp);
    return;
  } catch (error) {
    if (errorCode(error) === 'EEXIST') {
      throw new ModelFileError(final, 'this output file appeared while it was being written');
    }
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV'].includes(errorCode(error) ?? '')) {
      throw error;
    }
  }
  if (await exists(final)) {
    throw new ModelFileError(final, 'this output file appeared while it was being written');
  }
  await fs.rename(temp, final);
}

/** The output files of one compression job: their final paths, temporary paths and state. */
export class OutputFiles {
  private readonly temps = new Map<string, string>();
  private readonly committed: string[] = [];
  /** Folders created for the outputs, removed again (when empty) by `discard`. */
  private readonly createdFolders: string[] = [];

  constructor(
    /** The compressed model's final path. */
    readonly path: string,
    /** The model it is made from: names the reports folder (outputPaths.ts). */
    private readonly source: string = path,
  ) {}

  /** The report's final path: `<source>.layerlens/<output>.report.json` beside the output. */
  get reportPath(): string {
    return artifactPath(this.source, this.path, 'report');
  }

  /** The temporary path to write `final` (the model by default, or a sidecar file) to. */
  temp(final: string = this.path): string {
    let temp = this.temps.get(final);
    if (!temp) {
      // The final folder must exist: the temporary file goes beside it when the temporary
      // folder is on another file system.
      const folder = nodePath.dirname(final);
      const created = mkdirSync(folder, { recursive: true });
      if (created) {
        // Every level from the first one created down to the file's folder.
        const levels = nodePath.relative(created, folder).split(nodePath.sep).filter(Boolean);
        let level = created;
        this.createdFolders.push(level);
        for (const part of levels) this.createdFolders.push((level = nodePath.join(level, part)));
      }
      temp = temporaryPath(final);
      this.temps.set(final, temp);
    }
    return temp;
  }

  /** Move the temporary file of `final` to its final name (never replacing a file). */
  async commit(final: string = this.path): Promise<void> {
    const temp = this.temps.get(final);
    if (!temp) throw new Error(`nothing was written for ${final}`);
    await moveWithoutOverwrite(temp, final);
    this.temps.delete(final);
    this.committed.push(final);
  }

  /** Remove every temporary file and every file already committed (the job failed). */
  async discard(): Promise<void> {
    const files = [...this.temps.values(), ...this.committed];
    this.temps.clear();
    this.committed.length = 0;
    await Promise.all(files.map((file) => fs.rm(file, { force: true })));
    // Deepest first; a folder something else was written into stays.
    for (const folder of this.createdFolders.splice(0).reverse()) {
      await fs.rmdir(folder).catch(() => {});
    }
  }
}

/**
 * Run a compression job with its output files: the output path is `output.outPath` when
 * given (refused when it exists), otherwise the first free default name (outputPaths.ts).
 * When the job throws (cancelled included), every file it wrote is removed and the error
 * passes through.
 */
export async function withOutputFiles<T>(
  source: string,
  output: Pick<ChoicesOutput, 'name' | 'outPath' | 'folder'>,
  job: (files: OutputFiles) => Promise<T>,
  ext?: string,
): Promise<T> {
  const target = output.outPath
    ? chosenOrDefault(source, output.outPath, '')
    : await defaultOutputPath(source, output.name, { ext, folderSetting: output.folder });
  const files = new OutputFiles(target, source);
  if (output.outPath) {
    if (nodePath.resolve(source) === target || (await exists(target))) {
      throw new ModelFileError(target, 'the output file exists; LayerLens never overwrites a file');
    }
    if (await exists(files.reportPath)) {
      throw new ModelFileError(
        files.reportPath,
        'the report file exists; LayerLens never overwrites a file',
      );
    }
  }
  try {
    return await job(files);
  } catch (error) {
    await files.discard();
    throw error;
  }
}

/**
 * Write the report as JSON to `files.reportPath` (temporary name, then committed). With
 * `commitModel`, the model is committed here too, between the report's writing and its
 * commit, so that a finished model is never left without its report by a kill.
 */
export async function writeReport(
  files: OutputFiles,
  report: CompressionReport,
  { commitModel = false }: { commitModel?: boolean } = {},
): Promise<CompressionReport> {
  await fs.writeFile(files.temp(files.reportPath), `${JSON.stringify(report, null, 2)}\n`);
  if (commitModel) await files.commit();
  await files.commit(files.reportPath);
  return report;
}

/**
 * Write the report of a file that is not run (no outputs compared), with the model: what
 * was written (`written`), why it was not run (`notRun`, e.g. "a safetensors file has no
 * graph to run") and what reading it back showed (`readBack`).
 */
export function writeUnrunReport(
  files: OutputFiles,
  written: Pick<
    CompressionReport,
    'source' | 'method' | 'options' | 'methods' | 'fileBytesBefore' | 'fileBytesAfter' | 'tensors'
  >,
  notRun: string,
  readBack: string,
  started: number,
): Promise<CompressionReport> {
  const report: CompressionReport = {
    ...written,
    output: files.path,
    reportPath: files.reportPath,
    outputs: [],
    inputs: `none: ${notRun}`,
    validation: [
      readBack,
      `no output deviation: ${notRun}; see the relative weight error per tensor`,
    ],
    verdict: { validated: false, reasons: [`${notRun}: the outputs were not compared`] },
    elapsedMs: Math.round(performance.now() - started),
  };
  return writeReport(files, report, { commitModel: true });
}
