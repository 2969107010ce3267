/**
 * Markdown tables for a CPU profile summary (bench/lib/profile-top.ts): the
 * top self-time functions with their TS file:line, then self time per file.
 */
import type { ProfileSummary } from './profile-top.js';
import { fmt } from './report.js';

export function profileTables(hot: ProfileSummary): string[] {
  const L: string[] = ['| # | function | where (TS source) | self % | self ms |', '|---:|---|---|---:|---:|'];
  hot.functions.forEach((h, i) => L.push(`| ${i + 1} | \`${h.fn}\` | ${h.where} | ${fmt(h.pct, 1)} | ${fmt(h.selfMs)} |`));
  L.push('', 'Self time per file:', '', '| file | self % | self ms |', '|---|---:|---:|');
  for (const h of hot.files) L.push(`| ${h.where} | ${fmt(h.pct, 1)} | ${fmt(h.selfMs)} |`);
  return L;
}
