/**
 * The per-platform VSIX check: each platform's VSIX must hold its own onnxruntime binaries
 * and no other platform's. Checked on the VSIXs `npm run package` writes when they exist
 * (npm test packages them after the unit tests, so a second run checks the first's), and
 * always on entry lists that break each rule.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';

/** The packaging script is an ES module; this test file is CommonJS. */
const packaging = () => import('../../../scripts/package-vsix.mjs');
type Target = keyof Awaited<ReturnType<typeof packaging>>['TARGETS'];

const BINARIES = 'extension/node_modules/onnxruntime-node/bin/napi-v6/';

test('every platform onnxruntime-node ships is a VSIX target', async () => {
  const { TARGETS } = await packaging();
  assert.deepEqual(Object.keys(TARGETS).sort(), [
    'darwin-arm64',
    'linux-arm64',
    'linux-x64',
    'win32-arm64',
    'win32-x64',
  ]);
});

test("a VSIX with another platform's binary, or without its own, is refused", async () => {
  const { checkVsixEntries, listZipEntries, vsixPath } = await packaging();
  const linux = existsSync(vsixPath('linux-x64'))
    ? listZipEntries(vsixPath('linux-x64')).map((entry) => entry.name)
    : undefined;
  if (!linux) return; // nothing packaged yet on this machine: the next test covers the rules
  assert.deepEqual(checkVsixEntries(linux, 'linux-x64'), []);
  const asDarwin = checkVsixEntries(linux, 'darwin-arm64');
  assert.ok(asDarwin.some((problem) => /missing .*darwin\/arm64/.test(problem)));
  assert.ok(asDarwin.some((problem) => /not a darwin-arm64 binary/.test(problem)));
});

test('the rules hold on plain entry lists', async () => {
  const { checkVsixEntries } = await packaging();
  const own = `${BINARIES}win32/x64/onnxruntime_binding.node`;
  const other = `${BINARIES}linux/x64/onnxruntime_binding.node`;
  const problems = checkVsixEntries(
    [own, other, 'extension/node_modules/d3/index.js'],
    'win32-x64',
  );
  assert.ok(problems.includes(`${other}: not a win32-x64 binary`));
  assert.ok(!problems.some((problem) => problem.startsWith(own)));
  assert.ok(problems.some((problem) => /d3 is bundled by webpack/.test(problem)));
  assert.ok(problems.some((problem) => problem === 'missing extension/dist/server.js'));
});

test('each packaged VSIX holds its own binaries only, and its size is reported', async () => {
  const { checkVsixEntries, listZipEntries, TARGETS, vsixPath } = await packaging();
  for (const target of Object.keys(TARGETS) as Target[]) {
    const file = vsixPath(target);
    if (!existsSync(file)) continue;
    const names = listZipEntries(file).map((entry) => entry.name);
    assert.deepEqual(checkVsixEntries(names, target), [], target);
    const bytes = statSync(file).size;
    assert.ok(bytes > 1 << 20, `${target}: ${bytes} bytes`);
    console.log(`${target}: ${(bytes / 2 ** 20).toFixed(1)} MiB`);
  }
});
