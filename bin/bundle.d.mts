/** Bundle `entry` (relative to the repo root) with esbuild into .build/ and return the file URL to import. */
export function bundle(entry: string): Promise<string>;
