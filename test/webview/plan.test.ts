/**
 * The plan panel in headless Chromium, with a real plan and a real application on a
 * generated ONNX model (the real planner and compressor): the per-tensor choices and
 * totals, the Apply button's message, the attempts once applied, and Close; the verdict
 * ("Validated" badge only when validated) and, for a saturated-sigmoid model, the plan's
 * warnings before applying and "Not validated" with the reasons after.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { planModel } from '../../src/server/plan';
import { applyRecipe } from '../../src/server/plan/apply';
import type { Plan } from '../../src/shared/plan';
import { writeGgufLlm } from '../support/ggufFixtures';
import { writeModel } from '../support/onnxBuilder';
import { saturatedSigmoidNet } from '../support/validationModels';
import { useWebviewSession } from '../support/webviewSession';
import { writeGaussianMlp } from '../support/gaussianMlp';

let plan: Plan;

const ui = useWebviewSession({
  folderPrefix: 'layerlens-webview-plan-',
  model: writeGaussianMlp,
  setUp: async () => {
    plan = await planModel(ui.modelPath, { target: { kind: 'ratio', value: 3 }, measured: true });
  },
});

test('the plan shows per tensor; Apply asks the host; the attempts show once applied', async () => {
  const { page } = ui.session;
  await ui.session.postToWebview({ type: 'plan', view: { plan } });
  const panel = page.locator('[data-testid="plan-panel"]');
  await panel.waitFor({ state: 'visible', timeout: 30_000 });
  const text = (await panel.textContent()) ?? '';
  assert.match(text, /3× smaller/);
  assert.match(text, /w1/);
  assert.match(text, /w2/);
  assert.match(text, /measured per layer/);
  const choices = await panel.locator('.ll-plan-steps tbody tr td:nth-child(2)').allTextContents();
  assert.equal(choices.length, 2);
  assert.ok(
    choices.every((choice) => /int8|int4|low-rank|fp16|keep/.test(choice)),
    `${choices}`,
  );

  let action = ui.session.nextPosted('planAction');
  await page.locator('[data-testid="plan-apply"]').click();
  assert.deepEqual(await action, { type: 'planAction', action: 'apply' });

  const result = await applyRecipe(ui.modelPath, plan.recipe, { refine: true });
  await ui.session.postToWebview({ type: 'plan', view: { plan, result } });
  const attempts = page.locator('[data-testid="plan-attempts"]');
  await attempts.waitFor({ state: 'visible', timeout: 30_000 });
  assert.match((await attempts.textContent()) ?? '', /Target met/);
  assert.deepEqual([result.verdict.validated, result.verdict.reasons], [true, []]);
  assert.equal(await page.getByTestId('plan-verdict-badge').innerText(), 'Validated');
  assert.equal(await page.getByTestId('plan-verdict-reasons').count(), 0);
  assert.equal(await page.getByTestId('plan-warnings').count(), 0, 'a trusted plan warns nothing');
  assert.equal(
    await attempts.locator('tbody tr').count(),
    result.attempts.length,
    'one row per attempt',
  );
  assert.equal(await page.locator('[data-testid="plan-apply"]').count(), 0, 'applied: no Apply');
  await ui.session.screenshot('plan-panel-applied');

  action = ui.session.nextPosted('planAction');
  await page.locator('[data-testid="plan-dismiss"]').click();
  assert.deepEqual(await action, { type: 'planAction', action: 'dismiss' });
  await panel.waitFor({ state: 'detached', timeout: 10_000 });
  assert.deepEqual(ui.session.problems, []);
});

test('a plan on a saturated sigmoid warns before Apply and says "Not validated" and why after', async () => {
  const { page } = ui.session;
  const saturated = await writeModel(ui.folder, 'saturated.onnx', saturatedSigmoidNet());
  const untrusted = await planModel(saturated, {
    target: { kind: 'ratio', value: 3 },
    measured: true,
  });
  assert.ok(untrusted.warnings.length > 0);
  await ui.session.postToWebview({ type: 'plan', view: { plan: untrusted } });
  const warnings = page.getByTestId('plan-warnings');
  await warnings.waitFor({ state: 'visible', timeout: 30_000 });
  assert.match((await warnings.textContent()) ?? '', /its file will not be validated/);
  assert.deepEqual(await warnings.locator('li').allTextContents(), [...untrusted.warnings]);
  assert.match(untrusted.warnings.join('\n'), /pinned/);
  assert.match(
    (await page.getByTestId('plan-panel').textContent()) ?? '',
    /measured per layer but not trustworthy/,
  );
  assert.equal(await page.getByTestId('plan-apply').isEnabled(), true);
  await ui.session.screenshot('plan-panel-warnings');

  const result = await applyRecipe(saturated, untrusted.recipe, { refine: true });
  assert.equal(result.verdict.validated, false);
  await ui.session.postToWebview({ type: 'plan', view: { plan: untrusted, result } });
  const badge = page.getByTestId('plan-verdict-badge');
  await badge.filter({ hasText: 'Not validated' }).waitFor({ state: 'visible', timeout: 30_000 });
  const reasons = await page.getByTestId('plan-verdict-reasons').locator('li').allTextContents();
  assert.deepEqual(reasons, [...result.verdict.reasons]);
  assert.ok(reasons.some((reason) => /output 'score' is pinned near 1/.test(reason)));
  assert.match(
    (await page.locator('.ll-plan-outcome').textContent()) ?? '',
    /^Target met \(not validated\): kept saturated\.plan\.onnx/,
  );
  assert.equal(await page.getByText('Validated', { exact: true }).count(), 0);
  assert.equal(await page.getByTestId('plan-warnings').count(), 0, 'now among the reasons');
  await ui.session.screenshot('plan-panel-not-validated');
  assert.deepEqual(ui.session.problems, []);
});

test('a plan that cannot meet its target says why before Apply, and the applied result why it was missed', async () => {
  const { page } = ui.session;
  // 20× smaller: int4 on both matrices is the most the methods can do (about 7×).
  const beyond = await planModel(ui.modelPath, {
    target: { kind: 'ratio', value: 20 },
    measured: false,
  });
  assert.equal(beyond.feasible, false);
  await ui.session.postToWebview({ type: 'plan', view: { plan: beyond } });
  const limits = page.getByTestId('plan-limits');
  await limits.waitFor({ state: 'visible', timeout: 30_000 });
  assert.match((await limits.textContent()) ?? '', /Why the target cannot be met/);
  assert.deepEqual(await limits.locator('li').allTextContents(), [...beyond.limits]);

  const result = await applyRecipe(ui.modelPath, beyond.recipe, { refine: false });
  assert.equal(result.targetMet, false);
  await ui.session.postToWebview({ type: 'plan', view: { plan: beyond, result } });
  await page
    .getByTestId('plan-limits')
    .filter({ hasText: 'Why the target was not met' })
    .waitFor({ state: 'visible', timeout: 30_000 });
  assert.deepEqual(await page.getByTestId('plan-limits').locator('li').allTextContents(), [
    ...result.missedBecause,
  ]);
  assert.match(result.missedBecause[0]!, /over the \d+-byte limit/);
});

test('a GGUF plan of llama.cpp types shows the types, the conventions and a copyable llama-quantize command', async () => {
  const { page } = ui.session;
  const gguf = path.join(ui.folder, 'tiny.gguf');
  writeGgufLlm(gguf, { layers: 1, width: 256, ff: 512, vocab: 256, alignment: 32 });
  const typed = await planModel(gguf, { target: { kind: 'bpw', value: 5 }, measured: false });
  assert.match(typed.llamaQuantize ?? '', /^llama-quantize --output-tensor-type q6_k /);
  await ui.session.postToWebview({ type: 'plan', view: { plan: typed } });
  const panel = page.getByTestId('plan-panel');
  // The previous test's plan is still on screen: wait for this plan's own command block.
  await page.getByTestId('plan-llama-quantize').waitFor({ state: 'visible', timeout: 30_000 });
  assert.match((await panel.textContent()) ?? '', /5 bits per weight/);
  const labels = await panel.locator('.ll-plan-steps tbody tr td:nth-child(2)').allTextContents();
  assert.ok(
    labels.some((label) => label.startsWith('Q6_K (output matrix: llama.cpp keeps it at Q6_K')),
    labels.join('|'),
  );
  assert.ok(labels.includes('F32 (vector: kept as stored)'), labels.join('|'));
  const block = page.getByTestId('plan-llama-quantize');
  assert.equal(await block.locator('pre').textContent(), typed.llamaQuantize);
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
  await page.getByTestId('plan-llama-quantize-copy').click();
  await page.getByText('Copied').waitFor({ timeout: 10_000 });
  assert.equal(
    await page.evaluate(() =>
      (
        globalThis as unknown as { navigator: { clipboard: { readText(): Promise<string> } } }
      ).navigator.clipboard.readText(),
    ),
    typed.llamaQuantize,
  );
  await ui.session.screenshot('plan-panel-gguf');
});
