/**
 * Default values of the VS Code theme variables (--vscode-*) that media/layerlens.css uses,
 * for pages shown outside VS Code: the webview tests serve them as a stylesheet, and the
 * HTML report (layerlens report) inlines the light ones, and the dark ones under
 * prefers-color-scheme: dark.
 */

/** A plausible subset of VS Code's Dark Modern theme colours (VS Code injects the real ones). */
export const DARK_MODERN_THEME: Readonly<Record<string, string>> = {
  'font-family': "system-ui, 'Ubuntu', 'Droid Sans', sans-serif",
  'font-size': '13px',
  'font-weight': 'normal',
  'editor-font-family': "'Droid Sans Mono', 'monospace', monospace",
  foreground: '#cccccc',
  'editor-background': '#1f1f1f',
  'editor-foreground': '#cccccc',
  descriptionForeground: '#9d9d9d',
  errorForeground: '#f85149',
  focusBorder: '#0078d4',
  'textLink-foreground': '#4daafc',
  'panel-border': '#2b2b2b',
  'widget-border': '#313131',
  'sideBar-background': '#181818',
  'editorWidget-background': '#202020',
  'badge-background': '#616161',
  'badge-foreground': '#f8f8f8',
  'button-background': '#0078d4',
  'button-foreground': '#ffffff',
  'button-hoverBackground': '#026ec1',
  'button-border': '#ffffff12',
  'button-secondaryBackground': '#313131',
  'button-secondaryForeground': '#cccccc',
  'button-secondaryHoverBackground': '#3c3c3c',
  'input-background': '#313131',
  'input-foreground': '#cccccc',
  'input-border': '#3c3c3c',
  'input-placeholderForeground': '#989898',
  'list-activeSelectionBackground': '#04395e',
  'list-activeSelectionForeground': '#ffffff',
  'list-inactiveSelectionBackground': '#37373d',
  'list-hoverBackground': '#2a2d2e',
  'list-focusOutline': '#0078d4',
  'progressBar-background': '#0078d4',
  'charts-blue': '#3794ff',
  'charts-green': '#89d185',
  'charts-orange': '#d18616',
  'charts-purple': '#b180d7',
  'charts-red': '#f14c4c',
  'charts-yellow': '#cca700',
  'editorWarning-foreground': '#cca700',
  'inputValidation-errorBackground': '#5a1d1d',
  'inputValidation-errorBorder': '#be1100',
  'inputValidation-warningBackground': '#352a05',
  'symbolIcon-classForeground': '#ee9d28',
};

/** The same names in VS Code's Light Modern theme. */
export const LIGHT_MODERN_THEME: Readonly<Record<string, string>> = {
  ...DARK_MODERN_THEME,
  foreground: '#3b3b3b',
  'editor-background': '#ffffff',
  'editor-foreground': '#3b3b3b',
  descriptionForeground: '#3b3b3b',
  errorForeground: '#f85149',
  focusBorder: '#005fb8',
  'textLink-foreground': '#005fb8',
  'panel-border': '#e5e5e5',
  'widget-border': '#e5e5e5',
  'sideBar-background': '#f8f8f8',
  'editorWidget-background': '#f8f8f8',
  'badge-background': '#cccccc',
  'badge-foreground': '#3b3b3b',
  'button-background': '#005fb8',
  'button-hoverBackground': '#0258a8',
  'button-border': '#0000001a',
  'button-secondaryBackground': '#e5e5e5',
  'button-secondaryForeground': '#3b3b3b',
  'button-secondaryHoverBackground': '#cccccc',
  'input-background': '#ffffff',
  'input-foreground': '#3b3b3b',
  'input-border': '#cecece',
  'input-placeholderForeground': '#767676',
  'list-activeSelectionBackground': '#e8e8e8',
  'list-activeSelectionForeground': '#000000',
  'list-inactiveSelectionBackground': '#e4e6f1',
  'list-hoverBackground': '#f2f2f2',
  'charts-foreground': '#616161',
  'inputValidation-errorBackground': '#f2dede',
  'inputValidation-errorBorder': '#be1100',
  'inputValidation-warningBackground': '#f6f5d2',
};

export type Theme = 'dark' | 'light';

/** The theme's variables as CSS declarations, one a line. */
export function themeDeclarations(theme: Theme): string {
  const colours = theme === 'light' ? LIGHT_MODERN_THEME : DARK_MODERN_THEME;
  return Object.entries(colours)
    .map(([name, value]) => `  --vscode-${name}: ${value};`)
    .join('\n');
}

export function themeStylesheet(theme: Theme = 'dark'): string {
  return `:root {\n${themeDeclarations(theme)}\n}\n`;
}
