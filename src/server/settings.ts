/**
 * The runtime settings the core reads from the `setting` table
 * (server-core.md §4), typed, with Mongrel2's defaults. Values are parsed the
 * way Mongrel2 parses them (atoi: leading digits, else 0).
 *
 * Keys that are ours (Mongrel2 has no per-request timer, §8.2):
 *  - `limits.header_timeout` (s, default 30, 0 = off): a request head must be
 *    complete this long after the connection opened or the previous response
 *    ended; otherwise the connection is closed without an answer.
 *  - `limits.deliver_queue_bytes` (default 4 MiB): a connection whose unsent
 *    reply bytes exceed this is killed (Mongrel2 kills at 17 queued messages).
 *  - `limits.handler_queue` (default 1024): requests waiting for a handler's
 *    PUSH socket; past it new requests get 502.
 *  - `limits.websocket_max_message` (default 16 MiB): a bigger websocket
 *    message (all its fragments) or frame closes the connection with 1009.
 *  - `proxy.forwarded_headers` (default 1): Proxy routes add X-Forwarded-For
 *    and X-Forwarded-Proto to the request sent to the backend; 0 forwards the
 *    client's headers as sent (Mongrel2's bytes), minus hop-by-hop headers.
 *  - `proxy.trust_forwarded` (default 0): 1 keeps the client's X-Forwarded-*
 *    and Forwarded headers and appends the peer to its X-Forwarded-For chain
 *    (only behind a proxy you trust); 0 replaces them.
 * `limits.min_ping` (default 120 s, 0 = off) is the idle timeout: seconds
 * since the last event (read, write, reply, ctl keep-alive).
 */

import { strtoul0 } from './upload-store.js';
import { DEFAULT_MAX_MESSAGE } from './websocket/frame-reader.js';

export interface ServerSettings {
  readonly bufferSize: number;
  readonly contentLength: number;
  readonly headerCount: number;
  readonly handlerTargets: number;
  readonly relaxed: boolean;
  readonly noClobberXff: boolean;
  readonly minPing: number;
  readonly headerTimeout: number;
  readonly deliverQueueBytes: number;
  readonly handlerQueue: number;
  readonly tcpKeepalive: boolean;
  readonly disableAccessLogging: boolean;
  readonly uploadTempStore: string | undefined;
  /** `upload.temp_store_mode`, strtoul base 0 (default 0600). */
  readonly uploadTempStoreMode: number;
  readonly uploadStream: boolean;
  readonly downloadFlowControl: boolean;
  readonly proxyForwardedHeaders: boolean;
  readonly proxyTrustForwarded: boolean;
  /** `limits.websocket_max_message` (ours): the largest websocket message or frame, bytes (default 16 MiB); bigger ones get close 1009. */
  readonly websocketMaxMessage: number;
}

/** C atoi: optional whitespace and sign, then leading digits; anything else gives 0. */
export function atoi(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^[ \t\n\v\f\r]*([+-]?[0-9]+)/.exec(text);
  if (!m) return 0;
  const n = Number.parseInt(m[1]!, 10);
  return Number.isFinite(n) ? n : 0;
}

export function readSettings(settings: ReadonlyMap<string, string>): ServerSettings {
  const int = (key: string, def: number): number => atoi(settings.get(key)) ?? def;
  const positive = (key: string, def: number): number => {
    const n = int(key, def);
    return n > 0 ? n : def;
  };
  return {
    bufferSize: positive('limits.buffer_size', 4096),
    contentLength: Math.max(0, int('limits.content_length', 20480)),
    headerCount: positive('limits.header_count', 1280),
    handlerTargets: positive('limits.handler_targets', 128),
    relaxed: int('request.relaxed', 0) !== 0,
    noClobberXff: int('no_clobber_xff', 0) === 1,
    minPing: Math.max(0, int('limits.min_ping', 120)),
    headerTimeout: Math.max(0, int('limits.header_timeout', 30)),
    deliverQueueBytes: positive('limits.deliver_queue_bytes', 4 * 1024 * 1024),
    handlerQueue: positive('limits.handler_queue', 1024),
    tcpKeepalive: int('net.tcp_keepalive', 0) !== 0,
    disableAccessLogging: int('disable.access_logging', 0) !== 0,
    uploadTempStore: settings.get('upload.temp_store'),
    uploadTempStoreMode: strtoul0(settings.get('upload.temp_store_mode') ?? '0600'),
    uploadStream: int('upload.stream', 0) !== 0,
    downloadFlowControl: int('download.flow_control', 0) !== 0,
    proxyForwardedHeaders: int('proxy.forwarded_headers', 1) !== 0,
    proxyTrustForwarded: int('proxy.trust_forwarded', 0) !== 0,
    websocketMaxMessage: positive('limits.websocket_max_message', DEFAULT_MAX_MESSAGE),
  };
}
