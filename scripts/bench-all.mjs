// `npm run bench [-- NAME…]`: every benchmark in bench/, one after the other, each printing
// its own table. Names pick some of them (`npm run bench -- stats spectrum`); a benchmark's
// own size argument goes after `--size` (`npm run bench -- stats --size 64`), and other
// flags are passed on (`npm run bench -- corpus --readme`).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const sizeAt = args.indexOf('--size');
const sizeArgs = sizeAt >= 0 ? args.slice(sizeAt + 1, sizeAt + 2) : [];
// Other flags (`--readme`) go to the benchmarks, which ignore those they do not know.
const flags = args.filter((arg, i) => arg.startsWith('--') && arg !== '--size' && i !== sizeAt + 1);
const names = (sizeAt >= 0 ? args.slice(0, sizeAt) : args).filter((arg) => !arg.startsWith('--'));

const benches = readdirSync(join(root, 'bench'))
  .filter((file) => file.endsWith('.bench.ts'))
  .filter((file) => names.length === 0 || names.includes(file.replace(/\.bench\.ts$/, '')))
  .sort();
if (benches.length === 0) {
  console.error(`No benchmark matches ${names.join(', ')}`);
  process.exit(2);
}
let failed = 0;
for (const file of benches) {
  console.log(`\n=== bench/${file}`);
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', join('bench', file), ...sizeArgs, ...flags],
    { cwd: root, stdio: 'inherit' },
  );
  if (result.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
