#!/usr/bin/env node
import { runTs } from './run-ts.js';

// --app and --config may name TypeScript modules of the user's.
const userModules = process.argv.some((a) => a === '--app' || a === '--config' || a.startsWith('--app=') || a.startsWith('--config='));
await runTs('src/cli/m2bridge.ts', { tsx: userModules });
