import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openModelFile } from '../../../../src/server/formats/registry';
import { ModelFileError } from '../../../../src/server/formats/types';
import { pythonWithNumpy } from '../../../support/python';
import { makeTempDir } from '../../../support/safetensorsBuilder';
import {
  writeHostileCheckpoints,
  writeMalformedCheckpoints,
  writeTorchCheckpoints,
} from '../../../support/torchCheckpoints';

let dir: string;
let removeDir: () => Promise<void>;
before(async () => {
  ({ dir, remove: removeDir } = await makeTempDir('layerlens-pt-bad-'));
  await writeTorchCheckpoints(dir);
  writeMalformedCheckpoints(join(dir, 'bad'));
});
after(() => removeDir());

/** Opening `file` fails with a ModelFileError that names it and matches `problem`. */
async function assertRefused(file: string, problem: RegExp): Promise<void> {
  await assert.rejects(openModelFile(file), (error: unknown) => {
    assert.ok(error instanceof ModelFileError, `${file}: ${String(error)}`);
    assert.equal(error.file, file);
    assert.match(error.problem, problem);
    return true;
  });
}

test('a hostile pickle is refused with the global it names, and its command never runs', async () => {
  const marker = join(dir, 'hostile-ran');
  const hostile = join(dir, 'hostile');
  writeHostileCheckpoints(hostile, marker);
  const cases: [string, string][] = [
    ['os_system.pt', 'os.system'],
    ['builtins_eval.pt', 'builtins.eval'],
    ['subprocess_popen.pt', 'subprocess.Popen'],
    ['stack_global.pt', 'os.system'],
    ['legacy_os_system.pt', 'os.system'],
  ];
  for (const [file, global] of cases) {
    await assertRefused(
      join(hostile, file),
      new RegExp(`refuses global ${global.replace('.', '\\.')}`),
    );
  }
  assert.equal(existsSync(marker), false, 'no command of the hostile pickles ran');
  // The payloads are live: Python's own pickle runs them (which torch.load without
  // weights_only would do).
  const python = spawnSync(
    pythonWithNumpy(),
    [
      '-c',
      'import pickle, sys; pickle.loads(open(sys.argv[1], "rb").read())',
      join(hostile, 'os_system.pkl'),
    ],
    { encoding: 'utf8' },
  );
  assert.equal(python.status, 0, python.stderr);
  assert.equal(existsSync(marker), true, "Python's pickle ran the payload");
});

test('malformed checkpoints give a ModelFileError naming the file and the problem', async () => {
  const bad = (name: string): string => join(dir, 'bad', name);
  const cases: [string, RegExp][] = [
    ['overreach.pt', /reaches element 5, past the end of storage 0 \(4 elements\)/],
    ['rank_mismatch.pt', /size has 2 dimensions and its stride 1/],
    ['big_endian.pt', /byte order is "big"/],
    ['missing_storage.pt', /record archive\/data\/0 is missing/],
    ['no_pickle.pt', /without <name>\/data\.pkl/],
    ['torchscript.pt', /TorchScript archive/],
    ['deep_marks.pt', /MARKs nest deeper than the limit of 1000/],
    ['deep_lists.pt', /nests deeper than 1000 levels/],
    ['huge_string.pt', /a string of 4294967280 bytes, more than the limit/],
    ['huge_long.pt', /an integer of 1000000 bytes, more than the limit of 64/],
    ['memo_missing.pt', /memo entry 5 is read before it is written/],
    ['bad_pid.pt', /persistent id is number, not a tuple/],
    ['unknown_opcode.pt', /unknown opcode 0xff at byte 2/],
    ['truncated_pickle.pt', /ends at byte 13, inside an opcode/],
    ['instance.pt', /refuses global os\.system/],
  ];
  for (const [name, problem] of cases) await assertRefused(bad(name), problem);
  // a list that holds itself opens (no tensors) instead of looping
  const cycle = await openModelFile(bad('cycle.pt'));
  assert.equal(cycle.tensors.length, 0);
});

test('truncated files, other files named .pt or .bin, and old tar checkpoints are refused', async () => {
  const zip = await readFile(join(dir, 'checkpoint.pt'));
  await writeFile(join(dir, 'half.pt'), zip.subarray(0, zip.byteLength >> 1));
  await assertRefused(join(dir, 'half.pt'), /not a readable zip archive/);
  const legacy = await readFile(join(dir, 'legacy.pt'));
  await writeFile(join(dir, 'legacy-cut.pt'), legacy.subarray(0, legacy.byteLength - 40));
  await assertRefused(join(dir, 'legacy-cut.pt'), /past the end of the file|ended at byte/);
  await writeFile(join(dir, 'legacy-head.pt'), legacy.subarray(0, 60));
  await assertRefused(join(dir, 'legacy-head.pt'), /legacy|truncated/);
  await writeFile(join(dir, 'notes.bin'), 'just some text, not a checkpoint\n');
  await assertRefused(join(dir, 'notes.bin'), /not a PyTorch checkpoint/);
  const tar = new Uint8Array(1024);
  tar.set(new TextEncoder().encode('ustar'), 257);
  await writeFile(join(dir, 'old.pt'), tar);
  await assertRefused(join(dir, 'old.pt'), /tar archive.*torch\.save\(obj, path\)/);
});
