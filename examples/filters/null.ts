/**
 * Mongrel2's tools/filters/null.c as an m2bridge filter: it hooks HANDLER and
 * PROXY, logs its settings (rendered as a tnetstring, as null.c does) and
 * closes the connection, so no request ever reaches a handler or a proxy.
 *
 *   Filter(name="examples/filters/null.ts", settings={"any": "thing"})
 */
import type { Logger } from '../../src/handler/logger.js';
import { encode, type TValue } from '../../src/protocol/tnetstring.js';
import type { EventName, FilterConnection } from '../../src/server/filters/chain.js';
import type { FilterServer } from '../../src/server/filters/loader.js';

let log: Logger | undefined;

export function init(server: FilterServer): EventName[] {
  log = server.log;
  return ['HANDLER', 'PROXY'];
}

export function transition(event: EventName, conn: FilterConnection, settings: Readonly<Record<string, unknown>>): EventName {
  log?.info({ conn: conn.id, event }, `CONFIG: ${encode(settings as TValue).toString('utf8')}`);
  return 'CLOSE';
}
