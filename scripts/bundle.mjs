// Bundles the compiled CLI (dist/src/cli/main.js) into dist/bundle/cli/: ES modules, one chunk per
// command's lazy imports (esbuild code splitting), minified. A start then reads a handful of files
// instead of some hundred small modules of zod, yaml, commander and our own code: the ES module
// loader's per-file cost is most of what `validate` spent before its own work (README "Benchmark").
// bin/airflow-ha runs the bundle when it exists, else dist/src. Packages that load files or native
// code of their own at run time stay outside the bundle and are imported from node_modules.
// Usage: node scripts/bundle.mjs   (run by `npm run build`, after tsc)
import { rmSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

/**
 * zod's namespace exports `z` and `z.core` carry `locales`, its error messages in some fifty languages (over
 * half of zod's code), which a bundler cannot drop because `z` is used as a whole. airflow-ha
 * writes its own messages and never reads `z.locales`, so the bundle's copy exports English only.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]zod[\\/]v4[\\/](classic|core)[\\/]/.test(args.importer) ? { path: path.resolve(path.dirname(args.importer), '../locales/index.js'), namespace: 'zod-en' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-en' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(path.join(path.dirname(args.path), 'en.js'))};`,
      resolveDir: path.dirname(args.path),
    }));
  },
};

const outdir = 'dist/bundle/cli';
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: ['dist/src/cli/main.js'],
  outdir,
  bundle: true,
  splitting: true,
  minify: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // ssh2 loads optional native crypto; nunjucks reads its own files: both stay in node_modules.
  external: ['ssh2', 'cpu-features', 'nunjucks'],
  // CommonJS packages in an ES module bundle still call require() (esbuild "format: esm" docs).
  banner: { js: "import { createRequire as __ahRequire } from 'node:module'; const require = __ahRequire(import.meta.url);" },
  plugins: [zodEnglishOnly],
  logLevel: 'warning',
});
