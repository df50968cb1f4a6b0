/**
 * Environment variables the server process starts with, beside the extension host's own.
 * Kept apart from the client (no `vscode` import) so that tests and benches start the
 * server exactly as the extension does.
 */
export const SERVER_ENVIRONMENT: Readonly<Record<string, string>> = {
  // glibc serves a large block from its heap, not from a mapping of its own, once a block
  // that large was freed (its mmap threshold rises up to 32 MB), and a heap returns memory
  // only from its top: the many short-lived buffers of a spectrum's products stayed
  // resident. A fixed threshold gives every block of 1 MiB or more back when freed: the
  // server's peak over the 'fast' spectra of two Llama-7B layers went from 282-296 to
  // 239-242 MB, for about 4% more CPU in float32 statistics. 256 KiB gave 225 MB but mapped
  // the statistics' 512 KiB pattern tables anew for every job (bf16: 15-35% more CPU).
  // Other C libraries ignore the variable.
  MALLOC_MMAP_THRESHOLD_: String(1024 * 1024),
};
