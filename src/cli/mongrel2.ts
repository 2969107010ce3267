/**
 * `mongrel2 <config.sqlite> <server_uuid> [config_module]`: runs one server
 * from the config database (or from what a config module returns for the
 * first argument), like Mongrel2's binary. `server.daemonize` (default 1) detaches
 * it: the command returns once the server is listening, or fails with its
 * error.
 */
import { fork } from 'node:child_process';
import { loadConfigFromModule } from '../config/modules/module-source.js';
import { loadConfig } from '../config/read.js';
import type { Config } from '../config/types.js';
import { runServer } from '../server/process/run.js';

const USAGE = 'usage: mongrel2 <config.sqlite|module-arg> <server_uuid> [config_module]\n';
const DAEMON_ENV = 'M2BRIDGE_MONGREL2_DAEMON';

const args = process.argv.slice(2);
if (args.includes('-h') || args.includes('--help')) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (args.length !== 2 && args.length !== 3) fail(USAGE, 2);
const [source, uuid, module] = args as [string, string, string | undefined];

let config: Config;
try {
  config = module === undefined ? loadConfig(source, uuid) : await loadConfigFromModule(module, source, uuid);
} catch (err) {
  fail(`mongrel2: ${(err as Error).message}\n`, 1);
}

const daemonize = (config.settings.get('server.daemonize') ?? '1') !== '0';
if (daemonize && process.env[DAEMON_ENV] === undefined && typeof process.send !== 'function') {
  // Parent: start the detached server and report how its startup went.
  const child = fork(process.argv[1]!, args, { detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, [DAEMON_ENV]: '1' }, execArgv: process.execArgv });
  child.once('message', () => {
    child.disconnect();
    child.unref();
    process.exit(0);
  });
  child.once('exit', (code) => process.exit(code === 0 ? 1 : (code ?? 1)));
} else {
  try {
    const running = await runServer(config, { handleSignals: true });
    process.send?.('ready');
    if (process.connected) process.disconnect();
    await running.stopped;
    process.exit(0);
  } catch (err) {
    fail(`mongrel2: ${(err as Error).message}\n`, 1);
  }
}

function fail(text: string, code: number): never {
  process.stderr.write(text);
  process.exit(code);
}
