// Preload for `node --import .../bench/lib/cpu-profile.mjs` (plain JS: it runs
// before tsx is registered). Starts the V8 CPU profiler in this process and
// writes M2B_CPU_PROFILE_DIR/<pid>.cpuprofile when the process exits.
// With M2B_HEAP_PROFILE=1 it also samples allocations, short-lived ones
// included (what the scavenger pays for), into <pid>.heapprofile.
// bench/bridge-fpm.ts passes it to the bridge through NODE_OPTIONS when PROFILE
// is set (--cpu-prof itself is not allowed in NODE_OPTIONS).
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.M2B_CPU_PROFILE_DIR;
if (dir) {
  const heap = process.env.M2B_HEAP_PROFILE === '1';
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 200 });
  session.post('Profiler.start');
  if (heap) {
    session.post('HeapProfiler.enable');
    session.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }
  process.on('exit', () => {
    // in-thread inspector sessions answer synchronously, so this works in 'exit'
    session.post('Profiler.stop', (err, res) => {
      if (!err && res?.profile) writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
    if (heap) {
      session.post('HeapProfiler.stopSampling', (err, res) => {
        if (!err && res?.profile) writeFileSync(join(dir, `${process.pid}.heapprofile`), JSON.stringify(res.profile));
      });
    }
  });
}
