/**
 * A temporary folder for one test file: made before its first test, removed with all it
 * holds after its last. The returned function gives its path to the tests.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';

export function useTempFolder(prefix: string): () => string {
  let folder: string | undefined;
  before(async () => {
    folder = await mkdtemp(join(tmpdir(), prefix));
  });
  after(async () => {
    if (folder) await rm(folder, { recursive: true, force: true });
  });
  return () => {
    if (!folder) throw new Error(`the temporary folder ${prefix}… is made before the first test`);
    return folder;
  };
}
