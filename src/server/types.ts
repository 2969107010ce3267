/** Types shared by the core's server modules and its users (control port, CLI). */

/** One access-log record (server-core.md §12), before it is encoded. */
export interface AccessLogEntry {
  /** The host's configured name, not the Host header. */
  readonly host: string;
  readonly remoteAddr: string;
  readonly remotePort: number;
  /** Unix time, seconds. */
  readonly time: number;
  readonly method: string;
  readonly path: string;
  readonly version: string;
  readonly status: number;
  readonly size: number;
}

/** What `status what=net` reports for one connection. */
export interface ClientInfo {
  id: number;
  /** 1 http, 2 msg (JSON/XML socket), 3 socket (websocket). */
  type: 1 | 2 | 3;
  /** Unix times in seconds; 0 = never. */
  lastPing: number;
  lastRead: number;
  lastWrite: number;
  bytesRead: number;
  bytesWritten: number;
}
