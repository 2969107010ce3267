/**
 * Hello-world handler on our handler API (src/handler Connection.replyHttp):
 * the same response as bench/handlers/hello.py (200, text/plain,
 * "Hello World\n", keep-alive as the request asks).
 *
 *   node --import tsx bench/handlers/hello.ts SEND_SPEC RECV_SPEC
 *
 * Prints "ready" once the sockets are set up; stops on SIGTERM/SIGINT.
 */
import { Connection } from '../../src/handler/index.js';

const [sendSpec, recvSpec] = process.argv.slice(2);
if (!sendSpec || !recvSpec) {
  process.stderr.write('usage: hello.ts SEND_SPEC RECV_SPEC\n');
  process.exit(2);
}

const BODY = 'Hello World\n';
const conn = new Connection({ sendSpec, recvSpec });
const stop = (): void => void conn.shutdown();
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
process.stdout.write('ready\n');

for await (const req of conn) {
  if (req.kind !== 'http') continue;
  void conn.replyHttp(req, BODY, { headers: { 'Content-Type': 'text/plain' } });
}
