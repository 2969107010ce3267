/**
 * N:M broadcast: long-poll clients wait on GET, and one POST answers all of
 * them with a single reply per 128 waiting clients (Mongrel2's
 * `limits.handler_targets`): the message is sent to Mongrel2 once, and
 * Mongrel2 copies it to every connection.
 *
 *   node --import tsx examples/broadcast.ts      (route it like the handler test: '/handlertest')
 *   curl http://localhost:6767/handlertest/wait &   (as many as you like)
 *   curl -d 'hello everyone' http://localhost:6767/handlertest/send
 */
import { createLogger, type Connection, type Request } from '../src/handler/index.js';
import { groupTargets, shouldClose, type HttpRequest } from '../src/protocol/index.js';
import { SAMPLE, commandLine, isMain, runUntilSignal, serve, type Demo, type DemoOptions } from './support/demo.js';

export interface BroadcastOptions extends DemoOptions {
  /** Called whenever the number of waiting clients changes. */
  onWaiting?: (count: number) => void;
}

export interface BroadcastDemo extends Demo {
  /** Connection ids of the clients waiting for the next message. */
  waiting(): number[];
}

export function start(options: BroadcastOptions): BroadcastDemo {
  const log = options.logger ?? createLogger({ name: 'broadcast' });
  // Waiting clients, and whether each asked for the connection to close after its answer.
  const waiting = new Map<number, boolean>();
  const changed = (): void => options.onWaiting?.(waiting.size);

  const send = async (req: HttpRequest, conn: Connection): Promise<void> => {
    const ids = [...waiting.keys()];
    const closing = ids.filter((id) => waiting.get(id));
    waiting.clear();
    changed();
    if (ids.length > 0) {
      const body = req.body.length > 0 ? req.body : Buffer.from('(empty message)\n');
      await conn.deliverHttp(req.sender, ids, body, { headers: { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' } });
      if (closing.length > 0) await conn.deliverClose(req.sender, closing);
    }
    const messages = groupTargets(ids).length;
    log.info({ clients: ids.length, messages }, 'broadcast');
    void conn.replyHttp(req, JSON.stringify({ clients: ids.length, messages }) + '\n', { headers: { 'Content-Type': 'application/json' } });
  };

  const demo = serve({ ...options, logger: log }, (req: Request, conn: Connection) => {
    if (req.kind !== 'http') return;
    if (req.method === 'POST' && req.path.endsWith('/send')) return send(req, conn);
    if (req.method === 'GET') {
      waiting.set(req.connId, shouldClose(req));
      changed();
      return;
    }
    void conn.replyHttp(req, 'GET to wait, POST .../send to broadcast\n', { status: 405, headers: { Allow: 'GET, POST' } });
  });
  demo.connection.on('disconnect', (n) => {
    if (waiting.delete(n.connId)) changed();
  });
  return { ...demo, waiting: () => [...waiting.keys()] };
}

if (isMain(import.meta.url)) {
  const { demo } = commandLine('broadcast.ts', SAMPLE.handlertest);
  await runUntilSignal(start(demo), `broadcast on ${demo.sendSpec}: GET http://localhost:6767/handlertest/wait, POST .../send`);
}
