/**
 * The server's `Filter(name=..., settings=...)` rows → loaded filters, like
 * Mongrel2's Filter_load (src/filter.c) with a JS/TS module instead of a .so:
 *
 *   init(server, settings)        (or filter_init) → the events it hooks: names
 *                                  ('HANDLER') or numbers (104), sync or async
 *   transition(event, conn, settings)  (or filter_transition) → the next event
 *
 * Named exports or methods of the default export. As in Mongrel2, a module
 * without both functions, an init that returns no events, or an event that is
 * not one of events.h stops the server from starting; here with an error
 * naming the module path and the filter row.
 */
import type { Logger } from '../../handler/logger.js';
import type { FilterConfig, ServerConfig } from '../../config/types.js';
import { importModule, moduleFunction } from '../../config/modules/module-exports.js';
import { describeValue, type ChainFilter, type Transition } from './chain.js';
import { toEvent, type EventName } from './events.js';

/** What a filter's init() gets as its server. */
export interface FilterServer {
  readonly config: ServerConfig;
  readonly log: Logger;
}

export class FilterLoadError extends Error {
  override readonly name = 'FilterLoadError';
}

export interface LoadFiltersOptions {
  /** Relative module paths resolve against this (default: the process cwd, i.e. before any chroot). */
  baseDir?: string;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Loads one filter. Rejects with a FilterLoadError naming the module. */
export async function loadFilter(config: FilterConfig, server: FilterServer, options: LoadFiltersOptions = {}): Promise<ChainFilter> {
  const where = `filter id=${config.id} ${config.name}`;
  const fail = (what: string): never => {
    throw new FilterLoadError(`${where}: ${what}`);
  };
  const ns = await importModule(config.name, 'filter module', options.baseDir).catch((err: unknown) => fail(message(err)));
  const init = moduleFunction(ns, ['init', 'filter_init']);
  const transition = moduleFunction(ns, ['transition', 'filter_transition']);
  if (!init) fail('the module exports no init (or filter_init) function');
  if (!transition) fail('the module exports no transition (or filter_transition) function');

  let hooked: unknown;
  try {
    hooked = await init!(server, config.settings);
  } catch (err) {
    fail(`init threw: ${message(err)}`);
  }
  if (!Array.isArray(hooked)) fail(`init returned ${describeValue(hooked)}, expected a list of events to hook`);
  const list = hooked as unknown[];
  if (list.length === 0) fail('init returned no events: nothing to do (Mongrel2 refuses such a filter too)');
  const events = new Set<EventName>();
  list.forEach((spec, i) => {
    const e = toEvent(spec);
    if (e === undefined) fail(`init returned ${describeValue(spec)} at index ${i}, which is no event (a name such as 'HANDLER' or a number 100..115)`);
    events.add(e!);
  });
  return { name: config.name, events, settings: config.settings, transition: transition as Transition };
}

/** Loads the server's filters in config order (the order the chain runs them). */
export async function loadFilters(configs: readonly FilterConfig[], server: FilterServer, options: LoadFiltersOptions = {}): Promise<ChainFilter[]> {
  const loaded: ChainFilter[] = [];
  for (const config of configs) loaded.push(await loadFilter(config, server, options));
  return loaded;
}
