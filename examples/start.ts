/**
 * `npm start`: the real Mongrel2 (Debian mongrel2-core) on
 * http://127.0.0.1:6767 with the TypeScript hello handler behind it, until
 * Ctrl-C. The bundled server core replaces the real one once it lands.
 */
import { existsSync } from 'node:fs';
import { Connection } from '../src/handler/index.js';
import { MONGREL2_BIN, startMongrel2 } from '../test/support/mongrel2.js';

const port = Number(process.env.PORT ?? 6767);

if (!existsSync(MONGREL2_BIN)) {
  process.stderr.write('npm start needs the real Mongrel2 for now: apt-get install mongrel2-core\n');
  process.exit(1);
}

const peer = await startMongrel2({ httpPort: port });
const conn = new Connection({ sendSpec: peer.handler.sendSpec, recvSpec: peer.handler.recvSpec, uploads: { dir: peer.uploadDir, root: peer.home } });
await conn.ready();

process.stdout.write(
  [
    `Mongrel2 (pid ${peer.pid}) on ${peer.baseUrl}, runtime folder ${peer.home}`,
    `  ${peer.baseUrl}/handler/anything   TypeScript handler : request dump`,
    `  ${peer.baseUrl}/static/hello.txt  Mongrel2 Dir route`,
    'Ctrl-C stops both.',
    '',
  ].join('\n'),
);

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await conn.shutdown();
  await peer.stop();
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());

for await (const req of conn) {
  if (req.kind !== 'http') continue;
  const dump = { method: req.method, path: req.path, headers: req.headers, body: req.body.toString('utf8') };
  void conn.replyHttp(req, JSON.stringify(dump, null, 2) + '\n', { headers: { 'Content-Type': 'application/json' } });
}
