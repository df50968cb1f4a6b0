/**
 * Debian's Chromium, as the browser tests launch it. Playwright's own browser download
 * does not work on these machines; the flags keep Chromium off the (closed) network.
 */
export const CHROMIUM_EXECUTABLE = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
