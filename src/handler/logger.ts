import { Writable } from 'node:stream';
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LoggerOptions {
  name?: string;
  level?: LevelWithSilent;
  /** Human-readable lines instead of JSON (default: when stderr is a TTY). */
  pretty?: boolean;
}

/** JSON lines on stderr (one short readable line each on a TTY); level from M2BRIDGE_LOG_LEVEL by default. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? (process.env.M2BRIDGE_LOG_LEVEL as LevelWithSilent | undefined) ?? 'info';
  const pretty = options.pretty ?? process.stderr.isTTY === true;
  return pino({ name: options.name ?? 'm2bridge', level }, pretty ? prettyStream() : pino.destination(2));
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const OMIT = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg']);

/** `12:00:00.123 WARN  message key=value ...`: enough for a terminal, no extra dependency. */
function prettyStream(): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        try {
          const rec = JSON.parse(line) as Record<string, unknown>;
          const time = new Date(Number(rec.time)).toISOString().slice(11, 23);
          const extra = Object.entries(rec)
            .filter(([k]) => !OMIT.has(k))
            .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
            .join(' ');
          process.stderr.write(`${time} ${(LEVELS[Number(rec.level)] ?? 'LOG').padEnd(5)} ${String(rec.msg ?? '')}${extra ? ' ' + extra : ''}\n`);
        } catch {
          process.stderr.write(line + '\n');
        }
      }
      done();
    },
  });
}
