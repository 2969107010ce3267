/**
 * The control port: a ZeroMQ REP socket answering one command per request
 * (commands.ts). By default it binds `ipc://run/control` relative to the
 * server's cwd, like Mongrel2, so it is never a TCP port on a public
 * interface unless the config asks for one.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Reply } from 'zeromq';
import type { Logger } from '../../handler/logger.js';
import { controlError, executeControl, type ControlTarget } from './commands.js';

export const DEFAULT_CONTROL_SPEC = 'ipc://run/control';

export interface ControlPortOptions {
  /** `server.control_port`, else the `control_port` setting, else DEFAULT_CONTROL_SPEC. */
  spec: string;
  /** Relative ipc:// paths resolve against this (the server's run folder root). */
  cwd: string;
  target: ControlTarget;
  logger: Logger;
}

/** Resolves a relative `ipc://` path against cwd; other transports pass through. */
export function resolveControlSpec(spec: string, cwd: string): string {
  if (!spec.startsWith('ipc://')) return spec;
  const p = spec.slice('ipc://'.length);
  return path.isAbsolute(p) ? spec : `ipc://${path.resolve(cwd, p)}`;
}

export class ControlPort {
  readonly spec: string;
  readonly #socket = new Reply();
  readonly #target: ControlTarget;
  readonly #log: Logger;
  #loop: Promise<void> | undefined;

  constructor(options: ControlPortOptions) {
    this.spec = resolveControlSpec(options.spec, options.cwd);
    this.#target = options.target;
    this.#log = options.logger;
    this.#socket.linger = 0;
  }

  /** Binds and starts answering. Rejects when the spec cannot be bound. */
  async start(): Promise<void> {
    // The run folder may not exist yet in a fresh chroot; Mongrel2 refuses to start then.
    if (this.spec.startsWith('ipc://')) await mkdir(path.dirname(this.spec.slice('ipc://'.length)), { recursive: true });
    await this.#socket.bind(this.spec);
    this.#log.info({ spec: this.spec }, 'control port listening');
    this.#loop = this.#serve();
  }

  async #serve(): Promise<void> {
    for (;;) {
      let msg: Buffer[];
      try {
        msg = await this.#socket.receive();
      } catch (err) {
        if (!this.#socket.closed) this.#log.error({ err }, 'control port receive failed; stopping it');
        return;
      }
      let reply: Buffer;
      let stop = false;
      try {
        const out = executeControl(msg[0] ?? Buffer.alloc(0), this.#target);
        reply = out.reply;
        stop = out.stopPort;
        this.#log.info({ command: out.command }, 'control command');
      } catch (err) {
        // The target threw: answer like Mongrel2 does when a callback fails.
        this.#log.error({ err }, 'control command failed');
        reply = controlError('CALLBACK_RETURN');
      }
      try {
        await this.#socket.send(reply);
      } catch (err) {
        if (!this.#socket.closed) this.#log.error({ err }, 'control port send failed; stopping it');
        return;
      }
      if (stop) {
        this.#log.info('control port stopped by control_stop');
        this.#socket.close();
        return;
      }
    }
  }

  async close(): Promise<void> {
    if (!this.#socket.closed) this.#socket.close();
    await this.#loop;
  }
}
