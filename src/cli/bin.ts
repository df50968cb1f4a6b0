/** Entry of the `layerlens` command (dist/cli.js). */
import { defaultPoolSize } from '../server/jobs/workerPool';
import { losslessPool } from '../server/lossless/jobs';
import type * as Main from './main';

const argv = process.argv.slice(2);
// pack and unpack start their worker threads first, so that the threads' start-up (a
// Node environment each, the bundle, the kernels) overlaps the loading of the rest of the
// CLI and the reading of the file's header or index, instead of following them.
const pool =
  argv[0] === 'pack' || argv[0] === 'unpack' ? losslessPool(defaultPoolSize(), true) : undefined;

// Loaded only now (the bundle evaluates a module when it is first required).
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a static import would load it first
const { main } = require('./main') as typeof Main;

// Set the exit code rather than calling process.exit(): on a pipe stdout is written
// asynchronously, and exiting at once would cut off a long --json report.
main(argv, pool)
  .then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(
        `layerlens: unexpected error: ${error instanceof Error ? error.stack : String(error)}`,
      );
      process.exitCode = 70;
    },
  )
  .finally(() => pool?.dispose());
