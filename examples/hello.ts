/**
 * The smallest handler: answers every HTTP request with "Hello, World!".
 *   node --import tsx examples/hello.ts [sendSpec] [recvSpec]
 */
import { Connection } from '../src/handler/index.js';

const conn = new Connection({
  sendSpec: process.argv[2] ?? 'tcp://127.0.0.1:9997',
  recvSpec: process.argv[3] ?? 'tcp://127.0.0.1:9996',
});

const stop = (): void => void conn.shutdown();
process.once('SIGINT', stop);
process.once('SIGTERM', stop);

for await (const req of conn) {
  if (req.kind !== 'http') continue;
  void conn.replyHttp(req, 'Hello, World!', { headers: { 'Content-Type': 'text/plain' } });
}
