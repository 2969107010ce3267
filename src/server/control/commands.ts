/**
 * The control port's command table: one tnetstring request in, one
 * tnetstring reply out, with Mongrel2's command set, reply tables and fixed
 * error dicts (src/control.c, checked byte for byte against 1.12.2). Pure:
 * the server behind it is reached through a ControlTarget.
 */
import { encode, parse, readFrame, type TDict, type TValue } from '../../protocol/tnetstring.js';

/** What `status what=net` lists for one client connection. */
export interface ControlClient {
  /** The id handlers see; -1 until the connection talks to a handler (as in Mongrel2). */
  readonly id: number;
  /** The OS file descriptor, or -1 when unknown. */
  readonly fd: number;
  /** 1 http, 2 msg (JSON/XML socket), 3 socket (websocket). */
  readonly type: 1 | 2 | 3;
  /** Epoch milliseconds; 0 = never. */
  readonly lastPing: number;
  readonly lastRead: number;
  readonly lastWrite: number;
  readonly bytesRead: number;
  readonly bytesWritten: number;
}

export interface ControlServerInfo {
  readonly port: number;
  readonly bindAddr: string;
  readonly uuid: string;
  readonly chroot: string;
  readonly accessLog: string;
  readonly errorLog: string;
  readonly pidFile: string;
  readonly defaultHost: string;
}

/** A row of `status what=tasks`: id, system, name, state, status. */
export type TaskRow = readonly [number, boolean, string, string, string];

export type ControlSignal = 'stop' | 'reload' | 'terminate';

export interface ControlTarget {
  readonly info: ControlServerInfo;
  clients(): Iterable<ControlClient>;
  tasks(): Iterable<TaskRow>;
  /** Closes the client with this handler-visible id; false when there is none. */
  kill(id: number): boolean;
  /** stop = SIGINT, reload = SIGHUP, terminate = SIGTERM semantics; false when it failed. */
  signal(kind: ControlSignal): boolean;
  /** Epoch milliseconds (injectable for tests). */
  now(): number;
}

export interface ControlOutcome {
  readonly reply: Buffer;
  /** `control_stop`: the port stops after sending this reply. */
  readonly stopPort: boolean;
  /** The command name, for the log (undefined when the request was unreadable). */
  readonly command: string | undefined;
}

/** Mongrel2's fixed error replies, in its key order (code, error). */
const ERRORS = {
  INVALID_REQUEST: 'Invalid request format, must be a list with two elements in it.',
  INVALID_DATA: 'Invalid data, expecting a list with a string and a hash in it.',
  CALLBACK_RETURN: 'Callback failed and returned NULL, should not happen.',
  CALLBACK_NOT_FOUND: 'Callback requested was not found.',
  SIGNAL_FAILED: "raise call failed, can't signal process",
  INVALID_ARGUMENT: 'Invalid argument type.',
  NOT_CONNECTED: 'Socket not connected.',
} as const;

export type ControlErrorCode = keyof typeof ERRORS;

const NET_HEADERS = ['id', 'fd', 'type', 'last_ping', 'last_read', 'last_write', 'bytes_read', 'bytes_written'];
const INFO_HEADERS = ['port', 'bind_addr', 'uuid', 'chroot', 'access_log', 'error_log', 'pid_file', 'default_hostname'];

type Command = (args: TDict, target: ControlTarget, name: string) => TDict;

interface CommandEntry {
  readonly help: string;
  readonly run: Command;
}

const signalCommand: Command = (_args, target, name) =>
  target.signal(name as ControlSignal) ? table(['msg'], [['signal sent to server']]) : errorDict('SIGNAL_FAILED');

/** In Mongrel2's order: `help` lists them like this. */
const COMMANDS: ReadonlyMap<string, CommandEntry> = new Map<string, CommandEntry>([
  ['stop', { help: 'stop the server (SIGINT)', run: signalCommand }],
  ['reload', { help: 'reload the server', run: signalCommand }],
  ['help', { help: 'this command', run: () => table(['name', 'help'], [...COMMANDS].map(([name, c]) => [name, c.help])) }],
  ['control_stop', { help: 'stop control port', run: () => table(['msg'], [['stopping the control port']]) }],
  ['kill', { help: 'kill a connection', run: killCommand }],
  ['status', { help: "status, what=['net'|'tasks']", run: statusCommand }],
  ['terminate', { help: 'terminate the server (SIGTERM)', run: signalCommand }],
  ['time', { help: "the server's time", run: (_a, t) => table(['time'], [[String(Math.floor(t.now() / 1000))]]) }],
  ['uuid', { help: "the server's uuid", run: (_a, t) => table(['uuid'], [[t.info.uuid]]) }],
  ['info', { help: 'information about this server', run: infoCommand }],
]);

/** Runs one control request (the raw bytes of one ZeroMQ message). Never throws. */
export function executeControl(request: Buffer, target: ControlTarget): ControlOutcome {
  let value: TValue;
  try {
    // Trailing bytes are tolerated: m2sh sends a NUL after the tnetstring.
    value = parse(request).value;
    // Mongrel2's tnetstring parser has no floats: a request holding one is unreadable to it.
    if (holdsFloat(request, 0)) throw new Error('float');
  } catch {
    return outcome(errorDict('INVALID_DATA'), undefined);
  }
  if (!Array.isArray(value)) return outcome(errorDict('INVALID_REQUEST'), undefined);
  const [name, args] = value;
  // 1.12.2 answers INVALID_DATA for anything but exactly [string, dict].
  if (value.length !== 2 || !isText(name) || !isDict(args)) return outcome(errorDict('INVALID_DATA'), undefined);
  const command = text(name);
  const entry = COMMANDS.get(command);
  if (!entry) return outcome(errorDict('CALLBACK_NOT_FOUND'), command);
  return { reply: encode(entry.run(args, target, command)), stopPort: command === 'control_stop', command };
}

/** The fixed error dict for a code, as bytes (for callers that fail before executing). */
export function controlError(code: ControlErrorCode): Buffer {
  return encode(errorDict(code));
}

function killCommand(args: TDict, target: ControlTarget): TDict {
  const id = args.id;
  // Only integers name a connection; unknown ids are "Invalid argument type." in Mongrel2 too.
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) return errorDict('INVALID_ARGUMENT');
  if (!target.kill(id)) return errorDict('INVALID_ARGUMENT');
  return table(['status'], [['OK']]);
}

function statusCommand(args: TDict, target: ControlTarget): TDict {
  const what = args.what;
  if (!isText(what)) return errorDict('INVALID_ARGUMENT');
  switch (text(what)) {
    case 'net': {
      const now = target.now();
      const ago = (t: number): number => (t === 0 ? 0 : Math.max(0, Math.floor((now - t) / 1000)));
      const rows = [...target.clients()].map((c) => [c.id, c.fd, c.type, ago(c.lastPing), ago(c.lastRead), ago(c.lastWrite), c.bytesRead, c.bytesWritten]);
      return table(NET_HEADERS, rows);
    }
    case 'tasks':
      return table(['id', 'system', 'name', 'state', 'status'], [...target.tasks()].map((row) => [...row]));
    default:
      // Mongrel2 answers this one without a code.
      return { error: "Expected argument what=['net'|'tasks']." };
  }
}

function infoCommand(_args: TDict, target: ControlTarget): TDict {
  const i = target.info;
  return table(INFO_HEADERS, [[i.port, i.bindAddr, i.uuid, i.chroot, i.accessLog, i.errorLog, i.pidFile, i.defaultHost]]);
}

function table(headers: readonly string[], rows: readonly TValue[][]): TDict {
  return { headers: [...headers], rows: rows.map((r) => [...r]) };
}

function errorDict(code: ControlErrorCode): TDict {
  return { code, error: ERRORS[code] };
}

function outcome(dict: TDict, command: string | undefined): ControlOutcome {
  return { reply: encode(dict), stopPort: false, command };
}

/** Whether the (already parsed, so well-formed) tnetstring at `offset` contains a float anywhere. */
function holdsFloat(buf: Buffer, offset: number): boolean {
  const { start, end } = readFrame(buf, offset);
  const tag = buf[end];
  if (tag === 0x5e /* ^ */) return true;
  if (tag !== 0x5d /* ] */ && tag !== 0x7d /* } */) return false;
  for (let at = start; at < end; at = readFrame(buf, at).end + 1) if (holdsFloat(buf, at)) return true;
  return false;
}

function isText(v: TValue | undefined): v is string | Buffer {
  return typeof v === 'string' || Buffer.isBuffer(v);
}

function text(v: string | Buffer): string {
  return typeof v === 'string' ? v : v.toString('utf8');
}

function isDict(v: TValue | undefined): v is TDict {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}
