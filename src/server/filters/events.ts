/**
 * Mongrel2's state-machine events (src/events.h), by name and number. Filters
 * hook and return events by either; inside m2bridge they travel as names.
 */
export const EVENTS = {
  CLOSE: 100,
  CONNECT: 101,
  DIRECTORY: 102,
  FAILED: 103,
  HANDLER: 104,
  HTTP_REQ: 105,
  MSG_REQ: 106,
  OPEN: 107,
  PROXY: 108,
  REMOTE_CLOSE: 109,
  REQ_RECV: 110,
  REQ_SENT: 111,
  RESP_SENT: 112,
  SOCKET_REQ: 113,
  TIMEOUT: 114,
  WS_REQ: 115,
} as const;

export type EventName = keyof typeof EVENTS;
/** What a filter may write for an event: its name (any case) or its number. */
export type EventSpec = EventName | (typeof EVENTS)[EventName];

const BY_NUMBER = new Map<number, EventName>(Object.entries(EVENTS).map(([name, n]) => [n, name as EventName]));

/** A name (case-insensitive) or number → the event, or undefined when it is none. */
export function toEvent(value: unknown): EventName | undefined {
  if (typeof value === 'number') return BY_NUMBER.get(value);
  if (typeof value !== 'string') return undefined;
  const name = value.toUpperCase();
  return Object.hasOwn(EVENTS, name) ? (name as EventName) : undefined;
}

export function eventNumber(event: EventName): number {
  return EVENTS[event];
}
