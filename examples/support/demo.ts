/**
 * What every demo shares: a `start()` that returns a running Demo (so tests
 * and `npm start` can run demos in-process), and a command-line entry that
 * reads the specs from flags or the environment with the defaults of
 * Mongrel2's sample config (examples/configs/mongrel2.conf).
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { isValidSender } from '../../src/protocol/index.js';
import { Connection, createLogger, type ConnectionOptions, type Logger, type Request } from '../../src/handler/index.js';

/** What every demo's `start()` takes. */
export interface DemoOptions {
  /** The handler's send_spec in the Mongrel2 config (we PULL requests from it). */
  sendSpec: string;
  /** The handler's recv_spec (we PUB replies to it). */
  recvSpec: string;
  /** Needed only when the handler's recv_ident is not empty. */
  senderId?: string;
  logger?: Logger;
}

export interface Demo {
  readonly connection: Connection;
  /** Resolves once Mongrel2 has subscribed to our replies. */
  ready(): Promise<void>;
  /** Stops taking requests, sends what is queued, closes the sockets. */
  stop(): Promise<void>;
}

/**
 * Runs `handle` for every request on a new Connection. A handler that
 * throws (or rejects) is logged, never fatal: one bad request must not stop
 * the demo for everyone else.
 */
export function serve(
  options: DemoOptions & Pick<ConnectionOptions, 'uploads'>,
  handle: (req: Request, conn: Connection) => void | Promise<void>,
  onStop?: () => void,
): Demo {
  const log = options.logger ?? createLogger({ name: 'demo' });
  const connection = new Connection({ sendSpec: options.sendSpec, recvSpec: options.recvSpec, senderId: options.senderId, uploads: options.uploads, logger: log });
  const loop = (async () => {
    for await (const req of connection) {
      const failed = (err: unknown): void => log.error({ err, connId: req.connId, path: req.path }, 'demo handler failed');
      // Synchronous work runs in arrival order; async work (reading an
      // upload) does not hold up the requests behind it.
      try {
        void Promise.resolve(handle(req, connection)).catch(failed);
      } catch (err) {
        failed(err);
      }
    }
  })();
  let stopping: Promise<void> | undefined;
  return {
    connection,
    ready: () => connection.ready(),
    stop: () =>
      (stopping ??= (async () => {
        onStop?.();
        await connection.shutdown();
        await loop;
      })()),
  };
}

/** The send/recv specs of a handler in Mongrel2's sample config. */
export interface SampleSpecs {
  sendSpec: string;
  recvSpec: string;
}

/** examples/configs/mongrel2.conf in the Mongrel2 source tree. */
export const SAMPLE = {
  chat: { sendSpec: 'tcp://127.0.0.1:9999', recvSpec: 'tcp://127.0.0.1:9998' },
  handlertest: { sendSpec: 'tcp://127.0.0.1:9997', recvSpec: 'tcp://127.0.0.1:9996' },
  mp3stream: { sendSpec: 'tcp://127.0.0.1:9995', recvSpec: 'tcp://127.0.0.1:9994' },
} as const satisfies Record<string, SampleSpecs>;

const ZMQ_SPEC = /^(tcp:\/\/[^\s]+:[0-9]+|ipc:\/\/[^\s]+|inproc:\/\/[^\s]+)$/;

type Flags = Record<string, { type: 'string'; description: string }>;

/**
 * Parses `--send-spec`, `--recv-spec`, `--sender-id` (or SEND_SPEC,
 * RECV_SPEC, SENDER_ID) plus the demo's own string flags. Prints usage and
 * exits 2 on an unknown flag.
 */
export function commandLine(name: string, defaults: SampleSpecs, extra: Flags = {}): { demo: DemoOptions; flags: Record<string, string | undefined> } {
  const options = {
    'send-spec': { type: 'string', description: `send_spec to PULL from (default ${defaults.sendSpec}, env SEND_SPEC)` },
    'recv-spec': { type: 'string', description: `recv_spec to PUB to (default ${defaults.recvSpec}, env RECV_SPEC)` },
    'sender-id': { type: 'string', description: "the handler's recv_ident, if not empty (env SENDER_ID)" },
    help: { type: 'boolean', description: 'show this help' },
    ...extra,
  } as const;
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ options, strict: true, allowPositionals: false }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    process.stderr.write(`${name}: ${(err as Error).message}\n${usage(name, options)}`);
    process.exit(2);
  }
  if (values.help === true) {
    process.stdout.write(usage(name, options));
    process.exit(0);
  }
  const str = (key: string): string | undefined => (typeof values[key] === 'string' ? (values[key] as string) : undefined);
  const demo: DemoOptions = {
    sendSpec: str('send-spec') ?? process.env.SEND_SPEC ?? defaults.sendSpec,
    recvSpec: str('recv-spec') ?? process.env.RECV_SPEC ?? defaults.recvSpec,
    senderId: str('sender-id') ?? process.env.SENDER_ID,
  };
  const problems = [
    ...(['sendSpec', 'recvSpec'] as const).filter((k) => !ZMQ_SPEC.test(demo[k])).map((k) => `${k === 'sendSpec' ? '--send-spec' : '--recv-spec'} ${JSON.stringify(demo[k])}: expected a ZeroMQ address such as tcp://127.0.0.1:9997`),
    ...(demo.senderId !== undefined && !isValidSender(demo.senderId) ? [`--sender-id ${JSON.stringify(demo.senderId)}: only letters, digits and "-"`] : []),
  ];
  if (problems.length > 0) {
    process.stderr.write(`${name}: ${problems.join('\n')}\n`);
    process.exit(2);
  }
  return { demo, flags: Object.fromEntries(Object.keys(extra).map((k) => [k, str(k)])) };
}

function usage(name: string, options: Record<string, { description: string }>): string {
  const lines = Object.entries(options).map(([flag, o]) => `  --${flag.padEnd(12)} ${o.description}`);
  return `usage: node --import tsx examples/${name} [options]\n${lines.join('\n')}\n`;
}

/** True when the module at `url` is the script node was started with. */
export function isMain(url: string): boolean {
  const script = process.argv[1];
  return script !== undefined && pathToFileURL(path.resolve(script)).href === url;
}

/** Keeps a demo running until Ctrl-C or SIGTERM, then stops it. */
export async function runUntilSignal(demo: Demo, banner: string): Promise<void> {
  process.once('SIGINT', () => void demo.stop());
  process.once('SIGTERM', () => void demo.stop());
  await demo.ready();
  process.stderr.write(`${banner}\nCtrl-C stops it.\n`);
}

/** A number flag: whole, in [min, max], or exit 2 with what was wrong. */
export function intFlag(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!/^[0-9]+$/.test(value) || Number(value) < min || Number(value) > max) {
    process.stderr.write(`--${name}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(value)}\n`);
    process.exit(2);
  }
  return Number(value);
}
