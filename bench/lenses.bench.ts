/**
 * How long code lenses take on a large training script, next to CPython's own parser on
 * the same text.
 *
 *   node --import tsx bench/lenses.bench.ts [modules]     (default 200, about 5,000 lines)
 *
 * The script holds `modules` nn.Module classes (five layers and a Sequential each) and a
 * safetensors file with all their tensors; the lenses are computed as the server does
 * (parse, analysis, path resolution, mapping every layer, shape checks), with the model's
 * header already read once (as after the first request). The reference is `ast.parse`
 * in python3 (skipped when python3 is missing). Best of a few repetitions.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelService } from '../src/server/modelService';
import { PythonLenses } from '../src/server/python/pythonLenses';
import { parsePython } from '../src/server/python/treeSitter';
import { analyzeSource } from '../src/server/python/workspaceScripts';
import { writeSafetensors, type SafetensorsTensor } from '../test/support/safetensorsBuilder';

const REPETITIONS = 5;

async function bestMilliseconds(run: () => unknown): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < REPETITIONS; i++) {
    const start = process.hrtime.bigint();
    await run();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e6);
  }
  return best;
}

function moduleSource(index: number): string {
  return `
class Block${index}(nn.Module):
    """Block ${index} of the benchmark model."""

    def __init__(self, width: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width * 2)
        self.fc2 = nn.Linear(width * 2, width)
        self.norm = nn.LayerNorm(width)
        self.conv = nn.Conv1d(width, width, kernel_size=3, padding=1)
        self.head = nn.Linear(width, classes)
        self.mlp = nn.Sequential(nn.Linear(width, 16), nn.ReLU(), nn.Linear(16, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.fc1(x))
        hidden = self.norm(self.fc2(hidden) + x)
        return self.head(self.mlp(hidden))
`;
}

function benchmarkScript(modules: number): string {
  const header = `import os
import torch
from torch import nn
from safetensors.torch import save_file

OUT = "models"
`;
  const blocks = Array.from({ length: modules }, (_, index) => moduleSource(index)).join('\n');
  const saves = Array.from(
    { length: modules },
    (_, index) =>
      `    save_file(Block${index}().state_dict(), os.path.join(OUT, "model.safetensors"))`,
  ).join('\n');
  return `${header}${blocks}\n\ndef main() -> None:\n${saves}\n`;
}

function zeros(shape: number[]): SafetensorsTensor {
  const count = shape.reduce((product, dim) => product * dim, 1);
  return { name: '', dtype: 'F32', shape, data: new Float32Array(count) };
}

/** The tensors one block's state dict has (the same names in every block, as a real model would not). */
function blockTensors(): SafetensorsTensor[] {
  const named = (name: string, shape: number[]): SafetensorsTensor => ({
    ...zeros(shape),
    name,
  });
  return [
    named('fc1.weight', [128, 64]),
    named('fc1.bias', [128]),
    named('fc2.weight', [64, 128]),
    named('fc2.bias', [64]),
    named('norm.weight', [64]),
    named('norm.bias', [64]),
    named('conv.weight', [64, 64, 3]),
    named('conv.bias', [64]),
    named('head.weight', [10, 64]),
    named('head.bias', [10]),
    named('mlp.0.weight', [16, 64]),
    named('mlp.0.bias', [16]),
    named('mlp.2.weight', [64, 16]),
    named('mlp.2.bias', [64]),
  ];
}

const PYTHON_REFERENCE = `
import ast, json, sys, time
source = open(sys.argv[1]).read()
best = float('inf')
for _ in range(${REPETITIONS}):
    start = time.perf_counter(); ast.parse(source); best = min(best, time.perf_counter() - start)
print(json.dumps({'version': sys.version.split()[0], 'ms': best * 1000}))
`;

function pythonParseMilliseconds(file: string): { version: string; ms: number } | string {
  const result = spawnSync('python3', ['-c', PYTHON_REFERENCE, file], { encoding: 'utf8' });
  if (result.status !== 0)
    return (result.stderr || result.error?.message || 'python3 failed').trim().split('\n').pop()!;
  return JSON.parse(result.stdout) as { version: string; ms: number };
}

async function main(): Promise<void> {
  const modules = Number(process.argv[2] ?? 200);
  const source = benchmarkScript(modules);
  const lines = source.split('\n').length;
  const folder = await mkdtemp(join(tmpdir(), 'layerlens-lens-bench-'));
  const service = new ModelService({ workerCount: 1 });
  try {
    const scriptPath = join(folder, 'train.py');
    await writeFile(scriptPath, source);
    await writeSafetensors(join(folder, 'models', 'model.safetensors'), blockTensors());
    const lenses = new PythonLenses(service);
    lenses.scripts.setWorkspaceFolders([folder]);
    const document = { path: scriptPath, text: source };
    // Warm up: the parser's wasm, the model's header.
    const first = await lenses.codeLenses(document, [document]);

    const rows: [string, number][] = [];
    rows.push([
      'tree-sitter parse',
      await bestMilliseconds(async () => (await parsePython(source)).delete()),
    ]);
    rows.push([
      'parse + analysis (calls, paths, layers)',
      await bestMilliseconds(() => analyzeSource(source, scriptPath)),
    ]);
    rows.push([
      `code lenses, edited text (${first.length} lenses)`,
      await bestMilliseconds(() =>
        // A new text each time, as while typing: nothing of the script's analysis is cached.
        lenses.codeLenses({ path: scriptPath, text: `${source}\n# ${Math.random()}\n` }, []),
      ),
    ]);
    rows.push([
      'code lenses, unchanged text',
      await bestMilliseconds(() => lenses.codeLenses(document, [document])),
    ]);
    const reference = pythonParseMilliseconds(scriptPath);
    if (typeof reference === 'string') rows.push([`python3 unavailable: ${reference}`, NaN]);
    else rows.push([`CPython ${reference.version} ast.parse (reference)`, reference.ms]);

    const width = Math.max(...rows.map(([name]) => name.length));
    console.log(
      `${modules} modules, ${lines} lines, ${(source.length / 1024).toFixed(0)} KB; best of ${REPETITIONS}; Node ${process.version}`,
    );
    console.log(`${'measurement'.padEnd(width)}  ${'ms'.padStart(8)}  ${'lines/ms'.padStart(8)}`);
    for (const [name, ms] of rows) {
      const rate = lines / ms;
      console.log(
        `${name.padEnd(width)}  ${Number.isNaN(ms) ? '' : ms.toFixed(1).padStart(8)}  ${Number.isNaN(rate) ? '' : rate.toFixed(0).padStart(8)}`,
      );
    }
  } finally {
    service.dispose();
    await rm(folder, { recursive: true, force: true });
  }
}

void main();
