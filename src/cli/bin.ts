/** Entry of the `layerlens` command (dist/cli.js). */
import { main } from './main';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(
      `layerlens: unexpected error: ${error instanceof Error ? error.stack : String(error)}`,
    );
    process.exit(70);
  },
);
