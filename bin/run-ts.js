// Shared by the bin shims: load TypeScript sources through tsx (no build step).
import { register } from 'tsx/esm/api';

register();

/** Imports a TypeScript module by a path relative to the package root. */
export function runTs(relPath) {
  return import(new URL(`../${relPath}`, import.meta.url).href);
}
