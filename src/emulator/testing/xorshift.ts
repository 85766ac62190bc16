/**
 * For tests: Marsaglia's xorshift32 ("Xorshift RNGs", 2003; shifts 13, 17, 5), a seeded
 * source of 32-bit values, so a fuzz run or a test file repeats exactly and a failure can
 * be replayed from its seed.
 */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** `n` bytes of xorshift32 from `seed`, one value's low byte each. */
export function xorshiftBytes(n: number, seed: number): Uint8Array {
  const next = xorshift32(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = next() & 0xff;
  return b;
}

/** `bytes` bytes (a multiple of 4) of xorshift32 from `seed`, each value little-endian. */
export function xorshiftWords(bytes: number, seed: number): Uint8Array {
  const next = xorshift32(seed);
  const b = new Uint8Array(bytes);
  const view = new DataView(b.buffer);
  for (let i = 0; i < bytes; i += 4) view.setUint32(i, next(), true);
  return b;
}
