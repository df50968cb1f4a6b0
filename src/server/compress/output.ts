/**
 * Where a compressed model is written, and how, for every format.
 *
 * - Naming: next to the original, `<stem>.<method><ext>` (`model.onnx` →
 *   `model.int8.onnx`), then `<stem>.<method>-1<ext>`, `-2`… A name is free only when no
 *   file in the folder equals it or starts with it followed by a dot, so that the model,
 *   its sidecar files (`model.int8.onnx.data`) and its report
 *   (`model.int8.onnx.report.json`) never overwrite anything.
 * - Writing: every file goes to a temporary path first (src/server/tempFiles.ts: LayerLens's
 *   own temporary folder, or beside the output when that folder is on another file system)
 *   and is moved to its final name by `commit`, which refuses to replace an existing file. A job
 *   that fails or is cancelled calls `discard` (done by `withOutputFiles`), which removes
 *   its temporary files and whatever it had already committed: no partial output remains.
 *
 * Format modules use it through `withOutputFiles`:
 *
 *     withOutputFiles(source, method, request.outPath, async (files) => {
 *       await writeModel(files.temp());         // the model, at a temporary path
 *       await files.commit();                   // now at files.path
 *       return writeReport(files, report);      // files.reportPath
 *     });
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type {
  CompressionMethod,
  CompressionOptions,
  CompressionReport,
} from '../../shared/compress';
import { ModelFileError, type TensorEntry } from '../formats/types';
import { temporaryPath } from '../tempFiles';

/** Suffix of the JSON report written next to a compressed model. */
export const REPORT_SUFFIX = '.report.json';

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
  readonly outPath?: string;
}

/** Collision suffixes tried before giving up (`-1` … `-999`). */
const MAX_NAME_ATTEMPTS = 1000;

/** `model.onnx` → { stem: 'model', ext: '.onnx' }; `a.safetensors.index.json` keeps `.safetensors` in the stem. */
function splitName(fileName: string): { stem: string; ext: string } {
  const ext = path.extname(fileName);
  return { stem: ext ? fileName.slice(0, -ext.length) : fileName, ext };
}

/** Whether any entry of the folder is `name` or starts with `name.`. */
function nameTaken(entries: ReadonlySet<string>, name: string): boolean {
  if (entries.has(name)) return true;
  const prefix = `${name}.`;
  for (const entry of entries) if (entry.startsWith(prefix)) return true;
  return false;
}

/** The first free output path for `source` compressed with `method` (see the module comment). */
export async function defaultOutputPath(
  source: string,
  method: string,
  ext?: string,
): Promise<string> {
  const folder = path.dirname(source);
  const { stem, ext: sourceExt } = splitName(path.basename(source));
  const entries = new Set(await fs.readdir(folder));
  for (let attempt = 0; attempt < MAX_NAME_ATTEMPTS; attempt++) {
    const suffix = attempt === 0 ? '' : `-${attempt}`;
    const name = `${stem}.${method}${suffix}${ext ?? sourceExt}`;
    if (!nameTaken(entries, name)) return path.join(folder, name);
  }
  throw new ModelFileError(
    source,
    `no free output name: ${stem}.${method}-1 … -${MAX_NAME_ATTEMPTS - 1} all exist in ${folder}`,
  );
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

  constructor(
    /** The compressed model's final path. */
    readonly path: string,
  ) {}

  /** The report's final path: the model's path with `.report.json` appended. */
  get reportPath(): string {
    return `${this.path}${REPORT_SUFFIX}`;
  }

  /** The temporary path to write `final` (the model by default, or a sidecar file) to. */
  temp(final: string = this.path): string {
    let temp = this.temps.get(final);
    if (!temp) {
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
  }
}

/**
 * Run a compression job with its output files: the output path is `outPath` when given
 * (refused when it exists), otherwise the first free default name. When the job throws
 * (cancelled included), every file it wrote is removed and the error passes through.
 */
export async function withOutputFiles<T>(
  source: string,
  method: string,
  outPath: string | undefined,
  job: (files: OutputFiles) => Promise<T>,
  ext?: string,
): Promise<T> {
  let target: string;
  if (outPath) {
    target = path.resolve(path.dirname(source), outPath);
    if (path.resolve(source) === target || (await exists(target))) {
      throw new ModelFileError(target, 'the output file exists; LayerLens never overwrites a file');
    }
    if (await exists(`${target}${REPORT_SUFFIX}`)) {
      throw new ModelFileError(
        `${target}${REPORT_SUFFIX}`,
        'the report file exists; LayerLens never overwrites a file',
      );
    }
  } else {
    target = await defaultOutputPath(source, method, ext);
  }
  const files = new OutputFiles(target);
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
    'source' | 'method' | 'options' | 'fileBytesBefore' | 'fileBytesAfter' | 'tensors'
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
