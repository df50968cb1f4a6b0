/**
 * Environment variables the server process starts with, beside the extension host's own.
 * Kept apart from the client (no `vscode` import) so that tests and benches start the
 * server exactly as the extension does.
 */
export const SERVER_ENVIRONMENT: Readonly<Record<string, string>> = {
  // glibc serves a large block from its heap, not from a mapping of its own, once a block
  // that large was freed (its mmap threshold rises up to 32 MB), and a heap returns memory
  // only from its top: the many short-lived buffers of a spectrum's products stayed
  // resident. A fixed threshold gives every block of 256 KiB or more back when freed: the
  // server's peak over the 'fast' spectra of two Llama-7B layers went from 295 to 225 MB.
  // Other C libraries ignore the variable.
  MALLOC_MMAP_THRESHOLD_: String(256 * 1024),
};
