/**
 * The upload handler of bench/core-static-proxy.ts, on our handler API
 * (src/handler Connection): ignores the x-mongrel2-upload-start message,
 * answers the -done message with 200 and the spooled file's size, and
 * deletes that file (the server leaves it to the handler, and 1 GB each time
 * adds up). Any other request gets a 400 saying it was not an upload.
 *
 *   node --import tsx bench/lib/upload-handler.ts SEND_SPEC RECV_SPEC HOME
 *
 * HOME is the server's chroot folder: upload paths are chroot-relative
 * (/tmp/upload.X → HOME/tmp/upload.X). Prints "ready" once set up; one line
 * per finished upload on stdout ("upload SIZE PATH"); stops on SIGTERM/SIGINT.
 */
import * as path from 'node:path';
import { Connection } from '../../src/handler/index.js';

const [sendSpec, recvSpec, home] = process.argv.slice(2);
if (!sendSpec || !recvSpec || !home) {
  process.stderr.write('usage: upload-handler.ts SEND_SPEC RECV_SPEC HOME\n');
  process.exit(2);
}

const conn = new Connection({ sendSpec, recvSpec, uploads: { dir: path.join(home, 'tmp'), root: home } });
const stop = (): void => void conn.shutdown();
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
process.stdout.write('ready\n');

const text = { 'Content-Type': 'text/plain' };
for await (const req of conn) {
  if (req.kind !== 'http') continue;
  if (req.upload?.mode === 'file' && req.upload.phase === 'start') continue;
  if (req.upload?.mode !== 'file') {
    void conn.replyHttp(req, `not a temp-file upload: ${req.method} ${req.path}\n`, { status: 400, headers: text });
    continue;
  }
  try {
    const file = await conn.openUpload(req);
    await file.remove();
    process.stdout.write(`upload ${file.size} ${file.path}\n`);
    void conn.replyHttp(req, `${file.size}\n`, { headers: text });
  } catch (err) {
    void conn.replyHttp(req, `upload failed: ${(err as Error).message}\n`, { status: 500, headers: text });
  }
}
