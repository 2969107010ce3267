/**
 * OUR server core (src/server) as its own process for the core benches.
 * Either builds a Config (src/config/types.ts) with the routes of
 * test/mongrel2/interop.conf.in that bench/core-handler.ts uses ('/handler' →
 * a JSON handler), or (--db/--uuid, bench/core-static-proxy.ts) reads the
 * config.sqlite that Debian's m2sh wrote for the real mongrel2, so both run
 * the very same rows. Runs it with runServer (src/server/process/run.ts),
 * i.e. with an access log, error log, pid file and control port under HOME,
 * as the real mongrel2 runs with its config.sqlite.
 *
 *   node --import tsx bench/servers/core.ts --home DIR --send-spec tcp://127.0.0.1:P1 \
 *        --recv-spec tcp://127.0.0.1:P2 [--send-ident UUID] [--port N] [--set key=value]...
 *   node --import tsx bench/servers/core.ts --home DIR --db HOME/config.sqlite --uuid UUID [--set key=value]...
 *
 * Prints "ready PORT" once listening; stops on SIGTERM/SIGINT (the CPU
 * profile of `node --cpu-prof` is written on that exit).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { Config } from '../../src/config/types.js';
import { loadConfig } from '../../src/config/read.js';
import { runServer } from '../../src/server/process/run.js';
import { handlerTarget, serverRow } from '../../test/support/config.js';

/** interop.conf.in's settings (what test/support/mongrel2.ts gives the real mongrel2). */
const INTEROP_SETTINGS: Record<string, string> = {
  'zeromq.threads': '1',
  'limits.content_length': '2048',
  'upload.temp_store': '/tmp/upload.XXXXXX',
  'download.flow_control': '0',
  'upload.stream': '0',
  'server.daemonize': '0',
};

const { values } = parseArgs({
  options: {
    home: { type: 'string' },
    'send-spec': { type: 'string' },
    'recv-spec': { type: 'string' },
    'send-ident': { type: 'string' },
    port: { type: 'string', default: '0' },
    db: { type: 'string' },
    uuid: { type: 'string' },
    set: { type: 'string', multiple: true, default: [] },
  },
});
const home = values.home;
const sendSpec = values['send-spec'];
const recvSpec = values['recv-spec'];
const fromDb = values.db !== undefined || values.uuid !== undefined;
if (!home || (fromDb ? !values.db || !values.uuid : !sendSpec || !recvSpec)) {
  process.stderr.write(
    'usage: core.ts --home DIR --send-spec SPEC --recv-spec SPEC [--send-ident UUID] [--port N] [--set key=value]...\n' +
      '       core.ts --home DIR --db CONFIG.sqlite --uuid UUID [--set key=value]...\n',
  );
  process.exit(2);
}
const dbConfig = fromDb ? loadConfig(values.db!, values.uuid!) : undefined;
const settings = new Map(dbConfig ? dbConfig.settings : Object.entries(INTEROP_SETTINGS));
for (const kv of values.set) {
  const eq = kv.indexOf('=');
  if (eq <= 0) {
    process.stderr.write(`core.ts: --set ${kv}: expected key=value\n`);
    process.exit(2);
  }
  settings.set(kv.slice(0, eq), kv.slice(eq + 1));
}
for (const dir of ['run', 'logs', 'tmp']) fs.mkdirSync(path.join(home, dir), { recursive: true });

/** interop.conf.in's '/handler' route alone, from the command line's specs. */
function interopConfig(sendSpec: string, recvSpec: string): Config {
  const handler = handlerTarget(1, { sendSpec, recvSpec, ...(values['send-ident'] ? { sendIdent: values['send-ident'] } : {}) });
  return {
    server: serverRow({
      name: 'm2bench',
      port: Number(values.port),
      hosts: [{ id: 1, name: 'localhost', matching: 'localhost', routes: [{ id: 1, path: '/handler', target: handler }] }],
    }),
    settings,
    mimetypes: new Map([['.txt', 'text/plain']]),
  };
}

const config: Config = dbConfig ? { ...dbConfig, settings } : interopConfig(sendSpec!, recvSpec!);

const running = await runServer(config, { cwd: home, handleSignals: true });
process.stdout.write(`ready ${running.address.port}\n`);
await running.stopped;
process.exit(0);
