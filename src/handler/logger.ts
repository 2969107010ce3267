import { pino, type Logger } from 'pino';

export type { Logger };

/** The default logger: JSON lines on stderr, level from M2BRIDGE_LOG_LEVEL (default info). */
export function defaultLogger(name = 'm2bridge'): Logger {
  return pino({ name, level: process.env.M2BRIDGE_LOG_LEVEL ?? 'info' }, pino.destination(2));
}
