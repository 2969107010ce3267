/**
 * A config module written by hand: one server whose port and handler specs
 * come from the environment, no config.sqlite at all.
 *
 *   M2_PORT=6767 mongrel2 ./public/ example examples/config-modules/env-rows.ts
 *
 * The module argument (`./public/` above) is the Dir base for '/static/'.
 * Each function returns rows in Mongrel2's column order (see ConfigSource in
 * src/config/source.ts); the server checks every cell as it would check
 * config.sqlite.
 */
import type { Table } from '../../src/config/source.js';

let base = '';

export function init(arg: string): number {
  base = arg.endsWith('/') ? arg : `${arg}/`;
  return 0;
}

export function close(): void {}

const env = (name: string, fallback: string): string => process.env[name] ?? fallback;

export const loadServer = (uuid: string): Table =>
  uuid === 'example'
    ? [[1, 'example', 'localhost', '127.0.0.1', Number(env('M2_PORT', '6767')), '', '/logs/access.log', '/logs/error.log', 2, '/run/mongrel2.pid', '', 0]]
    : [];
export const loadHosts = (): Table => [[1, 'localhost', 'localhost', 1]];
export const loadRoutes = (): Table => [
  [1, '/', 1, 'handler'],
  [2, '/static/', 1, 'dir'],
];
export const loadHandler = (id: number): Table =>
  id === 1 ? [[1, env('M2_SEND_SPEC', 'tcp://127.0.0.1:9999'), 'example', env('M2_RECV_SPEC', 'tcp://127.0.0.1:9998'), '', 0, 'json']] : [];
export const loadProxy = (): Table => [];
export const loadDir = (id: number): Table => (id === 1 ? [[1, base, 'index.html', 'text/plain', 0]] : []);
export const loadMimetypes = (): Table => [
  [1, '.html', 'text/html'],
  [2, '.css', 'text/css'],
  [3, '.js', 'application/javascript'],
];
export const loadSettings = (): Table => [[1, 'server.daemonize', '0']];
export const loadFilters = (): Table => [];
