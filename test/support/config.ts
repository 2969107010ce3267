/**
 * Config rows built in code (no m2sh, no config.sqlite) for tests and benches
 * that start the core with createServer/runServer: the server row with the
 * sample configs' defaults, and a JSON/tnetstring handler target.
 */
import { randomUUID } from 'node:crypto';
import type { HandlerTarget, ServerConfig } from '../../src/config/types.js';

/** A server row on 127.0.0.1: the m2sh samples' log and pid paths, no chroot, default host 'localhost'; `over` wins. */
export function serverRow(over: Partial<ServerConfig> & Pick<ServerConfig, 'port' | 'hosts'>): ServerConfig {
  return {
    id: 1,
    uuid: randomUUID(),
    name: 'm2test',
    bindAddr: '127.0.0.1',
    chroot: '',
    accessLog: '/logs/access.log',
    errorLog: '/logs/error.log',
    errorLogLevel: 2,
    pidFile: '/run/mongrel2.pid',
    controlPort: '',
    defaultHost: 'localhost',
    useSsl: false,
    filters: [],
    xrequests: [],
    ...over,
  };
}

/** A Handler target (recv_ident '', raw_payload off); `sendIdent` defaults to a fresh UUID. */
export function handlerTarget(id: number, h: { sendSpec: string; recvSpec: string; sendIdent?: string; protocol?: HandlerTarget['protocol'] }): HandlerTarget {
  return { type: 'handler', id, sendSpec: h.sendSpec, sendIdent: h.sendIdent ?? randomUUID(), recvSpec: h.recvSpec, recvIdent: '', rawPayload: false, protocol: h.protocol ?? 'json' };
}
