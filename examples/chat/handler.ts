/**
 * The manual's chat demo (§5.7, examples/chat/) with websockets instead of
 * Flash: the handler serves the page itself (GET .../chat/ → static/),
 * accepts the websocket handshake, keeps presence (who is online, join and
 * leave broadcasts), and sends every chat line to everyone with ONE reply
 * to all their connection ids. A browser that goes away arrives as a close
 * frame and/or Mongrel2's disconnect notice; both make it leave. Pings are
 * answered; with `pingIntervalMs` the handler also pings everyone (one
 * reply again) so idle connections show traffic.
 *
 *   node --import tsx examples/chat/handler.ts [--send-spec tcp://127.0.0.1:9999] [--recv-spec tcp://127.0.0.1:9998]
 *   Mongrel2 route: '/chat/': Handler(send_spec='tcp://127.0.0.1:9999', ..., recv_spec='tcp://127.0.0.1:9998', recv_ident='')
 *   then open http://localhost:6767/chat/ in two browsers.
 */
import { readFileSync } from 'node:fs';
import { createLogger, type Connection, type Request } from '../../src/handler/index.js';
import { Opcode, parseClosePayload, isSendableCloseCode, buildCloseFrame, type HttpRequest, type WebSocketMessage } from '../../src/protocol/index.js';
import { SAMPLE, commandLine, intFlag, isMain, runUntilSignal, serve, type Demo, type DemoOptions } from '../support/demo.js';
import { Room, parseClientMessage, type Outgoing } from './room.js';

export interface ChatOptions extends DemoOptions {
  /** Ping every member this often (0 = never, the default). */
  pingIntervalMs?: number;
}

export interface ChatDemo extends Demo {
  readonly room: Room;
}

const STATIC: Record<string, { file: string; type: string }> = {
  '': { file: 'index.html', type: 'text/html; charset=utf-8' },
  'index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  'chat.js': { file: 'chat.js', type: 'text/javascript; charset=utf-8' },
  'chat.css': { file: 'chat.css', type: 'text/css; charset=utf-8' },
};

/** The page's files, read once at start. */
function loadStatic(): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const { file } of Object.values(STATIC)) files.set(file, readFileSync(new URL(`./static/${file}`, import.meta.url)));
  return files;
}

export function start(options: ChatOptions): ChatDemo {
  const log = options.logger ?? createLogger({ name: 'chat' });
  const files = loadStatic();
  const room = new Room();
  let sender = '';
  let pinger: NodeJS.Timeout | undefined;

  const send = (conn: Connection, out: Outgoing[]): void => {
    for (const { to, message } of out) void conn.deliverWebsocket(sender, to, JSON.stringify(message));
  };

  const page = (req: HttpRequest, conn: Connection): void => {
    const name = req.path.slice(req.path.lastIndexOf('/') + 1);
    const entry = Object.hasOwn(STATIC, name) ? STATIC[name] : undefined;
    if (entry === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) {
      void conn.replyHttp(req, 'not found\n', { status: 404, headers: { 'Content-Type': 'text/plain' } });
      return;
    }
    void conn.replyHttp(req, files.get(entry.file)!, { headers: { 'Content-Type': entry.type, 'Cache-Control': 'no-store' } });
  };

  const frame = (req: WebSocketMessage, conn: Connection): void => {
    switch (req.opcode) {
      case Opcode.Text: {
        const msg = parseClientMessage(req.body.toString('utf8'));
        if ('error' in msg) send(conn, [{ to: [req.connId], message: { type: 'error', message: msg.error } }]);
        else if (msg.type === 'join') {
          const out = room.join(req.connId, msg.nick);
          if (out[0]?.message.type === 'welcome') log.info({ connId: req.connId, nick: msg.nick }, 'joined');
          send(conn, out);
        } else send(conn, room.say(req.connId, msg.text));
        return;
      }
      case Opcode.Ping:
        void conn.replyWebsocket(req, req.body, { opcode: Opcode.Pong });
        return;
      case Opcode.Close: {
        // Answer the close handshake, then the kill message.
        let code: number | undefined;
        try {
          code = parseClosePayload(req.body).code;
        } catch {
          code = undefined;
        }
        const answer = code !== undefined && isSendableCloseCode(code) ? buildCloseFrame(code) : buildCloseFrame();
        void conn.reply(req, answer).then(() => conn.close(req));
        send(conn, room.leave(req.connId));
        return;
      }
      case Opcode.Pong:
        return;
      default:
        send(conn, [{ to: [req.connId], message: { type: 'error', message: 'only text frames' } }]);
    }
  };

  const demo = serve(
    { ...options, logger: log },
    (req: Request, conn: Connection) => {
      sender = req.sender;
      if (req.kind === 'http') page(req, conn);
      else if (req.kind === 'websocket-handshake') void conn.acceptWebsocket(req);
      else if (req.kind === 'websocket') frame(req, conn);
    },
    () => clearInterval(pinger),
  );
  demo.connection.on('disconnect', (n) => {
    log.debug({ connId: n.connId }, 'disconnected');
    send(demo.connection, room.leave(n.connId));
  });
  if (options.pingIntervalMs) {
    pinger = setInterval(() => {
      const ids = room.members();
      if (ids.length > 0) void demo.connection.deliverWebsocket(sender, ids, 'ping', { opcode: Opcode.Ping });
    }, options.pingIntervalMs);
    pinger.unref();
  }
  return { ...demo, room };
}

if (isMain(import.meta.url)) {
  const { demo, flags } = commandLine('chat/handler.ts', SAMPLE.chat, {
    ping: { type: 'string', description: 'ping every member every N seconds (default 30, 0 = never)' },
  });
  const pingIntervalMs = intFlag('ping', flags.ping, 30, 0, 3600) * 1000;
  await runUntilSignal(start({ ...demo, pingIntervalMs }), `chat on ${demo.sendSpec} / ${demo.recvSpec}: open http://localhost:6767/chat/ in two browsers`);
}
