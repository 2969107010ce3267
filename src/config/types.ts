/**
 * A server's configuration as the core runs it: what `config.sqlite` (or a
 * config module) holds for one server uuid, typed. Column names follow the
 * Mongrel2 schema (reference/server-core.md §2); field names are camelCase.
 */

export interface HandlerTarget {
  readonly type: 'handler';
  readonly id: number;
  readonly sendSpec: string;
  readonly sendIdent: string;
  readonly recvSpec: string;
  readonly recvIdent: string;
  readonly rawPayload: boolean;
  readonly protocol: 'json' | 'tnetstring';
}

export interface DirTarget {
  readonly type: 'dir';
  readonly id: number;
  /** Ends in '/'. Relative bases resolve against the server's cwd (the chroot after chroot). */
  readonly base: string;
  readonly indexFile: string;
  readonly defaultCtype: string;
  readonly cacheTtl: number;
}

export interface ProxyTarget {
  readonly type: 'proxy';
  readonly id: number;
  readonly addr: string;
  readonly port: number;
}

export type Target = HandlerTarget | DirTarget | ProxyTarget;

export interface RouteConfig {
  readonly id: number;
  /** The configured path: a prefix, optionally followed by a pattern from the first '('. */
  readonly path: string;
  readonly target: Target;
}

export interface HostConfig {
  readonly id: number;
  readonly name: string;
  readonly matching: string;
  /** In row order (the order m2sh inserted them). */
  readonly routes: readonly RouteConfig[];
}

export interface FilterConfig {
  readonly id: number;
  /** A module path (Mongrel2: a .so path). */
  readonly name: string;
  /** The parsed tnetstring settings dict. */
  readonly settings: Readonly<Record<string, unknown>>;
}

export interface ServerConfig {
  readonly id: number;
  readonly uuid: string;
  readonly name: string;
  readonly bindAddr: string;
  readonly port: number;
  /** '' means no chroot. */
  readonly chroot: string;
  readonly accessLog: string;
  readonly errorLog: string;
  readonly errorLogLevel: number;
  readonly pidFile: string;
  /** '' means the `control_port` setting, else ipc://run/control. */
  readonly controlPort: string;
  /** The name (not matching) of one of `hosts`. */
  readonly defaultHost: string;
  readonly useSsl: boolean;
  readonly hosts: readonly HostConfig[];
  readonly filters: readonly FilterConfig[];
  readonly xrequests: readonly FilterConfig[];
}

/** Everything the core needs to start one server. */
export interface Config {
  readonly server: ServerConfig;
  /** The setting table, last row wins; values are text as stored. */
  readonly settings: ReadonlyMap<string, string>;
  /** Extension (with its leading '.', as stored: Mongrel2's lookup is case-sensitive) → MIME type. */
  readonly mimetypes: ReadonlyMap<string, string>;
}
