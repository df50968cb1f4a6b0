// Types of scripts/package-vsix.mjs for the TypeScript tests that call it.
export declare const TARGETS: {
  readonly 'linux-x64': string;
  readonly 'linux-arm64': string;
  readonly 'darwin-arm64': string;
  readonly 'win32-x64': string;
  readonly 'win32-arm64': string;
};
export type Target = keyof typeof TARGETS;
export declare function hostTarget(): Target;
export declare function vsixPath(target?: Target): string;
export declare function isFresh(target: Target): boolean;
export declare function listZipEntries(
  file: string,
): { name: string; size: number; compressedSize: number }[];
export declare function checkVsixEntries(names: readonly string[], target: Target): string[];
export declare function packageVsix(options?: {
  log?: (line: string) => void;
  build?: boolean;
  target?: Target;
}): { vsix: string; bytes: number; entries: { name: string; size: number }[] };
export declare function ensureHostVsix(options?: { log?: (line: string) => void }): string;
