import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

/**
 * The page must be cross-origin isolated so guest RAM, video memory and the statistics
 * counters can live in SharedArrayBuffers shared with the machine's worker.
 */
const crossOriginIsolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  plugins: [react()],
  server: { headers: crossOriginIsolation, host: '127.0.0.1', port: 5173 },
  preview: { headers: crossOriginIsolation, host: '127.0.0.1', port: 4173 },
  worker: { format: 'es' },
  build: { target: 'es2022', sourcemap: true },
});
