/**
 * The ceiling for bench/core-handler.ts: bare node:http answering every
 * request with the hello response (200, text/plain, "Hello World\n").
 *
 *   node --import tsx bench/servers/node-http.ts [PORT]
 *
 * Listens on 127.0.0.1 (PORT, default a free one) and prints "ready PORT".
 */
import http from 'node:http';

const BODY = Buffer.from('Hello World\n');
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': BODY.length });
  res.end(BODY);
});
server.listen({ host: '127.0.0.1', port: Number(process.argv[2] ?? 0) }, () => {
  const addr = server.address();
  process.stdout.write(`ready ${typeof addr === 'object' && addr ? addr.port : '?'}\n`);
});
const stop = (): void => void server.close(() => process.exit(0)).closeAllConnections();
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
