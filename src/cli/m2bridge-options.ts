/**
 * The m2bridge command line, parsed and checked before anything starts (the
 * only I/O is reading a --config file and checking the paths it names), so
 * that every bad flag gets one clear message and exit 2.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { isValidSender } from '../protocol/reply.js';
import { fcgiAddressProblem, httpUrlProblem, LIMITS, parseBridgeConfig, type BackendSpec, type BridgeConfig } from '../bridge/route-map.js';

export interface BridgeCliOptions {
  /** Exactly one of fcgi, http, app and config is set. */
  fcgi?: string;
  http?: string;
  app?: string;
  /** A bridge.json file (absolute path): named backends and the routes to them. */
  config?: string;
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
  /** Connections per worker to each backend; unset = the backend's default (FastCGI 4, HTTP 128). */
  maxConnections?: number;
  /** Seconds an idle FastCGI connection is kept; 0 = a new connection per request. */
  fcgiIdle: number;
  /** --http: pass on the client's X-Forwarded-* (Mongrel2 is behind a trusted proxy). */
  trustForwarded: boolean;
  /** Validate, print what was found, and exit. */
  check: boolean;
}

/** What to serve: one backend (the flags) or a config file's backends and routes. */
export type ServePlan = { kind: 'single'; spec: BackendSpec } | { kind: 'routes'; file: string; config: BridgeConfig; warnings: readonly string[] };

export type ParseResult = { ok: true; options: BridgeCliOptions; plan: ServePlan } | { ok: false; exitCode: number; output: string };

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
  const problem = fcgiAddressProblem(value);
  if (problem) throw new InvalidArgumentError(problem === 'expected host:port or unix:/path' ? 'expected HOST:PORT or unix:/absolute/path.' : `${problem}.`);
  return value;
}

function httpUrl(value: string): string {
  const problem = httpUrlProblem(value);
  if (problem) throw new InvalidArgumentError(`${JSON.stringify(value)}: ${problem}.`);
  return value;
}

function configFile(value: string): string {
  if (value === '') throw new InvalidArgumentError('expected a JSON file.');
  return path.resolve(value);
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
    .description('Put a FastCGI (PHP-FPM) application, an HTTP server or an in-process Node app behind Mongrel2 - or several, routed by a config file.')
    .option('--fcgi <address>', 'FastCGI server: HOST:PORT or unix:/path (needs --root)', fcgiAddress)
    .option('--http <url>', 'HTTP server to proxy to: http(s)://host:port[/base-path]', httpUrl)
    .option('--app <file>', 'a module exporting an Express or Koa app, a (req, res) listener or an http.Server', appFile)
    .option('--config <file>', 'bridge.json: named backends (fcgi, http, app) and the routes to them; the flags below are their defaults', configFile)
    .option('--check', 'validate the flags (and the --config file), print the result and exit: 0 if valid, 2 if not', false)
    .option('--root <dir>', 'with --fcgi: document root of the PHP application (SCRIPT_FILENAME = root + script)', directory)
    .option('--index <file>', 'script for paths ending in /', 'index.php')
    .option('--send-spec <addr>', "Mongrel2's send_spec (we PULL requests from it)", zmqSpec, 'tcp://127.0.0.1:9997')
    .option('--recv-spec <addr>', "Mongrel2's recv_spec (we PUB replies to it)", zmqSpec, 'tcp://127.0.0.1:9996')
    .option('--sender-id <id>', "sender id on replies (set it to the handler's recv_ident if that is not empty)", senderId)
    .option('--upload-dir <dir>', 'directory (on this machine) where Mongrel2 spools uploads (upload.temp_store); needed for temp-file uploads', directory)
    .option('--chroot <dir>', "Mongrel2's chroot on this machine (upload paths it reports are inside it)", directory, '/')
    .option('--max-inflight <n>', 'requests in flight per worker before answering 503', positiveInt('--max-inflight', 1_000_000), 1024)
    .option('--max-connections <n>', 'connections per worker to the backend (default: FastCGI 4, HTTP 128); for FastCGI keep workers × this ≤ pm.max_children (idle kept connections hold FPM workers)', positiveInt('--max-connections', LIMITS.maxConnections.max))
    .option('--fcgi-idle <seconds>', 'keep idle FastCGI connections this long (each holds an FPM worker); 0 = one connection per request, as nginx does by default', wholeNumber('--fcgi-idle', LIMITS.idle.max), 30)
    .option('--timeout <seconds>', 'backend read timeout (FastCGI and HTTP: connect ≤ 10 s, then head and body silence; app: time to the response head), then 504', positiveInt('--timeout', LIMITS.timeout.max), 60)
    .option('--trust-forwarded', "with --http: pass on the client's X-Forwarded-For/-Proto/-Host (only when Mongrel2 sits behind a proxy you trust)", false)
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
  const fail = (problem: string): ParseResult => ({ ok: false, exitCode: 2, output: `error: ${problem}\nRun m2bridge --help for the options.\n` });
  const modes = (['fcgi', 'http', 'app', 'config'] as const).filter((m) => options[m] !== undefined);
  if (modes.length === 0) return fail('one of --fcgi, --http, --app or --config is required');
  if (modes.length > 1) return fail(`${modes.map((m) => `--${m}`).join(' and ')} cannot be used together (give several backends in a --config file)`);
  if (options.fcgi !== undefined && options.root === undefined) return fail("--fcgi needs --root (the PHP application's document root)");
  if (options.root !== undefined && options.fcgi === undefined) return fail('--root only applies to --fcgi (in a --config file, give each fcgi backend its "root")');
  if (options.trustForwarded && options.http === undefined && options.config === undefined) return fail('--trust-forwarded only applies to --http (or http backends of a --config file)');

  let plan: ServePlan;
  if (options.config !== undefined) {
    const loaded = loadBridgeConfig(options.config);
    if (!loaded.ok) return { ok: false, exitCode: 2, output: `${[...loaded.errors.map((e) => `error: ${e}`), ...loaded.warnings.map((w) => `warning: ${w}`)].join('\n')}\n` };
    plan = { kind: 'routes', file: options.config, config: withDefaults(loaded.config, options), warnings: loaded.warnings };
  } else {
    plan = { kind: 'single', spec: singleSpec(options) };
  }
  if (options.check) {
    const what = plan.kind === 'routes' ? `${plan.file}: ${plan.config.backends.size} backend(s), ${plan.config.routes.length} route(s)` : `one ${plan.spec.type} backend`;
    const warnings = plan.kind === 'routes' ? plan.warnings.map((w) => `warning: ${w}\n`).join('') : '';
    return { ok: false, exitCode: 0, output: `${warnings}m2bridge: configuration OK (${what})\n` };
  }
  return { ok: true, options, plan };
}

/** The per-backend options the flags give (their own defaults included), for a backend of this type. */
function flagDefaults(type: BackendSpec['type'], o: BridgeCliOptions): Partial<BackendSpec> {
  const connections = o.maxConnections !== undefined ? { maxConnections: o.maxConnections } : {};
  if (type === 'fcgi') return { index: o.index, sendfile: o.sendfile, idle: o.fcgiIdle, timeout: o.timeout, ...connections };
  if (type === 'http') return { trustForwarded: o.trustForwarded, timeout: o.timeout, ...connections };
  return { timeout: o.timeout };
}

/** The one backend the flags describe. */
function singleSpec(o: BridgeCliOptions): BackendSpec {
  if (o.fcgi !== undefined) return { ...flagDefaults('fcgi', o), type: 'fcgi', address: o.fcgi, root: o.root! };
  if (o.http !== undefined) return { ...flagDefaults('http', o), type: 'http', url: o.http };
  return { ...flagDefaults('app', o), type: 'app', file: o.app! };
}

/** Config backends, with every option a backend leaves out taken from the flags. */
function withDefaults(config: BridgeConfig, o: BridgeCliOptions): BridgeConfig {
  const backends = new Map<string, BackendSpec>();
  for (const [name, spec] of config.backends) backends.set(name, { ...flagDefaults(spec.type, o), ...spec } as BackendSpec);
  return { backends, routes: config.routes };
}

/**
 * Reads and checks a bridge.json, then the paths it names: each fcgi root
 * must be a directory and each app file must exist (caught here, not at the
 * first request).
 */
export function loadBridgeConfig(file: string): ReturnType<typeof parseBridgeConfig> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { ok: false, errors: [`${file}: cannot read the config file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`], warnings: [] };
  }
  const parsed = parseBridgeConfig(text, file);
  if (!parsed.ok) return parsed;
  const errors: string[] = [];
  for (const [name, spec] of parsed.config.backends) {
    const [key, p, kind] = spec.type === 'fcgi' ? (['root', spec.root, 'directory'] as const) : spec.type === 'app' ? (['file', spec.file, 'file'] as const) : [];
    if (p === undefined) continue;
    let st;
    try {
      st = statSync(p);
    } catch (err) {
      errors.push(`${file}: backends.${name}.${key}: ${p}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (err as Error).message}`);
      continue;
    }
    if (kind === 'directory' ? !st.isDirectory() : !st.isFile()) errors.push(`${file}: backends.${name}.${key}: ${p}: not a ${kind}`);
  }
  return errors.length > 0 ? { ok: false, errors, warnings: parsed.warnings } : parsed;
}
