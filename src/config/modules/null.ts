/**
 * Mongrel2's tools/config_modules/null.c as a config module: init() accepts
 * only the argument "goodpath", and every load function returns null, so a
 * server never starts from it (the first load, config_load_settings, fails
 * with "returned null, expected a table"). It shows the module interface and
 * how a refusal looks.
 *
 * null.c has no config_load_filters (it predates it, so the 1.13 server would
 * refuse it at dlsym); this one has one, so that init() is reached.
 */
const GOOD_PATH = 'goodpath';

export function config_init(path: string): number {
  return path === GOOD_PATH ? 0 : -1;
}

export function config_close(): void {}

const nothing = (): null => null;

export const config_load_handler = nothing;
export const config_load_proxy = nothing;
export const config_load_dir = nothing;
export const config_load_routes = nothing;
export const config_load_hosts = nothing;
export const config_load_server = nothing;
export const config_load_mimetypes = nothing;
export const config_load_settings = nothing;
export const config_load_filters = nothing;
