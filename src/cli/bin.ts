/** Entry of the `layerlens` command (dist/cli.js). */
import { main } from './main';

// Set the exit code rather than calling process.exit(): on a pipe stdout is written
// asynchronously, and exiting at once would cut off a long --json report.
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(
      `layerlens: unexpected error: ${error instanceof Error ? error.stack : String(error)}`,
    );
    process.exitCode = 70;
  },
);
