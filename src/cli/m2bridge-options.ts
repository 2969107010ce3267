/**
 * The m2bridge command line, parsed and checked without side effects so that
 * every bad flag gets one clear message (and exit 2) before anything starts.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import path from 'node:path';
import { isValidSender } from '../protocol/reply.js';

export interface BridgeCliOptions {
  /** Exactly one of fcgi and app is set. */
  fcgi?: string;
  app?: string;
  root?: string;
  index: string;
  sendSpec: string;
  recvSpec: string;
  senderId?: string;
  uploadDir?: string;
  chroot: string;
  maxInflight: number;
  timeout: number;
  workers: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  sendfile: boolean;
  maxConnections: number;
  /** Seconds an idle FastCGI connection is kept; 0 = a new connection per request. */
  fcgiIdle: number;
}

export type ParseResult = { ok: true; options: BridgeCliOptions } | { ok: false; exitCode: number; output: string };

function positiveInt(name: string, max: number) {
  return (value: string): number => {
    if (!/^[0-9]+$/.test(value) || Number(value) < 1 || Number(value) > max) throw new InvalidArgumentError(`${name} must be a whole number from 1 to ${max}.`);
    return Number(value);
  };
}

function wholeNumber(name: string, max: number) {
  return (value: string): number => {
    if (!/^[0-9]+$/.test(value) || Number(value) > max) throw new InvalidArgumentError(`${name} must be a whole number from 0 to ${max}.`);
    return Number(value);
  };
}

function zmqSpec(value: string): string {
  if (!/^(tcp:\/\/[^\s]+:[0-9]+|ipc:\/\/[^\s]+|inproc:\/\/[^\s]+)$/.test(value)) throw new InvalidArgumentError('expected a ZeroMQ address such as tcp://127.0.0.1:9997 or ipc:///run/m2.sock.');
  return value;
}

function fcgiAddress(value: string): string {
  if (!/^(unix:\/.+|\[[0-9A-Fa-f:.]+\]:[0-9]{1,5}|[A-Za-z0-9.-]+:[0-9]{1,5})$/.test(value)) throw new InvalidArgumentError('expected HOST:PORT or unix:/absolute/path.');
  const port = /:([0-9]+)$/.exec(value);
  if (!value.startsWith('unix:') && port && (Number(port[1]) < 1 || Number(port[1]) > 65535)) throw new InvalidArgumentError('port must be 1-65535.');
  return value;
}

function directory(value: string): string {
  if (value === '') throw new InvalidArgumentError('expected a directory.');
  return path.resolve(value);
}

function appFile(value: string): string {
  if (value === '') throw new InvalidArgumentError('expected a module file.');
  return path.resolve(value);
}

function senderId(value: string): string {
  if (!isValidSender(value)) throw new InvalidArgumentError('may only contain letters, digits and "-" (Mongrel2 rejects anything else).');
  return value;
}

export function buildCommand(): Command {
  return new Command('m2bridge')
    .description('Put a FastCGI (PHP-FPM) application or an in-process Node app behind Mongrel2.')
    .option('--fcgi <address>', 'FastCGI server: HOST:PORT or unix:/path (needs --root)', fcgiAddress)
    .option('--app <file>', 'a module exporting an Express or Koa app, a (req, res) listener or an http.Server', appFile)
    .option('--root <dir>', 'with --fcgi: document root of the PHP application (SCRIPT_FILENAME = root + script)', directory)
    .option('--index <file>', 'script for paths ending in /', 'index.php')
    .option('--send-spec <addr>', "Mongrel2's send_spec (we PULL requests from it)", zmqSpec, 'tcp://127.0.0.1:9997')
    .option('--recv-spec <addr>', "Mongrel2's recv_spec (we PUB replies to it)", zmqSpec, 'tcp://127.0.0.1:9996')
    .option('--sender-id <id>', "sender id on replies (set it to the handler's recv_ident if that is not empty)", senderId)
    .option('--upload-dir <dir>', 'directory (on this machine) where Mongrel2 spools uploads (upload.temp_store); needed for temp-file uploads', directory)
    .option('--chroot <dir>', "Mongrel2's chroot on this machine (upload paths it reports are inside it)", directory, '/')
    .option('--max-inflight <n>', 'requests in flight per worker before answering 503', positiveInt('--max-inflight', 1_000_000), 1024)
    .option('--max-connections <n>', 'FastCGI connections per worker; keep workers × this ≤ pm.max_children (idle kept connections hold FPM workers)', positiveInt('--max-connections', 10_000), 4)
    .option('--fcgi-idle <seconds>', 'keep idle FastCGI connections this long (each holds an FPM worker); 0 = one connection per request, as nginx does by default', wholeNumber('--fcgi-idle', 3600), 30)
    .option('--timeout <seconds>', 'FastCGI connect and read timeout, then 504', positiveInt('--timeout', 86_400), 60)
    .option('--workers <n>', 'worker processes sharing the PULL socket (round-robin)', positiveInt('--workers', 256), 1)
    .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'))
    .option('--sendfile', 'turn X-Accel-Redirect / X-Sendfile responses into Mongrel2 sendfile replies', false)
    .exitOverride()
    .configureOutput({ writeOut: () => undefined, writeErr: () => undefined })
    .showHelpAfterError(false);
}

/** Parses argv (without node and script). Help and version are `ok: false` with exit code 0. */
export function parseBridgeArgs(argv: readonly string[]): ParseResult {
  const command = buildCommand();
  let output = '';
  command.configureOutput({ writeOut: (s) => (output += s), writeErr: (s) => (output += s) });
  try {
    command.parse([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      const help = err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version';
      return { ok: false, exitCode: help ? 0 : 2, output: help ? output : `${output.trim() || err.message}\nRun m2bridge --help for the options.\n` };
    }
    throw err;
  }
  const options = command.opts<BridgeCliOptions>();
  const problem =
    options.fcgi === undefined && options.app === undefined
      ? 'error: one of --fcgi or --app is required'
      : options.fcgi !== undefined && options.app !== undefined
        ? 'error: --fcgi and --app cannot be used together'
        : options.fcgi !== undefined && options.root === undefined
          ? "error: --fcgi needs --root (the PHP application's document root)"
          : undefined;
  if (problem) return { ok: false, exitCode: 2, output: `${problem}\nRun m2bridge --help for the options.\n` };
  return { ok: true, options };
}
