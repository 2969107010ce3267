/**
 * `m2sh`: Mongrel2's config shell (tools/m2sh), for the bundled server core.
 *
 *   m2sh COMMAND [-option value | --option value | -flag] ...
 *
 * Arguments are lexed as the real m2sh does (cli.rl): `-opt` and `--opt` are
 * the same; an option takes the next argument as its value unless that is
 * another option (then the value is ""); positional arguments are refused.
 * No command starts a shell. Exit codes: 0 ok, 1 error, 2 bad usage (the real
 * m2sh exits 0 from `load` even when the config is broken).
 */
import { loginName } from './login-name.js';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Request } from 'zeromq';
import { loadConfigFile } from '../config/load.js';
import { ConfigDbError, ConfigLoadError, ConfigSyntaxError } from '../config/errors.js';
import { tnsDictRenderOrder } from '../config/order.js';
import { LOG_TABLE_SQL } from '../config/schema.js';
import { encode, parse, type TValue } from '../protocol/tnetstring.js';
import { SERVER_HEADER } from '../server/http/responses.js';
import { RouteMap } from '../server/routing/route-map.js';
import { HostMap, splitHostMatching } from '../server/routing/host-map.js';

/** A mistake in how m2sh was called: exit code 2. */
class UsageError extends Error {}
/** The command was understood but failed: exit code 1. */
class CommandError extends Error {}

type Options = Map<string, string>;
type LineSource = AsyncIterator<string>;

interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  lines: () => LineSource;
  interactive: boolean;
}

interface CommandDef {
  readonly help: string;
  readonly run: (opts: Options, io: Io) => Promise<number> | number;
}

const OPTION_RE = /^--?([A-Za-z_.][A-Za-z0-9_.]*)$/;
/** The package root, whether this runs from src/cli or compiled from dist/src/cli. */
const PACKAGE_ROOT = ((): string => {
  const here = fileURLToPath(new URL('../../', import.meta.url));
  return path.basename(here) === 'dist' ? path.dirname(here) : here;
})();

/** cli.rl's lexing over argv: the command name, then options only. */
export function lexArgs(argv: readonly string[]): { command: string | undefined; options: Options } {
  const options: Options = new Map();
  const [command, ...rest] = argv;
  if (command !== undefined && OPTION_RE.test(command)) {
    throw new UsageError(`expected a command before ${command}; try: m2sh help`);
  }
  for (let i = 0; i < rest.length; i++) {
    const m = OPTION_RE.exec(rest[i]!);
    if (!m) {
      throw new UsageError(`commands only take -option style arguments; unexpected ${JSON.stringify(rest[i])}`);
    }
    const next = rest[i + 1];
    if (next !== undefined && !OPTION_RE.test(next)) {
      options.set(m[1]!, next);
      i++;
    } else {
      options.set(m[1]!, '');
    }
  }
  return { command, options };
}

/** Splits a shell/REPL line like the real m2sh's lexer: whitespace, '...' or "..." (quotes stripped). */
function splitLine(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|(\S+)/g;
  for (const m of line.matchAll(re)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

function opt(opts: Options, name: string, fallback: string): string {
  return opts.get(name) ?? fallback;
}

function required(opts: Options, name: string, why: string): string {
  const v = opts.get(name);
  if (v === undefined || v === '') throw new UsageError(`${why} (--${name})`);
  return v;
}

function openDb(opts: Options, { write = false } = {}): Database.Database {
  const file = opt(opts, 'db', 'config.sqlite');
  if (!fs.existsSync(file)) throw new CommandError(`config database ${file} does not exist (run m2sh load first)`);
  try {
    return new Database(file, { readonly: !write, fileMustExist: true });
  } catch (err) {
    throw new CommandError(`cannot open config database ${file}: ${(err as Error).message}`);
  }
}

function withDb<T>(opts: Options, fn: (db: Database.Database) => T, write = false): T {
  const db = openDb(opts, { write });
  try {
    return fn(db);
  } catch (err) {
    if (err instanceof Error && err.name === 'SqliteError') throw new CommandError(`${opt(opts, 'db', 'config.sqlite')}: ${err.message}`);
    throw err;
  } finally {
    db.close();
  }
}

/** Rows as m2sh's simple_query_print shows them: each value then a space. */
function printRows(io: Io, rows: unknown[][]): void {
  if (rows.length === 0) io.err('m2sh: no results to display\n');
  for (const row of rows) io.out(row.map((v) => `${v === null ? '(null)' : String(v)} `).join('') + '\n');
}

function query(db: Database.Database, sql: string, ...params: unknown[]): unknown[][] {
  return db.prepare(sql).raw().all(...params) as unknown[][];
}

/** The listing commands: a title as m2sh prints it, then the query's rows. */
function listing(opts: Options, io: Io, title: string, sql: string, ...params: unknown[]): number {
  const rows = withDb(opts, (db) => query(db, sql, ...params));
  io.out(title);
  printRows(io, rows);
  return 0;
}

function whoAmI(): string {
  const name = loginName();
  if (name === undefined) throw new CommandError('cannot tell who you are: no LOGNAME or USER in the environment');
  return name;
}

function logAction(dbFile: string, row: { what: string; why: string | null; where?: string; how: string }): void {
  const db = new Database(dbFile, { fileMustExist: true });
  try {
    db.exec(LOG_TABLE_SQL);
    db.prepare('INSERT INTO log (who, what, location, how, why) VALUES (?, ?, ?, ?, ?)').run(
      whoAmI(),
      row.what,
      row.where ?? os.hostname(),
      row.how,
      row.why,
    );
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------------------
// server selection (start/stop/reload/running/control)

function selectServers(opts: Options, columns: string): unknown[][] {
  const selectors = ['every', 'name', 'host', 'uuid'].filter((k) => opts.has(k));
  if (selectors.length !== 1) {
    throw new UsageError('give exactly one of --every, --name NAME, --host DEFAULT_HOST or --uuid UUID');
  }
  const which = selectors[0]!;
  return withDb(opts, (db) => {
    const where = { every: '', name: 'WHERE name = ?', host: 'WHERE default_host = ?', uuid: 'WHERE uuid = ?' }[which]!;
    const rows = query(db, `SELECT ${columns} FROM server ${where} ORDER BY id`, ...(which === 'every' ? [] : [opts.get(which)]));
    if (rows.length === 0) throw new CommandError(`no server matched --${which}${which === 'every' ? '' : ' ' + String(opts.get(which))}`);
    return rows;
  });
}

function selectOne(opts: Options, columns: string): unknown[] {
  const rows = selectServers(opts, columns);
  if (rows.length !== 1) throw new CommandError(`that matched ${rows.length} servers; select exactly one`);
  return rows[0]!;
}

/**
 * The folder a server's /run, /logs paths live under, as m2sh's cwd sees it:
 * the chroot, or '.' without one, where our server puts them (the cwd it was
 * started in); Debian's m2sh would look under the real /run.
 */
function serverRoot(chroot: unknown): string {
  if (typeof chroot !== 'string') throw new CommandError('server row has no chroot');
  return chroot === '' ? '.' : chroot;
}

function pidPath(opts: Options): string {
  const [chroot, pidFile] = selectOne(opts, 'chroot, pid_file') as [unknown, unknown];
  if (typeof pidFile !== 'string') throw new CommandError('server row has no pid_file');
  // m2sh concatenates them as they are: chroot "./" + "/run/x.pid".
  return `${serverRoot(chroot)}${pidFile}`;
}

function readPid(file: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const pid = parseInt(text, 10);
  if (!Number.isInteger(pid) || pid <= 0) throw new CommandError(`pid file ${file} does not hold a pid`);
  return pid;
}

function signalServer(opts: Options, signal: NodeJS.Signals): number {
  const file = pidPath(opts);
  const pid = readPid(file);
  if (pid === undefined) throw new CommandError(`cannot read the pid from ${file}`);
  try {
    process.kill(pid, signal);
  } catch (err) {
    throw new CommandError(`cannot send ${signal} to mongrel2 at PID ${pid}: ${(err as Error).message}`);
  }
  return 0;
}

// ---------------------------------------------------------------------------
// control port

/** `cmd k=v ...` → tnetstring [cmd, {k: v}]; values that look like integers are sent as numbers. */
export function controlRequest(line: string): Buffer {
  const words = line.trim().split(/[ \t\n=]+/).filter((w) => w !== '');
  if (words.length === 0 || words.length % 2 === 0) throw new CommandError('usage: command arg1=val1 arg2=val2');
  const args = new Map<string, TValue>();
  for (let i = 1; i < words.length; i += 2) {
    const v = words[i + 1]!;
    args.set(words[i]!, /^-?[0-9]+$/.test(v) && Number.isSafeInteger(Number(v)) ? Number(v) : v);
  }
  // Keys in the order mongrel2's own renderer would write them.
  const dict = Buffer.concat(tnsDictRenderOrder([...args.keys()]).flatMap((k) => [encode(k), encode(args.get(k)!)]));
  const body = Buffer.concat([encode(words[0]!), Buffer.from(`${dict.length}:`), dict, Buffer.from('}')]);
  return Buffer.concat([Buffer.from(`${body.length}:`), body, Buffer.from(']')]);
}

function datum(v: unknown): string {
  if (v === null) return '(null)';
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (Array.isArray(v) || typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** A control reply printed as m2sh does: ERROR, one row as `name:  value` lines, or a table. */
export function formatControlReply(reply: Buffer): string {
  let value: TValue;
  try {
    value = parse(reply).value;
  } catch (err) {
    throw new CommandError(`the server sent a reply that is not a tnetstring: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Buffer.isBuffer(value)) {
    throw new CommandError('the server sent an invalid reply: not a dict');
  }
  if ('error' in value) return `ERROR: ${datum(value.error)}\n`;
  const { headers, rows } = value;
  if (!Array.isArray(headers) || !Array.isArray(rows) || !rows.every(Array.isArray)) {
    throw new CommandError('the server sent an invalid reply: it needs headers and rows lists');
  }
  const names = headers.map(datum);
  if (rows.length === 1) {
    const row = rows[0] as TValue[];
    return names.map((h, i) => `${h}:  ${datum(row[i] ?? null)}\n`).join('');
  }
  return (
    names.map((h) => `${h}  `).join('') +
    '\n' +
    rows.map((r) => (r as TValue[]).map((c) => `${datum(c)}  `).join('') + '\n').join('') +
    '\n'
  );
}

async function control(opts: Options, io: Io): Promise<number> {
  const [name, chroot] = selectOne(opts, 'name, chroot') as [unknown, unknown];
  // Like m2sh: always ipc://<chroot>/run/control, whatever control_port says.
  const endpoint = opts.get('endpoint') || `ipc://${serverRoot(chroot)}/run/control`;
  const timeout = Number(opt(opts, 'timeout', '5000'));
  if (!Number.isInteger(timeout) || timeout <= 0) throw new UsageError('--timeout must be a positive number of milliseconds');
  const sock = new Request({ receiveTimeout: timeout, sendTimeout: timeout, linger: 0 });
  let status = 0;
  try {
    sock.connect(endpoint);
    const prompt = `m2 [${String(name)}]> `;
    const lines = io.lines();
    for (;;) {
      if (io.interactive) io.out(prompt);
      const next = await lines.next();
      if (next.done) break;
      if (next.value.trim() === '') continue;
      let request: Buffer;
      try {
        request = controlRequest(next.value);
      } catch (err) {
        io.err(`m2sh: ${(err as Error).message}\n`);
        status = 1;
        continue;
      }
      // m2sh sends the C string's NUL too; mongrel2 ignores trailing bytes.
      await sock.send(Buffer.concat([request, Buffer.from([0])]));
      let reply: Buffer;
      try {
        [reply] = (await sock.receive()) as [Buffer];
      } catch (err) {
        throw new CommandError(`no reply from the control port ${endpoint} within ${timeout} ms (${(err as Error).message})`);
      }
      io.out(formatControlReply(reply));
    }
  } finally {
    sock.close();
  }
  return status;
}

// ---------------------------------------------------------------------------
// commands

function versionLine(): string {
  let ours = 'unknown';
  try {
    ours = (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    // keep 'unknown'
  }
  return `${SERVER_HEADER} (m2bridge ${ours})\n`;
}

function accessLog(opts: Options, io: Io): number {
  const file = opt(opts, 'log', 'logs/access.log');
  let text: Buffer;
  try {
    text = fs.readFileSync(file);
  } catch (err) {
    throw new CommandError(`cannot read the access log ${file}: ${(err as Error).message}`);
  }
  let lineNo = 0;
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf(0x0a, start);
    const line = text.subarray(start, nl < 0 ? text.length : nl);
    start = nl < 0 ? text.length : nl + 1;
    lineNo++;
    let item: TValue;
    try {
      item = parse(line).value;
    } catch {
      io.err(`m2sh: malformed log line ${lineNo}\n`);
      continue;
    }
    if (!Array.isArray(item) || item.length < 9) {
      io.err(`m2sh: malformed log line ${lineNo}\n`);
      continue;
    }
    const [host, addr, port, ts, method, p, version, status, size] = item.map(datum);
    io.out(`[${ts}] ${addr}:${port} ${host} "${method} ${p} ${version}" ${status} ${size}\n`);
  }
  return 0;
}

function routeTest(opts: Options, io: Io): number {
  const match = required(opts, 'match', 'give something to match against');
  const pattern = required(opts, 'pattern', 'give a pattern to use');
  let found: { pattern: string; prefix: string } | undefined;
  if (opts.has('suffix') || opts.has('reversed')) {
    // Reversed/suffix matching is how hosts match: use the host table.
    const hosts = new HostMap<string>();
    hosts.insert(pattern, pattern);
    if (hosts.match(match) !== undefined) found = { pattern, prefix: splitHostMatching(pattern).suffix };
  } else {
    const routes = new RouteMap<null>();
    try {
      routes.insert(pattern, null);
    } catch (err) {
      throw new CommandError(`bad pattern ${JSON.stringify(pattern)}: ${(err as Error).message}`);
    }
    const r = routes.match(match);
    if (r) found = { pattern: r.path, prefix: r.prefix };
  }
  if (found) {
    io.out(`Match passed on '${match}' against '${pattern}'.\nROUTE: pattern='${found.pattern}', prefix='${found.prefix}'\n`);
  } else {
    io.out(`Match FAILED on '${match}' against '${pattern}'.\n`);
  }
  return 0;
}

async function start(opts: Options): Promise<number> {
  const [uuid] = selectServers(opts, 'uuid')[0] as [string];
  const db = opt(opts, 'db', 'config.sqlite');
  const bin = path.join(PACKAGE_ROOT, 'bin', 'mongrel2.js');
  const args = [process.execPath, bin, db, uuid];
  const sudo = opts.get('sudo');
  const argv = sudo === undefined ? args : [...(sudo === '' ? ['sudo'] : splitLine(sudo)), ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit' });
    child.once('error', (err) => reject(new CommandError(`cannot start ${argv[0]}: ${err.message}`)));
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

function running(opts: Options, io: Io): number {
  const file = pidPath(opts);
  const pid = readPid(file);
  if (pid === undefined) {
    io.out(`mongrel2 is not running because pid_file ${file} isn't there.\n`);
    return 0;
  }
  let alive = true;
  try {
    process.kill(pid, 0);
  } catch (err) {
    alive = (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  io.out(alive ? `mongrel2 at PID ${pid} running.\n` : `mongrel2 at PID ${pid} is NOT running.\n`);
  return 0;
}

const COMMANDS: Record<string, CommandDef> = {
  load: {
    help: 'Load a config (--config mongrel2.conf --db config.sqlite).',
    run: (opts, io) => {
      const db = opt(opts, 'db', 'config.sqlite');
      const conf = opt(opts, 'config', 'mongrel2.conf');
      if (!fs.existsSync(conf)) throw new CommandError(`config file ${conf} does not exist`);
      const s = loadConfigFile(conf, db);
      for (const w of s.warnings) io.err(`m2sh: warning: ${w}\n`);
      logAction(db, { what: 'load', why: 'command', how: conf });
      io.out(
        `Loaded ${conf} into ${db}: ${s.servers} server(s), ${s.hosts} host(s), ${s.routes} route(s), ` +
          `${s.targets} target(s), ${s.filters} filter(s), ${s.xrequests} xrequest(s), ${s.settings} setting(s), ${s.mimetypes} mimetype(s).\n`,
      );
      return 0;
    },
  },
  config: { help: 'Alias for load.', run: (o, io) => COMMANDS.load!.run(o, io) },
  shell: { help: 'Starts an interactive shell.', run: (_o, io) => shell(io) },
  access: { help: 'Prints the access log (--log logs/access.log).', run: accessLog },
  servers: {
    help: 'Lists the servers in a config database.',
    run: (opts, io) => listing(opts, io, 'SERVERS:\n------\n', 'SELECT name, default_host, uuid FROM server ORDER BY id'),
  },
  hosts: {
    help: 'Lists the hosts in a server (--server NAME).',
    run: (opts, io) => {
      const server = required(opts, 'server', 'give the name of the server to list hosts from');
      const sql = 'SELECT id, name FROM host WHERE server_id = (SELECT id FROM server WHERE name = ?) ORDER BY id';
      return listing(opts, io, `HOSTS in ${server}:\n-----\n`, sql, server);
    },
  },
  routes: {
    help: 'Lists the routes in a host (--id HOST_ID, or --server NAME --host NAME).',
    run: (opts, io) => {
      const id = opts.get('id');
      if (id !== undefined) return listing(opts, io, `ROUTES in host id ${id}\n-----\n`, 'SELECT path FROM route WHERE host_id = ? ORDER BY id', id);
      const server = required(opts, 'server', 'give the --server name you want or use --id');
      const host = required(opts, 'host', 'give the --host in that server you want or use --id');
      const sql =
        'SELECT route.path FROM route, host, server WHERE host.name = ? AND route.host_id = host.id AND server.name = ? AND host.server_id = server.id ORDER BY route.id';
      return listing(opts, io, `ROUTES in host ${host}, server ${server}\n-----\n`, sql, host, server);
    },
  },
  settings: {
    help: 'Lists the settings (key value), in row order.',
    run: (opts, io) => listing(opts, io, 'SETTINGS:\n------\n', 'SELECT key, value FROM setting ORDER BY id'),
  },
  commit: {
    help: 'Adds a message to the log (--what --why --where --how).',
    run: (opts) => {
      const db = opt(opts, 'db', 'config.sqlite');
      if (!fs.existsSync(db)) throw new CommandError(`config database ${db} does not exist`);
      logAction(db, { what: opt(opts, 'what', ''), why: opts.get('why') ?? null, where: opts.get('where'), how: opt(opts, 'how', 'm2sh') });
      return 0;
    },
  },
  log: {
    help: 'Prints the commit log.',
    run: (opts, io) => listing(opts, io, 'LOG MESSAGES:\n------\n', 'SELECT happened_at, who, location, how, what, why FROM log ORDER BY happened_at, id'),
  },
  start: { help: 'Starts a server (--db, one of --every/--name/--host/--uuid, --sudo [CMD]).', run: start },
  stop: { help: 'Stops a server (SIGINT; SIGTERM with --murder).', run: (o) => signalServer(o, o.has('murder') ? 'SIGTERM' : 'SIGINT') },
  reload: { help: 'Reloads a server (SIGHUP: reopens the logs; the config is not re-read).', run: (o) => signalServer(o, 'SIGHUP') },
  running: { help: "Tells you what's running.", run: running },
  control: { help: 'Connects to the control port (reads commands from stdin).', run: control },
  route: { help: 'Tests out routing patterns (--match PATH --pattern ROUTE [--suffix]).', run: routeTest },
  version: {
    help: 'Prints the Mongrel2 and m2sh version.',
    run: (_o, io) => {
      io.out(versionLine());
      return 0;
    },
  },
  help: {
    help: 'Get help, lists commands (--on COMMAND).',
    run: (opts, io) => {
      const on = opts.get('on');
      if (on !== undefined && on !== '') {
        const c = COMMANDS[on];
        if (!c) throw new UsageError(`no help for ${on}; use m2sh help to see a list`);
        io.out(`${on}\t${c.help}\n`);
        return 0;
      }
      io.out('Mongrel2 m2sh has these commands available:\n\n');
      for (const [name, c] of Object.entries(COMMANDS)) io.out(`${name.padStart(8)}  ${c.help}\n`);
      return 0;
    },
  },
  uuid: {
    help: 'Prints out a randomly generated UUID.',
    run: (_o, io) => {
      io.out(`${randomUUID()}\n`);
      return 0;
    },
  },
};

/** Runs one command line; errors become messages and an exit code, never a crash. */
async function runCommand(argv: readonly string[], io: Io): Promise<number> {
  try {
    const { command, options } = lexArgs(argv);
    if (command === undefined) return await shell(io);
    const def = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
    if (!def) throw new UsageError(`unknown command ${JSON.stringify(command)}; use m2sh help to see what's available`);
    return await def.run(options, io);
  } catch (err) {
    const e = err as Error;
    // Our own errors already say what and where; anything else also gets its class name.
    const known = [UsageError, CommandError, ConfigSyntaxError, ConfigLoadError, ConfigDbError].some((c) => e instanceof c);
    io.err(`m2sh: ${known ? '' : `${e.name}: `}${e.message}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}

async function shell(io: Io): Promise<number> {
  const lines = io.lines();
  let status = 0;
  for (;;) {
    if (io.interactive) io.out('mongrel2> ');
    const next = await lines.next();
    if (next.done) break;
    const words = splitLine(next.value);
    if (words.length === 0) continue;
    if (words[0] === 'shell') continue;
    status = await runCommand(words, io);
  }
  return status;
}

function stdioIo(): Io {
  let source: LineSource | undefined;
  return {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    // One line reader shared by the shell and `control` inside it.
    lines: () => (source ??= readline.createInterface({ input: process.stdin, terminal: false })[Symbol.asyncIterator]()),
    interactive: process.stdin.isTTY === true,
  };
}

process.exitCode = await runCommand(process.argv.slice(2), stdioIo());
