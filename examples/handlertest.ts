/**
 * The manual's first handler (§5.4, examples/http_0mq/http.py): answers
 * every request with a dump of what Mongrel2 sent, and kills the
 * connection when the client sends a `killme` header.
 *
 *   node --import tsx examples/handlertest.ts [--send-spec tcp://127.0.0.1:9997] [--recv-spec tcp://127.0.0.1:9996]
 *   curl -d 'hello' http://localhost:6767/handlertest/some/path?x=1
 */
import { createLogger, type Connection, type Request } from '../src/handler/index.js';
import type { HttpRequest } from '../src/protocol/index.js';
import { SAMPLE, commandLine, isMain, runUntilSignal, serve, type Demo, type DemoOptions } from './support/demo.js';

/** The dump, one field a line; headers and body JSON-quoted so any byte is readable. */
export function dumpRequest(req: HttpRequest): string {
  return [
    `SENDER: ${req.sender}`,
    `IDENT: ${req.connId}`,
    `PATH: ${req.path}`,
    `METHOD: ${req.method}`,
    `HEADERS: ${JSON.stringify(req.headers)}`,
    `BODY: ${JSON.stringify(req.body.toString('utf8'))}`,
    '',
  ].join('\n');
}

export function start(options: DemoOptions): Demo {
  const log = options.logger ?? createLogger({ name: 'handlertest' });
  const demo = serve({ ...options, logger: log }, (req: Request, conn: Connection) => {
    if (req.kind !== 'http') return;
    if (req.headers.killme !== undefined) {
      log.info({ connId: req.connId }, 'they want to be killed');
      void conn.close(req);
      return;
    }
    void conn.replyHttp(req, dumpRequest(req), { headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
  });
  demo.connection.on('disconnect', (n) => log.info({ connId: n.connId }, 'disconnect'));
  return demo;
}

if (isMain(import.meta.url)) {
  const { demo } = commandLine('handlertest.ts', SAMPLE.handlertest);
  await runUntilSignal(start(demo), `handlertest on ${demo.sendSpec} / ${demo.recvSpec}: try curl http://localhost:6767/handlertest`);
}
