/**
 * The top self-time functions of a V8 .cpuprofile (from `node --cpu-prof`),
 * with TypeScript file:line: modules under src/ and adapters/ that ran
 * through tsx are imported here with source maps enabled, and their
 * positions mapped back through module.findSourceMap (tsx's transform is
 * deterministic, so this process sees the same generated code).
 */
import * as fs from 'node:fs';
import { findSourceMap } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface HotSpot {
  fn: string;
  /** file:line (TS source when mapped; "(generated)" when not). */
  where: string;
  selfMs: number;
  /** Share of the busy samples (everything but (idle)). */
  pct: number;
}

/** Only these are safe to import for their source maps (libraries, no side effects). */
const MAPPABLE = /^(src|adapters)\/(?!cli\/)/;

async function locate(frame: CallFrame, root: string): Promise<string> {
  if (!frame.url) return frame.functionName.startsWith('(') ? '' : '(native)';
  const line = frame.lineNumber + 1;
  if (!frame.url.startsWith('file://')) return `${frame.url}:${line}`;
  const file = fileURLToPath(frame.url);
  const rel = path.relative(root, file);
  if (MAPPABLE.test(rel) && fs.existsSync(file)) {
    try {
      if (!findSourceMap(frame.url)) await import(frame.url);
      const entry = findSourceMap(frame.url)?.findEntry(frame.lineNumber, frame.columnNumber);
      if (entry && 'originalLine' in entry) return `${rel}:${entry.originalLine + 1}`;
    } catch {
      // fall through to the generated position
    }
  }
  return `${rel.startsWith('..') ? file : rel}:${line} (generated)`;
}

export interface ProfileSummary {
  /** The top functions by self time. */
  functions: HotSpot[];
  /** Self time summed per file (TS source when mapped), top first; `where` is the file. */
  files: HotSpot[];
}

/** Self time per frame in a V8 .cpuprofile, without (idle). */
function selfTimes(prof: CpuProfile): { frames: Array<{ frame: CallFrame; us: number }>; busy: number } {
  const byId = new Map(prof.nodes.map((node) => [node.id, node]));
  const self = new Map<string, { frame: CallFrame; us: number }>();
  let busy = 0;
  prof.samples.forEach((id, i) => {
    const frame = byId.get(id)?.callFrame;
    const us = prof.timeDeltas[i + 1] ?? 0;
    if (!frame || frame.functionName === '(idle)') return;
    busy += us;
    const key = `${frame.functionName}\0${frame.url}\0${frame.lineNumber}\0${frame.columnNumber}`;
    const e = self.get(key) ?? { frame, us: 0 };
    e.us += us;
    self.set(key, e);
  });
  return { frames: [...self.values()].sort((a, b) => b.us - a.us), busy };
}

export async function topSelf(profilePath: string, n: number, root: string): Promise<ProfileSummary> {
  process.setSourceMapsEnabled(true);
  const { frames, busy } = selfTimes(JSON.parse(fs.readFileSync(profilePath, 'utf8')) as CpuProfile);
  const pct = (us: number): number => (busy ? (100 * us) / busy : 0);
  const functions: HotSpot[] = [];
  const files = new Map<string, number>();
  for (const [i, t] of frames.entries()) {
    const where = await locate(t.frame, root);
    if (i < n) functions.push({ fn: t.frame.functionName || '(anonymous)', where, selfMs: t.us / 1000, pct: pct(t.us) });
    const file = where.replace(/:\d+( \(generated\))?$/, '') || t.frame.functionName;
    files.set(file, (files.get(file) ?? 0) + t.us);
  }
  const byFile = [...files].sort((a, b) => b[1] - a[1]).slice(0, n).map(([file, us]) => ({ fn: '', where: file, selfMs: us / 1000, pct: pct(us) }));
  return { functions, files: byFile };
}
