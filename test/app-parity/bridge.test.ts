/**
 * The app-parity suite (suite.ts) through the real Mongrel2 and the real
 * `m2bridge --app` process: Express 5 and Koa 3 apps answer through the
 * bridge exactly as they do on node:http.
 */
import { startMongrel2 } from '../support/mongrel2.js';
import { startBridge } from '../support/m2bridge.js';
import { paritySuite, type ParityTarget } from './suite.js';

export const mongrel2Bridge: ParityTarget = {
  name: 'Mongrel2 + m2bridge --app',
  async start(appFile) {
    const peer = await startMongrel2({ rootRoute: true });
    try {
      const bridge = await startBridge([
        '--app', appFile, '--send-spec', peer.handler.sendSpec, '--recv-spec', peer.handler.recvSpec,
        '--upload-dir', peer.uploadDir, '--chroot', peer.home, '--log-level', 'info',
      ]);
      return {
        port: peer.httpPort,
        stop: async () => {
          await bridge.stop();
          await peer.stop();
        },
      };
    } catch (err) {
      await peer.stop();
      throw err;
    }
  },
};

paritySuite(mongrel2Bridge);
