/**
 * The app-parity suite (suite.ts) through OUR server core and the real
 * `m2bridge --app` process: Express 5 and Koa 3 apps answer through the
 * bundled core + bridge exactly as they do on node:http.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { startCore } from '../support/core.js';
import { startBridge } from '../support/m2bridge.js';
import { paritySuite, type ParityTarget } from './suite.js';

export const coreBridge: ParityTarget = {
  name: 'm2bridge core + m2bridge --app',
  async start(appFile) {
    // Bodies over limits.content_length become temp-file uploads, as with Mongrel2's interop config.
    const core = await startCore({ rootRoute: true, chroot: true, settings: { 'upload.temp_store': '/uploads/upload.XXXXXX' } });
    try {
      await mkdir(path.join(core.home, 'uploads'));
      const bridge = await startBridge([
        '--app', appFile, '--send-spec', core.handler.sendSpec, '--recv-spec', core.handler.recvSpec,
        '--upload-dir', path.join(core.home, 'uploads'), '--chroot', core.home, '--log-level', 'info',
      ]);
      return {
        port: core.httpPort,
        stop: async () => {
          await bridge.stop();
          await core.stop();
        },
      };
    } catch (err) {
      await core.stop();
      throw err;
    }
  },
};

paritySuite(coreBridge);
