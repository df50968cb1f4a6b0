/**
 * Writing commands killed at many points leave nothing behind: after the kill, and the
 * sweep the next LayerLens start does, the folder holds the original and either nothing
 * else or a finished model with its report; no temporary file of the killed process stays.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { sweepTemporaryFolders, temporaryRoot } from '../../../src/server/tempFiles';
import { makeTempDir } from '../../support/safetensorsBuilder';

const SILERO = resolve('node_modules/@ricky0123/vad-web/dist/silero_vad_legacy.onnx');
/** Kill delays after the command starts (its start-up takes a few seconds). */
const DELAYS_MS = [500, 1500, 2500, 3000, 3500, 4000, 4500, 5000, 6000, 8000];

async function killedAfter(args: string[], delayMs: number): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', ...args], {
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  setTimeout(() => child.kill('SIGKILL'), delayMs);
  await exited;
  return child.pid!;
}

for (const method of ['fp16', 'int8']) {
  test(`compress --method ${method} killed at ${DELAYS_MS.length} points leaves nothing behind`, async () => {
    const { dir, remove } = await makeTempDir();
    try {
      const model = join(dir, 'model.onnx');
      copyFileSync(SILERO, model);
      for (const delay of DELAYS_MS) {
        const pid = await killedAfter(['compress', model, '--method', method], delay);
        sweepTemporaryFolders();
        assert.ok(
          !readdirSync(temporaryRoot()).some((name) => name.startsWith(`${pid}-`)),
          `temporary folder of ${pid} left after a kill at ${delay} ms`,
        );
        const left = readdirSync(dir).filter((name) => name !== 'model.onnx');
        const models = left.filter((name) => name.endsWith('.onnx'));
        const others = left.filter((name) => !name.endsWith('.onnx'));
        const reportsFolder = join(dir, 'model.onnx.layerlens');
        const reports = existsSync(reportsFolder) ? readdirSync(reportsFolder) : [];
        // Beside the models only the reports folder (empty when killed before a report's
        // commit), holding one report per model.
        assert.ok(
          others.every((name) => name === 'model.onnx.layerlens'),
          `kill at ${delay} ms left ${left.join(', ')}`,
        );
        assert.deepEqual(
          reports.sort(),
          models.map((name) => `${name}.report.json`).sort(),
          `kill at ${delay} ms left ${left.join(', ')} and reports ${reports.join(', ')}`,
        );
        for (const name of left) rmSync(join(dir, name), { recursive: true });
      }
      assert.ok(existsSync(model));
    } finally {
      await remove();
    }
  });
}
