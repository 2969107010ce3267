#!/usr/bin/env node
import { runTs } from './run-ts.js';

await runTs('src/cli/m2sh.ts');
