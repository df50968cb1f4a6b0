/**
 * The Python scripts of the workspace, analysed and cached: open documents by their text,
 * the others from disk by size and modification time. Layer definitions in one script are
 * linked through the classes and model files of all of them.
 */
import { readdir, stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  MAX_SCRIPT_BYTES,
  MAX_SCRIPT_SEARCH_DEPTH,
  MAX_WORKSPACE_SCRIPTS,
} from '../../shared/limits';
import { analyzeTree, type ScriptAnalysis } from './scriptAnalysis';
import { parsePython } from './treeSitter';

export interface OpenScript {
  /** Absolute path of the script. */
  readonly path: string;
  readonly text: string;
}

/** Folders that hold installed packages, caches or build output, not the user's scripts. */
const SKIPPED_FOLDERS = new Set([
  'node_modules',
  '__pycache__',
  'site-packages',
  'venv',
  'env',
  'build',
  'dist',
]);

/**
 * Words one of which every script with something to link contains (a model call, a torch
 * layer, an nn.Module class). Scripts on disk without any are not parsed: most files of a
 * large repository have nothing to do with models.
 */
const RELEVANT_WORDS = ['torch', 'nn.', 'Module', 'safetensors', 'onnx', '_pretrained'];

const EMPTY_ANALYSIS: ScriptAnalysis = { references: [], layers: [], submodules: [], classes: [] };

/** Parses and analyses one script; a script that cannot be read yields an empty analysis. */
export async function analyzeSource(text: string, path: string): Promise<ScriptAnalysis> {
  const tree = await parsePython(text);
  try {
    return analyzeTree(tree, path);
  } finally {
    tree.delete();
  }
}

export class WorkspaceScripts {
  private folders: readonly string[] = [];
  private listing: Promise<string[]> | undefined;
  private readonly onDisk = new Map<
    string,
    { identity: string; analysis: Promise<ScriptAnalysis> }
  >();
  private readonly open = new Map<string, { text: string; analysis: Promise<ScriptAnalysis> }>();

  constructor(private readonly log: (message: string) => void = () => undefined) {}

  get workspaceFolders(): readonly string[] {
    return this.folders;
  }

  setWorkspaceFolders(folders: readonly string[]): void {
    this.folders = folders;
    this.listing = undefined;
  }

  /** A script was created, changed or deleted on disk. */
  changedOnDisk(path: string, createdOrDeleted: boolean): void {
    this.onDisk.delete(path);
    if (createdOrDeleted) this.listing = undefined;
  }

  closed(path: string): void {
    this.open.delete(path);
  }

  /** The analysis of an open document (cached while its text stays the same). */
  analyzeOpen(script: OpenScript): Promise<ScriptAnalysis> {
    const cached = this.open.get(script.path);
    if (cached && cached.text === script.text) return cached.analysis;
    const analysis = this.safely(script.path, () => analyzeSource(script.text, script.path));
    this.open.set(script.path, { text: script.text, analysis });
    return analysis;
  }

  /** Reads every script of the workspace ahead of the first request that needs them. */
  async warmUp(): Promise<void> {
    await this.all([]);
  }

  /** Every script of the workspace: the open ones as edited, the others as saved. */
  async all(openScripts: readonly OpenScript[]): Promise<Map<string, ScriptAnalysis>> {
    const result = new Map<string, ScriptAnalysis>();
    for (const script of openScripts) result.set(script.path, await this.analyzeOpen(script));
    for (const path of await this.list()) {
      if (!result.has(path)) result.set(path, await this.analyzeOnDisk(path));
    }
    return result;
  }

  private analyzeOnDisk(path: string): Promise<ScriptAnalysis> {
    return this.safely(path, async () => {
      const info = await stat(path);
      const identity = `${info.size}:${info.mtimeMs}`;
      const cached = this.onDisk.get(path);
      if (cached && cached.identity === identity) return cached.analysis;
      const analysis =
        info.size > MAX_SCRIPT_BYTES
          ? Promise.resolve(EMPTY_ANALYSIS)
          : readFile(path, 'utf8').then((text) =>
              RELEVANT_WORDS.some((word) => text.includes(word))
                ? analyzeSource(text, path)
                : EMPTY_ANALYSIS,
            );
      this.onDisk.set(path, { identity, analysis });
      return analysis;
    });
  }

  /** A script that cannot be read or analysed is logged and counts as empty. */
  private async safely(path: string, work: () => Promise<ScriptAnalysis>): Promise<ScriptAnalysis> {
    try {
      return await work();
    } catch (error) {
      this.log(
        `LayerLens could not read ${path}: ${error instanceof Error ? error.message : String(error)}`,
      );
      return EMPTY_ANALYSIS;
    }
  }

  private list(): Promise<string[]> {
    this.listing ??= findScripts(this.folders);
    return this.listing;
  }
}

/** `*.py` files under the folders, breadth first, skipping hidden and package folders. */
export async function findScripts(folders: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  let level = [...folders];
  for (let depth = 0; depth <= MAX_SCRIPT_SEARCH_DEPTH && level.length > 0; depth++) {
    const next: string[] = [];
    for (const folder of level) {
      let entries;
      try {
        entries = await readdir(folder, { withFileTypes: true });
      } catch {
        continue;
      }
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const entry of entries) {
        if (entry.name.startsWith('.')) continue;
        const path = join(folder, entry.name);
        if (entry.isDirectory() && !SKIPPED_FOLDERS.has(entry.name)) next.push(path);
        else if (entry.isFile() && entry.name.endsWith('.py')) {
          found.push(path);
          if (found.length >= MAX_WORKSPACE_SCRIPTS) return found;
        }
      }
    }
    level = next;
  }
  return found;
}
