/**
 * LayerLens: Plan Compression… — asks a target ("4x", "10 MB", "deviation 0.05") and, for
 * ONNX, whether to measure sensitivity; runs the planner in the server with a cancellable
 * notification and shows the plan in the model's editor. Its Apply button (or
 * `layerlens.applyPlan`) applies it: the kept file's report shows in the compression
 * report view, the attempts in the plan panel.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { verdictText } from '../shared/compress';
import { verdictLine } from '../shared/compressText';
import { formatBytes, formatSizeChange } from '../shared/format';
import { LspMethods, MODEL_ERROR_CODE, type ModelErrorData } from '../shared/lsp';
import type { ApplyPlanResult, Plan, PlanView } from '../shared/plan';
import { describePlanTarget, parsePlanTarget, planStatus } from '../shared/planTarget';
import type { LayerLensClient } from './client';
import { sampleInputsParams } from './sampleInputsStore';
import { isModelFile, modelFilters } from './modelFiles';
import { MODEL_EDITOR_VIEW_TYPE } from './editorViewTypes';
import { activeModelEditorUri, showCompressionReport, showPlanView } from './modelEditor';

/** The plan last shown for each model (by URI), applied by `layerlens.applyPlan`. */
const plans = new Map<string, Plan>();

function failureMessage(what: string, fileName: string, error: unknown): string {
  const { code, data, message } = (error ?? {}) as {
    code?: number;
    data?: ModelErrorData;
    message?: string;
  };
  if (code === MODEL_ERROR_CODE && data) {
    return `LayerLens could not ${what} ${fileName}: ${data.problem} (${data.file})`;
  }
  return `LayerLens could not ${what} ${fileName}: ${message ?? String(error)}`;
}

async function modelUri(target: unknown): Promise<vscode.Uri | undefined> {
  if (target instanceof vscode.Uri) return target;
  const active = activeModelEditorUri();
  if (active) return active;
  const editorUri = vscode.window.activeTextEditor?.document.uri;
  if (editorUri && isModelFile(editorUri, true)) return editorUri;
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    filters: modelFilters(true),
    openLabel: 'Plan',
    title: 'LayerLens: choose a model to plan the compression of',
  });
  return picked?.[0];
}

async function show(uri: vscode.Uri, view: PlanView): Promise<void> {
  if (!showPlanView(uri, view)) {
    await vscode.commands.executeCommand('vscode.openWith', uri, MODEL_EDITOR_VIEW_TYPE);
    showPlanView(uri, view);
  }
}

export async function planCommand(client: LayerLensClient, target?: unknown): Promise<void> {
  const uri = await modelUri(target);
  if (!uri) return;
  const fileName = path.basename(uri.fsPath);
  let summary;
  try {
    summary = await client.request(LspMethods.openModel, { uri: uri.toString() });
  } catch (error) {
    void vscode.window.showErrorMessage(failureMessage('plan', fileName, error));
    return;
  }
  // A format written with llama.cpp types is planned by bits per weight (or a size).
  const llamaTypes = summary.capabilities?.compress.includes('ggml') === true;
  const text = await vscode.window.showInputBox({
    title: `Plan the compression of ${fileName} (${formatBytes(summary.totalBytes)})`,
    prompt: llamaTypes
      ? 'Target: bits per weight ("4.5 bpw"), a size ("10 MB") or a ratio ("4x"); llama.cpp types per tensor'
      : 'Target: a ratio ("4x"), a size ("10 MB") or a largest output deviation ("deviation 0.05")',
    value: llamaTypes ? '4.5 bpw' : '4x',
    // Focus may come back to the model's webview just after the palette closes; the box
    // must not close with it.
    ignoreFocusOut: true,
    validateInput: (value) => {
      const parsed = parsePlanTarget(value);
      return typeof parsed === 'string' ? parsed : undefined;
    },
  });
  if (text === undefined) return;
  const planTarget = parsePlanTarget(text);
  if (typeof planTarget === 'string') return;
  let measured = false;
  // Measured sensitivity needs a model that runs (the server says so in its capabilities).
  if (summary.capabilities?.run) {
    const choice = await vscode.window.showQuickPick(
      [
        {
          label: 'Measured sensitivity',
          detail: 'Each layer compressed alone, the model run in onnxruntime on the sample inputs',
          measured: true,
        },
        {
          label: 'Data-free proxy',
          detail: 'Relative weight error of each method on each layer (instant)',
          measured: false,
        },
      ],
      {
        title: `Plan ${fileName}: ${describePlanTarget(planTarget)}`,
        placeHolder: 'Sensitivity',
        ignoreFocusOut: true,
      },
    );
    if (!choice) return;
    measured = choice.measured;
  }
  client.output.info(`Plan Compression… on ${uri.fsPath}: ${describePlanTarget(planTarget)}`);
  let plan: Plan;
  try {
    plan = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: `LayerLens: planning ${fileName} (${describePlanTarget(planTarget)})`,
        cancellable: true,
      },
      (_progress, token) =>
        client.request(
          LspMethods.plan,
          {
            uri: uri.toString(),
            request: { target: planTarget, measured },
            ...sampleInputsParams(uri),
          },
          token,
        ),
    );
  } catch (error) {
    client.output.warn(failureMessage('plan', fileName, error));
    void vscode.window.showErrorMessage(failureMessage('plan', fileName, error));
    return;
  }
  plans.set(uri.toString(), plan);
  await show(uri, { plan });
}

/** Apply the plan last shown for the model `target` (from the plan panel's Apply button). */
export async function applyPlanCommand(client: LayerLensClient, target?: unknown): Promise<void> {
  const uri = target instanceof vscode.Uri ? target : activeModelEditorUri();
  const plan = uri ? plans.get(uri.toString()) : undefined;
  if (!uri || !plan) {
    void vscode.window.showInformationMessage(
      'LayerLens: no plan to apply; run Plan Compression… first.',
    );
    return;
  }
  const fileName = path.basename(uri.fsPath);
  showPlanView(uri, { plan, applying: true });
  let result: ApplyPlanResult;
  try {
    result = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: `LayerLens: applying the plan to ${fileName}`,
        cancellable: true,
      },
      (_progress, token) =>
        client.request(
          LspMethods.applyPlan,
          { uri: uri.toString(), recipe: plan.recipe, refine: true, ...sampleInputsParams(uri) },
          token,
        ),
    );
  } catch (error) {
    const message = failureMessage('apply the plan to', fileName, error);
    client.output.warn(message);
    showPlanView(uri, { plan, error: message });
    void vscode.window.showErrorMessage(message);
    return;
  }
  showPlanView(uri, { plan, result });
  showCompressionReport(uri, result.report);
  client.output.info(
    `Applied a plan to ${fileName}: ${result.attempts.length} attempt(s), kept ${result.report.output}`,
  );
  const wrote = `Wrote ${path.basename(result.report.output)}: ${formatSizeChange(result.report.fileBytesBefore, result.report.fileBytesAfter)}, target ${describePlanTarget(plan.target)} ${planStatus({ plan, result }).text}`;
  client.output.info(`${fileName}: the kept file is ${verdictText(result.verdict)}`);
  for (const reason of result.missedBecause) client.output.info(`  ${reason}`);
  if (result.verdict.validated) void vscode.window.showInformationMessage(`${wrote}; validated.`);
  else void vscode.window.showWarningMessage(`${wrote}; ${verdictLine(result.verdict)}.`);
}
