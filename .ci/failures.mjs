// Prints each failing test of a node --test TAP log with its diagnostics, so
// that the end of CI's output (often all that is kept) says what failed.
import { readFileSync } from 'node:fs';

const lines = readFileSync(process.argv[2], 'utf8').split('\n');
const out = [];
for (let i = 0; i < lines.length; i++) {
  if (!/^\s*not ok \d+ /.test(lines[i])) continue;
  out.push(lines[i]);
  // The YAML block that follows: "---" ... "...".
  if (/^\s*---\s*$/.test(lines[i + 1] ?? '')) {
    for (i++; i < lines.length; i++) {
      out.push(lines[i]);
      if (/^\s*\.\.\.\s*$/.test(lines[i])) break;
    }
  }
}
const MAX = 300;
console.log(`== failing tests (${out.filter((l) => /not ok/.test(l)).length} "not ok" lines) ==`);
console.log(out.slice(0, MAX).join('\n'));
if (out.length > MAX) console.log(`... ${out.length - MAX} more lines in the log above`);
