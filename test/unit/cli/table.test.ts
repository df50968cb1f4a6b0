/** `layerlens inspect` prints the table of a model with more tensors than a spread argument list holds. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeSafetensors, makeTempDir } from '../../support/safetensorsBuilder';

test('inspect prints a table of 200,000 tensors (Math.max(...rows) overflowed at about 125k)', async () => {
  const { dir, remove } = await makeTempDir();
  try {
    const count = 200_000;
    const header: Record<string, unknown> = {};
    for (let i = 0; i < count; i++) {
      header[`t${i}`] = { dtype: 'F32', shape: [0], data_offsets: [0, 0] };
    }
    const file = join(dir, 'many.safetensors');
    await writeFile(file, encodeSafetensors(header, new Uint8Array(0)));
    const result = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'src/cli/bin.ts', 'inspect', file],
      { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 },
    );
    assert.equal(result.status, 0, result.stderr.slice(-2000));
    const lines = result.stdout.split('\n');
    const rows = lines.filter((line) => /^t\d+ /.test(line));
    assert.equal(rows.length, count);
    // Every row is padded to the widest name, so the columns line up.
    const widths = new Set(rows.map((row) => row.search(/ {2}\S/)));
    assert.equal(widths.size, 1, [...widths].join(','));
  } finally {
    await remove();
  }
});
