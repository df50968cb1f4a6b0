/** Entry point of the LayerLens webview: wires the VS Code API, the request channel and the app. */
import { ModelApi } from './platform/api';
import { App } from './app';
import { PlanSlot } from './reports/planPanel';
import { ViewStateStore, type ViewState } from './viewState';
import { getVsCodeApi, onHostMessage } from './platform/vscodeApi';

const vscode = getVsCodeApi<ViewState>();
const api = new ModelApi(vscode);
const root = document.getElementById('app');
if (!root) throw new Error('LayerLens webview: the page has no #app element');
const app = new App(root, api, new ViewStateStore(vscode));
const plan = new PlanSlot(root, (action) => vscode.postMessage({ type: 'planAction', action }));

onHostMessage((message) => {
  if (api.handle(message)) return;
  if (message.type === 'reload') app.reload(message.reason);
  if (message.type === 'compressionReport') app.showReport(message.report);
  if (message.type === 'reveal' && message.compareWith !== undefined)
    app.compareWith(message.compareWith);
  if (message.type === 'reveal' && message.tensorName !== undefined)
    app.reveal(message.tensorName, message.inGraph === true);
  if (message.type === 'plan') {
    plan.show(message.view);
    app.showPlan(message.view);
  }
});
vscode.postMessage({ type: 'ready' });
app.start();
