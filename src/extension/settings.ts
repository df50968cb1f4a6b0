/** Reads LayerLens settings from VS Code, typed by the shared schema. */
import * as vscode from 'vscode';
import { DEFAULT_SETTINGS, SETTINGS_SECTION, type LayerLensSettings } from '../shared/settings';

export function readSettings(scope?: vscode.ConfigurationScope): LayerLensSettings {
  const configuration = vscode.workspace.getConfiguration(SETTINGS_SECTION, scope);
  const settings = { ...DEFAULT_SETTINGS } as Record<keyof LayerLensSettings, unknown>;
  for (const key of Object.keys(DEFAULT_SETTINGS) as (keyof LayerLensSettings)[]) {
    const value = configuration.get(key);
    if (value !== undefined) settings[key] = value;
  }
  return settings as LayerLensSettings;
}
