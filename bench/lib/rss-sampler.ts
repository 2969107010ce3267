/**
 * Samples a process's VmRSS every few ms (bench/lib/proc.ts memOf) and keeps
 * the peak seen; VmHWM (the kernel's own peak) is read at the end too, so a
 * spike between two samples is not missed.
 */
import { memOf } from './proc.js';

export interface RssPeak {
  /** VmRSS when sampling started, KiB. */
  startKiB: number | null;
  /** Highest VmRSS sampled, KiB. */
  maxKiB: number | null;
  /** VmHWM at the end (peak since the process started), KiB. */
  hwmKiB: number | null;
  /** VmRSS at the end, KiB. */
  endKiB: number | null;
  samples: number;
}

export function sampleRss(pid: number, everyMs = 50): { stop(): RssPeak } {
  const start = memOf(pid)?.rssKiB ?? null;
  let max = start;
  let samples = 0;
  const timer = setInterval(() => {
    const m = memOf(pid);
    if (!m) return;
    samples++;
    if (max === null || m.rssKiB > max) max = m.rssKiB;
  }, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      const m = memOf(pid);
      return { startKiB: start, maxKiB: max, hwmKiB: m?.hwmKiB ?? null, endKiB: m?.rssKiB ?? null, samples };
    },
  };
}
