/**
 * `npm start`: the bundled server core on http://127.0.0.1:6767 (PORT to
 * change it) from a built-in config, with the manual's demos as handlers,
 * an Express and a Koa app through the bridge, and PHP-FPM through the
 * bridge when php-fpm is installed. Prints what is where; Ctrl-C stops
 * everything and removes its runtime folder.
 *
 * The config goes the whole way a real deployment does: m2sh .conf text →
 * config.sqlite (our m2sh loader) → loadConfig → runServer.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { loadConfigFile } from '../src/config/load.js';
import { loadConfig } from '../src/config/read.js';
import { createLogger } from '../src/handler/logger.js';
import { Connection } from '../src/handler/connection.js';
import { Bridge } from '../src/bridge/bridge.js';
import { FastCgiClient, parseFastCgiAddress } from '../src/fastcgi/client.js';
import { FastCgiBackend } from '../adapters/fastcgi.js';
import { mount, type Mounted } from '../adapters/mount.js';
import { runServer } from '../src/server/process/run.js';
import { start as handlertest } from './handlertest.js';
import { start as upload } from './upload.js';
import { start as chat } from './chat/handler.js';
import { start as mp3stream } from './mp3stream/handler.js';
import { start as broadcast } from './broadcast.js';
import expressApp from './express/app.js';
import koaApp from './koa/app.js';
import { findPhpFpm, startPhpFpm, type PhpFpm } from './start/php-fpm.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const port = Number(process.env.PORT ?? 6767);
const UUID = 'f400bf85-4538-4f7a-8908-67e313d515c2';
const log = createLogger({ name: 'start', level: process.env.LOG_LEVEL === 'debug' || process.env.LOG_LEVEL === 'info' ? process.env.LOG_LEVEL : 'warn' });

const home = mkdtempSync(path.join(os.tmpdir(), 'm2bridge-start-'));
for (const d of ['logs', 'run', 'tmp', 'public']) mkdirSync(path.join(home, d));
copyFileSync(path.join(here, 'start', 'index.html'), path.join(home, 'public', 'index.html'));

const phpBin = findPhpFpm();
const NAMES = ['handlertest', 'upload', 'chat', 'mp3stream', 'broadcast', 'express', 'koa', ...(phpBin ? ['php'] : [])] as const;
type Name = (typeof NAMES)[number];
/** ipc:// sockets in our folder: no port to collide with. */
const spec = (name: Name, dir: 'send' | 'recv'): string => `ipc://${home}/run/${name}-${dir}`;
const handler = (name: Name, n: number): string =>
  `${name} = Handler(send_spec='${spec(name, 'send')}', send_ident='00000000-0000-4000-8000-${String(n).padStart(12, '0')}', recv_spec='${spec(name, 'recv')}', recv_ident='')`;
const ROUTES: Record<Name, string> = {
  handlertest: '/handlertest',
  upload: '/upload',
  chat: '/chat/',
  mp3stream: '/mp3stream',
  broadcast: '/broadcast/',
  express: '/express',
  koa: '/koa',
  php: '/php/',
};

const conf = path.join(home, 'mongrel2.conf');
const confText = `${NAMES.map((n, i) => handler(n, i + 1)).join('\n')}
main = Server(uuid="${UUID}", name="demos", chroot="${home}", bind_addr="127.0.0.1", port=${port},
  access_log="/logs/access.log", error_log="/logs/error.log", pid_file="/run/mongrel2.pid", default_host="localhost",
  hosts=[Host(name="localhost", routes={
    '/': Dir(base="public/", index_file="index.html", default_ctype="text/plain"),
    ${NAMES.map((n) => `'${ROUTES[n]}': ${n}`).join(',\n    ')}
  })])
servers = [main]
settings = {"limits.content_length": 20480, "upload.temp_store": "/tmp/upload.XXXXXX", "server.daemonize": 0}
`;
writeFileSync(conf, confText);
const db = path.join(home, 'config.sqlite');
loadConfigFile(conf, db);
const running = await runServer(loadConfig(db, UUID), { cwd: home });

const specs = (name: Name): { sendSpec: string; recvSpec: string; logger: typeof log } => ({ sendSpec: spec(name, 'send'), recvSpec: spec(name, 'recv'), logger: log });
const demos = [
  handlertest(specs('handlertest')),
  upload({ ...specs('upload'), uploadDir: path.join(home, 'tmp'), chroot: home }),
  chat(specs('chat')),
  mp3stream(specs('mp3stream')),
  broadcast(specs('broadcast')),
];

/** An app answering under a route prefix sees paths without it. */
function underPrefix(prefix: string, listener: (req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    req.url = req.url?.startsWith(prefix) ? req.url.slice(prefix.length) || '/' : req.url;
    if (!req.url?.startsWith('/')) req.url = `/${req.url ?? ''}`;
    listener(req, res);
  };
}
const mounted: Mounted[] = [
  mount(express().use('/express', expressApp), specs('express')),
  mount(underPrefix('/koa', koaApp.callback()), specs('koa')),
];

let php: PhpFpm | undefined;
let phpBridge: Bridge | undefined;
if (phpBin) {
  try {
    php = await startPhpFpm(phpBin, home);
    const client = new FastCgiClient({ address: parseFastCgiAddress(php.address), logger: log });
    const connection = new Connection({ ...specs('php') });
    // SCRIPT_FILENAME = root + path: /php/index.php is examples/php/index.php.
    phpBridge = new Bridge({ connection, backend: new FastCgiBackend({ client, root: here, index: 'index.php', logger: log }), logger: log });
    void phpBridge.run();
  } catch (err) {
    process.stderr.write(`PHP routes are off: ${(err as Error).message}\n`);
  }
}

await Promise.all([...demos.map((d) => d.ready()), ...mounted.map((m) => m.ready())]);
const base = `http://127.0.0.1:${running.address.port}`;
process.stdout.write(
  [
    `m2bridge: the bundled server core (pid ${process.pid}) on ${base}`,
    `  ${base}/                   a Dir route (public/index.html)`,
    `  ${base}/handlertest        request dump (TypeScript handler)`,
    `  ${base}/chat/              websocket chat: open it in two tabs`,
    `  ${base}/mp3stream          ICY stream (try: curl -s -H 'Icy-MetaData: 1' ${base}/mp3stream | head -c 20000 | xxd | head)`,
    `  ${base}/broadcast/         long-poll; curl -d hi ${base}/broadcast/send answers every waiting client`,
    `  curl -T FILE ${base}/upload  async upload, answered with an md5`,
    `  ${base}/express/           Express 5 through the bridge`,
    `  ${base}/koa/?name=you      Koa 3 through the bridge`,
    php ? `  ${base}/php/               PHP-FPM through the bridge` : '  (PHP routes: install php-fpm — apt-get install php-fpm — and run npm start again)',
    `Runtime folder ${home} (config, logs, control socket). Ctrl-C stops everything.`,
    '',
  ].join('\n'),
);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await Promise.allSettled([...demos.map((d) => d.stop()), ...mounted.map((m) => m.close(2000)), phpBridge?.drain(2000)]);
  await php?.stop();
  await running.stop();
  rmSync(home, { recursive: true, force: true });
  process.exit(0);
}
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
