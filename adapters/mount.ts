/**
 * `mount(app, { sendSpec, recvSpec })`: serve an Express or Koa app, a
 * `(req, res)` listener or an http.Server as a Mongrel2 handler from inside
 * an existing Node process.
 */
import { Connection, type ConnectionOptions } from '../src/handler/connection.js';
import { createLogger, type Logger } from '../src/handler/logger.js';
import { Bridge } from '../src/bridge/bridge.js';
import { AppBackend, AppLoadError, detectApp, type UpgradeListener } from './app.js';

export interface MountOptions extends Pick<ConnectionOptions, 'sendSpec' | 'recvSpec' | 'senderId' | 'uploads'> {
  logger?: Logger;
  /** Requests in flight before new ones get 503 (default 1024). */
  maxInflight?: number;
  /** Answer 504 when the app has not started a response within this time. */
  headTimeoutMs?: number;
  /** Websocket upgrades for an app that has no 'upgrade' listener of its own (e.g. ws's handleUpgrade next to an Express app). */
  onUpgrade?: UpgradeListener;
}

export interface Mounted {
  readonly connection: Connection;
  readonly bridge: Bridge;
  /** Resolves once Mongrel2 has subscribed to our replies. */
  ready(): Promise<void>;
  /** Stops taking requests, lets in-flight ones finish (up to `timeoutMs`), closes the sockets. */
  close(timeoutMs?: number): Promise<void>;
}

export function mount(app: unknown, options: MountOptions): Mounted {
  const handler = detectApp(app);
  if (!handler) throw new AppLoadError('mount(): expected an Express app, a Koa app, a (req, res) listener or an http.Server');
  const logger = options.logger ?? createLogger();
  const connection = new Connection({ sendSpec: options.sendSpec, recvSpec: options.recvSpec, senderId: options.senderId, uploads: options.uploads, logger });
  const backend = new AppBackend({ handler, logger, headTimeoutMs: options.headTimeoutMs, onUpgrade: options.onUpgrade });
  const bridge = new Bridge({ connection, backend, maxInflight: options.maxInflight, logger });
  void bridge.run();
  return { connection, bridge, ready: () => connection.ready(), close: (timeoutMs = 30_000) => bridge.drain(timeoutMs) };
}
