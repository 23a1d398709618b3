import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

// A customer's React app that uses the *built* package (dist/, made by `npm run build`), as an
// app that installed it from npm would. tests/e2e/test_react.py serves the result.
export default defineConfig({
  root: here,
  base: './',
  plugins: [react()],
  resolve: {
    alias: { '@thinnest/embed-sdk': resolve(here, '../dist/index.js') },
  },
  build: {
    outDir: resolve(here, 'dist'),
    emptyOutDir: true,
  },
});
