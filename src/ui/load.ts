/**
 * Reading guest files with progress: a fetched image (from public/images) or a file the
 * user dropped or picked. Errors come out in plain words naming the file.
 */

export type Progress = (loaded: number) => void;

/** Fetch `url` into memory, reporting bytes received. */
export async function fetchBytes(url: string, name: string, onProgress: Progress): Promise<ArrayBuffer> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`Could not download ${name}: ${(e as Error).message}. Is the server still running?`, { cause: e });
  }
  if (!res.ok) {
    throw new Error(`Could not download ${name}: the server answered ${res.status} ${res.statusText}. Run 'npm run images' and reload the page.`);
  }
  if (!res.body) {
    const buf = await res.arrayBuffer();
    onProgress(buf.byteLength);
    return buf;
  }
  return readStream(res.body, onProgress);
}

/** Read a user's File into memory, reporting bytes read. */
export async function readFileBytes(file: File, onProgress: Progress): Promise<ArrayBuffer> {
  try {
    return await readStream(file.stream(), onProgress);
  } catch (e) {
    throw new Error(`Could not read ${file.name}: ${(e as Error).message}`, { cause: e });
  }
}

async function readStream(stream: ReadableStream<Uint8Array>, onProgress: Progress): Promise<ArrayBuffer> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress(loaded);
  }
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out.buffer;
}
