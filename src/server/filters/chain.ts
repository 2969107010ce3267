/**
 * Mongrel2's filter rules (src/filter.c Filter_run, src/connection.c
 * Connection_task), pure: before the core acts on an event it asks the chain,
 * which runs the filters hooked on that event in load order while each one
 * returns that same event. The first filter that returns another event stops
 * the chain and its event replaces the pending one (it is not filtered again);
 * CLOSE ends the connection.
 *
 * m2bridge choices, where Mongrel2 would crash or has no equivalent:
 * - A transition that throws or rejects, or returns something that is no event,
 *   is logged (naming the module) and counts as CLOSE: a broken filter fails
 *   closed, never open. (Mongrel2 closes on an invalid event too.)
 * - run() answers synchronously when every transition did, so unfiltered
 *   events cost no promise; it returns a Promise only once a transition does.
 */
import type { Logger } from '../../handler/logger.js';
import { toEvent, type EventName, type EventSpec } from './events.js';

/** The request a filter sees; absent before the first request is parsed (OPEN, REQ_RECV). */
export interface FilterRequest {
  readonly method: string;
  readonly uri: string;
  readonly path: string;
  readonly query: string | undefined;
  readonly version: string;
  /** In arrival order, names as sent. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** The first value of a header, by case-insensitive name. */
  header(name: string): string | undefined;
}

/** What a filter may see of and do to a connection. */
export interface FilterConnection {
  readonly id: number;
  readonly remoteAddr: string;
  readonly remotePort: number;
  readonly request: FilterRequest | undefined;
  /**
   * Sends a complete short response (filterResponse bytes: the reason phrase
   * or `body`, Connection: close). Return CLOSE afterwards so the core closes
   * the connection once it is written.
   */
  respond(status: number, body?: string): void;
}

export type Transition = (event: EventName, conn: FilterConnection, settings: Readonly<Record<string, unknown>>) => unknown;

/** One loaded filter (loader.ts makes these from the config's Filter rows). */
export interface ChainFilter {
  /** The module path as configured: the name in logs. */
  readonly name: string;
  readonly events: ReadonlySet<EventName>;
  readonly settings: Readonly<Record<string, unknown>>;
  readonly transition: Transition;
}

export type { EventName, EventSpec };

export class FilterChain {
  private readonly byEvent = new Map<EventName, ChainFilter[]>();

  constructor(
    filters: readonly ChainFilter[],
    private readonly log?: Logger,
  ) {
    for (const f of filters) {
      for (const e of f.events) {
        const list = this.byEvent.get(e) ?? [];
        list.push(f);
        this.byEvent.set(e, list);
      }
    }
  }

  /** True when some filter hooks `event` (the core can skip building a view otherwise). */
  hooks(event: EventName): boolean {
    return this.byEvent.has(event);
  }

  /**
   * The event the core must act on instead of `event`: `event` itself when
   * every hooked filter passed it on. For a pending CLOSE the filters run but
   * the connection closes whatever they return.
   */
  run(event: EventName, conn: FilterConnection): EventName | Promise<EventName> {
    const filters = this.byEvent.get(event);
    return filters ? this.step(filters, 0, event, conn) : event;
  }

  private step(filters: readonly ChainFilter[], from: number, event: EventName, conn: FilterConnection): EventName | Promise<EventName> {
    for (let i = from; i < filters.length; i++) {
      const filter = filters[i]!;
      let result: unknown;
      try {
        result = filter.transition(event, conn, filter.settings);
      } catch (err) {
        return this.failed(filter, event, conn, `threw: ${describeError(err)}`);
      }
      if (isPromiseLike(result)) {
        return Promise.resolve(result).then(
          (value) => {
            const next = this.next(filter, event, conn, value);
            return next === event ? this.step(filters, i + 1, event, conn) : next;
          },
          (err: unknown) => this.failed(filter, event, conn, `rejected: ${describeError(err)}`),
        );
      }
      const next = this.next(filter, event, conn, result);
      if (next !== event) return next;
    }
    return event;
  }

  private next(filter: ChainFilter, event: EventName, conn: FilterConnection, value: unknown): EventName {
    const next = toEvent(value);
    if (next === undefined) return this.failed(filter, event, conn, `returned ${describeValue(value)}, which is no event (a name such as 'HANDLER' or a number 100..115)`);
    return next;
  }

  private failed(filter: ChainFilter, event: EventName, conn: FilterConnection, what: string): 'CLOSE' {
    this.log?.error({ conn: conn.id, filter: filter.name, event }, `filter ${filter.name} ${what}; closing the connection`);
    return 'CLOSE';
  }
}

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as { then?: unknown }).then === 'function';
}

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A value a filter returned, for error messages. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'undefined';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
