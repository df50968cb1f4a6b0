/**
 * The Graph tab of the real webview in headless Chromium, answered by the real server, on
 * generated ONNX models of 1k, 5k and 20k nodes (test/support/graphModels.ts: name scopes
 * `/stage.N/` of 1,000 nodes each).
 *
 *   npm run bench -- graph [sizes]     (default 1000,5000,20000)
 *
 * For each model, once the table's statistics are in: first paint (the tab clicked → the
 * graph requested, the top level laid out in the worker and drawn; as the view records it,
 * with its parts, and as the test sees it), the
 * expansion of one 1,000-node group (Enter on it → laid out and drawn; with the time spent
 * waiting for layouts and, on Linux, the CPU time of the layout workers' threads and of the
 * whole renderer, read from /proc: under load, wall time says little, CPU time still does),
 * and frame times while dragging the expanded graph across the canvas
 * (requestAnimationFrame intervals). Targets: first paint and expansion < 1 s, frames ≤ 16.7 ms.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { writeScopedModel } from '../test/support/graphModels';
import { startServer } from '../test/support/serverProcess';
import { WebviewHarness } from '../test/support/webviewHarness';
import { cpuSince, rendererCpu } from './support/processCpu';

const sizes = (process.argv[2] ?? '1000,5000,20000').split(',').map(Number);
if (sizes.some((n) => !Number.isInteger(n) || n < 1000 || n % 1000 !== 0)) {
  console.error('usage: npm run bench -- graph --size 1000,5000,20000 (multiples of 1000)');
  process.exit(2);
}

interface Row {
  nodes: number;
  firstPaintMs: number;
  firstPaintWallMs: number;
  expandMs: number;
  /** The expansion's wait for layouts, and the CPU time of the layout workers' threads. */
  expandLayoutMs: number;
  expandWorkersCpuMs: number | undefined;
  expandRendererCpuMs: number | undefined;
  frameMeanMs: number;
  frameP95Ms: number;
  frames: number;
}

const load = () =>
  loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');

async function main(): Promise<void> {
  const loadBefore = load();
  const folder = await mkdtemp(path.join(tmpdir(), 'layerlens-graph-bench-'));
  const harness = await WebviewHarness.start();
  const server = await startServer({ 'stats.workerCount': 2 });
  const rows: Row[] = [];
  try {
    for (const nodes of sizes) {
      const file = await writeScopedModel(folder, `graph-${nodes}.onnx`, {
        stages: nodes / 1000,
        nodesPerStage: 1000,
      });
      const session = await harness.open({ server, modelPath: file });
      const { page } = session;
      try {
        const tab = page.getByTestId('view-graph');
        await tab.waitFor({ state: 'visible', timeout: 120_000 });
        // Measured once the table's statistics are in: the server is then free for the graph.
        await page
          .locator('body[data-state="ready"]')
          .waitFor({ state: 'attached', timeout: 300_000 });
        const view = page.getByTestId('graph-view');
        const started = Date.now();
        await tab.click();
        await page
          .locator('[data-testid="graph-view"][data-state="ready"]')
          .waitFor({ timeout: 120_000 });
        const firstPaintWallMs = Date.now() - started;
        const firstPaintMs = Number(await view.getAttribute('data-first-paint-ms'));
        const parts = await Promise.all(
          ['data-request-ms', 'data-model-ms', 'data-layout-ms'].map((name) =>
            view.getAttribute(name),
          ),
        );
        console.log(
          `${nodes} nodes: request ${parts[0]} ms, view model ${parts[1]} ms, layout ${parts[2]} ms`,
        );
        // The first item is stage.0, a group of 1,000 nodes: Enter opens it.
        await page.getByTestId('graph-canvas').focus();
        const cpuBefore = rendererCpu();
        await page.keyboard.press('Enter');
        await page
          .locator('[data-testid="graph-view"][data-expand-ms]')
          .waitFor({ state: 'attached', timeout: 300_000 });
        const expandCpu = cpuSince(cpuBefore);
        const expandMs = Number(await view.getAttribute('data-expand-ms'));
        const expandParts = await Promise.all(
          ['data-expand-fetch-ms', 'data-expand-layout-ms', 'data-expand-worker-ms'].map((name) =>
            view.getAttribute(name),
          ),
        );
        const cpuText = expandCpu
          ? `; CPU: layout workers ${expandCpu.workersMs} ms, renderer in all ${expandCpu.rendererMs} ms`
          : '';
        console.log(
          `${nodes} nodes: expand ${expandMs.toFixed(0)} ms: contents ${expandParts[0]} ms, ` +
            `waiting for layouts ${expandParts[1]} ms (workers busy ${expandParts[2]} ms in all)${cpuText}`,
        );
        // Drag across the canvas for two seconds, recording the intervals between frames.
        const box = (await page.getByTestId('graph-canvas').boundingBox())!;
        // A string, not a function: tsx's helpers would not exist in the page.
        await page.evaluate(`(() => {
        window.__frames = [];
        window.__recording = true;
        let last = performance.now();
        const tick = (now) => {
          window.__frames.push(now - last);
          last = now;
          if (window.__recording) requestAnimationFrame(tick);
        };
        requestAnimationFrame(tick);
      })()`);
        await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
        await page.mouse.down();
        for (let step = 0; step < 120; step++) {
          const angle = (step / 120) * 2 * Math.PI;
          await page.mouse.move(
            box.x + box.width / 2 + 200 * Math.cos(angle),
            box.y + box.height / 2 + 200 * Math.sin(angle),
          );
        }
        await page.mouse.up();
        const frames = (await page.evaluate(
          `(() => { window.__recording = false; return window.__frames.slice(1); })()`,
        )) as number[];
        frames.sort((a, b) => a - b);
        rows.push({
          nodes,
          firstPaintMs,
          firstPaintWallMs,
          expandMs,
          expandLayoutMs: Number(expandParts[1]),
          expandWorkersCpuMs: expandCpu?.workersMs,
          expandRendererCpuMs: expandCpu?.rendererMs,
          frameMeanMs: frames.reduce((a, b) => a + b, 0) / Math.max(1, frames.length),
          frameP95Ms: frames[Math.floor(frames.length * 0.95)] ?? 0,
          frames: frames.length,
        });
        if (session.problems.length) console.error(session.problems.join('\n'));
      } finally {
        await session.close();
      }
    }
  } finally {
    await harness.close();
    server.stop();
    await rm(folder, { recursive: true, force: true });
  }

  const header = [
    'nodes',
    'first paint',
    'first paint (wall)',
    'expand 1,000',
    'of which layout',
    'layout workers CPU',
    'frame mean',
    'frame p95',
    'frames',
  ];
  const table = rows.map((row) => [
    row.nodes.toLocaleString('en-US'),
    `${row.firstPaintMs.toFixed(0)} ms`,
    `${row.firstPaintWallMs} ms`,
    `${row.expandMs.toFixed(0)} ms`,
    `${row.expandLayoutMs.toFixed(0)} ms`,
    row.expandWorkersCpuMs === undefined ? 'n/a' : `${row.expandWorkersCpuMs} ms`,
    `${row.frameMeanMs.toFixed(1)} ms`,
    `${row.frameP95Ms.toFixed(1)} ms`,
    String(row.frames),
  ]);
  console.log(`| ${header.join(' | ')} |`);
  console.log(`| ${header.map(() => '---').join(' | ')} |`);
  for (const line of table) console.log(`| ${line.join(' | ')} |`);
  console.log(
    `\nload average before: ${loadBefore}; after: ${load()} (${tmpdir()}, headless Chromium)`,
  );
}

void main();
