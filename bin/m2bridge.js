#!/usr/bin/env node
import { runTs } from './run-ts.js';

// --app may name a TypeScript module of the user's, and a --config file's app
// backends too; tsx is registered only then (it also turns on source maps).
const TS = /\.(ts|mts|cts|tsx)$/;
const argv = process.argv;
const userTs = argv.some((a, i) => {
  if (a === '--config' || a.startsWith('--config=')) return true;
  const app = a === '--app' ? argv[i + 1] : a.startsWith('--app=') ? a.slice('--app='.length) : undefined;
  return app !== undefined && TS.test(app);
});
await runTs('src/cli/m2bridge.ts', { tsx: userTs });
