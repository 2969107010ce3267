/**
 * Embedding the bundled server core: `createServer(config)` for just the
 * server, or `runServer(config)` for what the `mongrel2` command adds (logs,
 * pid file, control port, signals).
 */
export { createServer, type CoreServer, type CoreServerOptions, type AccessLogEntry, type ClientInfo } from './server.js';
export { runServer, type RunningServer, type RunOptions } from './process/run.js';
export * from '../config/index.js';
