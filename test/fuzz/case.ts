/**
 * The child process of the fuzz harness (test/fuzz/run.ts): opens each file it is sent
 * the way the server does (ModelService: open, list tensors, statistics of the first ones)
 * and answers with the outcome. A ModelFileError is the expected answer to a broken file;
 * any other error is a crash. The parent kills this process on a hang or a memory blow-up.
 */
import { ModelService } from '../../src/server/modelService';
import { ModelFileError } from '../../src/server/formats/types';

/** Tensors whose statistics each case computes. */
const STATS_TENSORS = 32;

export interface CaseRequest {
  readonly id: number;
  readonly file: string;
}

export interface CaseAnswer {
  readonly id: number;
  readonly outcome: 'ok' | 'error' | 'crash';
  readonly message?: string;
}

const service = new ModelService();

async function run(file: string): Promise<Omit<CaseAnswer, 'id'>> {
  try {
    const summary = await service.openModel(file);
    const page = await service.tensors(file, 0, Math.min(STATS_TENSORS, summary.tensorCount));
    await service.tensorStats(
      file,
      page.tensors.map((tensor) => tensor.index),
    );
    return { outcome: 'ok' };
  } catch (error) {
    if (error instanceof ModelFileError) return { outcome: 'error', message: error.problem };
    return {
      outcome: 'crash',
      message: error instanceof Error ? (error.stack ?? error.message) : String(error),
    };
  } finally {
    service.close(file);
  }
}

process.on('message', (request: CaseRequest) => {
  void run(request.file).then((answer) => process.send!({ id: request.id, ...answer }));
});
process.on('disconnect', () => {
  service.dispose();
  process.exit(0);
});
