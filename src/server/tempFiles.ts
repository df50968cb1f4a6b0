/**
 * Temporary files, all in one folder LayerLens owns: `<os temp>/layerlens-<user>/<pid>-<hex>/`
 * for this process. Writers ask `temporaryPath(final)` for the path to write a file that
 * will be renamed to `final`; the name never comes from file content. The rename must stay
 * atomic, which needs the same file system: when the temporary folder lies on another one
 * than `final`, the temporary file goes beside `final` instead, hidden and named for this
 * process (`.<name>.layerlens-<pid>-<hex>.tmp`), a name VS Code's explorer hides
 * (BESIDE_OUTPUT_TEMP_GLOB).
 *
 * Cleaning: writers remove their files on failure and cancel; `removeTemporaryFolder`
 * (on exit) removes the process's folder; and the first use in a process sweeps the folders
 * of processes that no longer run (killed before they could clean up).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Prefix of the per-process folders (`<pid>-<hex>`) and of temporary files placed beside outputs. */
const TAG = 'layerlens';

/**
 * The temporary files placed beside outputs, as a glob: package.json's
 * `configurationDefaults` adds it to `files.exclude`, so the explorer never shows them.
 */
export const BESIDE_OUTPUT_TEMP_GLOB = `**/.*.${TAG}-*.tmp`;

/** The folder of every LayerLens process of this user. */
export function temporaryRoot(): string {
  let user = 'user';
  try {
    user = String(os.userInfo().uid >= 0 ? os.userInfo().uid : os.userInfo().username);
  } catch {
    // No user database entry (some containers): one shared name.
  }
  return path.join(os.tmpdir(), `${TAG}-${user}`);
}

let own: string | undefined;

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove the folders of LayerLens processes that no longer run; returns what was removed. */
export function sweepTemporaryFolders(root = temporaryRoot()): string[] {
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const entry of entries) {
    const match = /^(\d+)-[0-9a-f]+$/.exec(entry);
    if (!match) continue;
    const pid = Number(match[1]);
    if (pid === process.pid || isRunning(pid)) continue;
    rmSync(path.join(root, entry), { recursive: true, force: true });
    removed.push(entry);
  }
  return removed;
}

/** This process's temporary folder (created, after a sweep of dead processes', on first use). */
export function temporaryFolder(): string {
  if (own) return own;
  const root = temporaryRoot();
  mkdirSync(root, { recursive: true, mode: 0o700 });
  sweepTemporaryFolders(root);
  own = path.join(root, `${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(own, { mode: 0o700 });
  process.once('exit', removeTemporaryFolder);
  return own;
}

/** Remove this process's temporary folder and everything in it. */
export function removeTemporaryFolder(): void {
  if (!own) return;
  rmSync(own, { recursive: true, force: true });
  own = undefined;
}

/** A fresh name in the process's folder: a fixed stem, a counter-free random tag, `extension`. */
function freshName(extension: string): string {
  return `${randomBytes(6).toString('hex')}${extension}`;
}

/**
 * A temporary path to write a file that is then renamed to `final` (atomically: on the same
 * file system as `final`). `extension` (e.g. `.onnx`) is kept for readers that look at it.
 */
export function temporaryPath(final: string, extension = ''): string {
  const folder = temporaryFolder();
  const finalFolder = path.dirname(path.resolve(final));
  let sameDevice = false;
  try {
    sameDevice = statSync(folder).dev === statSync(finalFolder).dev;
  } catch {
    // The output folder cannot be examined: the writer reports that when it opens the file.
  }
  if (sameDevice) return path.join(folder, freshName(extension));
  return besideOutputPath(final);
}

/** A hidden temporary path beside `final`, for when the temporary folder is on another file system. */
export function besideOutputPath(final: string): string {
  return path.join(
    path.dirname(path.resolve(final)),
    `.${path.basename(final)}.${TAG}-${process.pid}-${randomBytes(4).toString('hex')}.tmp`,
  );
}

/** A fresh temporary sub-folder (for a file a reader needs under a name of its own choosing). */
export function temporarySubfolder(): string {
  const folder = path.join(temporaryFolder(), randomBytes(6).toString('hex'));
  mkdirSync(folder, { mode: 0o700 });
  return folder;
}
