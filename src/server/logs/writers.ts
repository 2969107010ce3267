/**
 * The server's log files: the access log (raw tnetstring lines) and the error
 * log (a pino Logger). Both append, write asynchronously through sonic-boom
 * (pino.destination), so a slow disk never blocks the event loop, and both
 * reopen their path on demand: SIGHUP log rotation, as in Mongrel2.
 */
import { once } from 'node:events';
import { pino, type LevelWithSilent } from 'pino';
import { createLogger, type Logger } from '../../handler/logger.js';
import { formatAccessLine, type AccessLogEntry } from './access-log.js';

/** Lines held in memory while the disk is slower than the traffic; beyond this they are dropped and counted. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

export interface LogFileOptions {
  /** Errors after opening (write failures, a failed reopen). Default: one line on stderr. */
  onError?: (err: Error) => void;
}

type SonicBoom = ReturnType<typeof pino.destination>;

/** An open append-only file behind sonic-boom, in buffer mode so bytes are written as given. */
class LogFile {
  private readonly boom: SonicBoom;
  private closed: Promise<void> | undefined;

  private constructor(
    readonly path: string,
    boom: SonicBoom,
  ) {
    this.boom = boom;
  }

  /** Resolves once the file is open; rejects (with the path in the message) when it cannot be. */
  static async open(path: string, options: LogFileOptions): Promise<LogFile> {
    const boom = pino.destination({ dest: path, append: true, sync: false, minLength: 0, maxLength: MAX_BUFFERED_BYTES, contentMode: 'buffer' });
    try {
      await once(boom, 'ready');
    } catch (err) {
      // pino flushes its destinations synchronously at exit, which throws for one that never
      // opened; marking it destroyed makes that hook skip it.
      Object.assign(boom, { destroyed: true });
      throw new Error(`cannot open log file ${path}: ${(err as Error).message}`, { cause: err });
    }
    const onError = options.onError ?? ((err: Error) => process.stderr.write(`m2bridge: log file ${path}: ${err.message}\n`));
    boom.on('error', onError);
    return new LogFile(path, boom);
  }

  write(bytes: Buffer): void {
    if (this.closed) return;
    // sonic-boom's typings only know its utf8 mode; in buffer mode write takes Buffers.
    (this.boom.write as unknown as (data: Buffer) => boolean).call(this.boom, bytes);
  }

  /** Reopens the same path (a rotated file is left to its new name); writes queued meanwhile go to the new file. */
  reopen(): void {
    if (!this.closed) this.boom.reopen();
  }

  /** Flushes everything written so far, then closes the file. Idempotent. */
  close(): Promise<void> {
    this.closed ??= new Promise<void>((resolve) => {
      this.boom.once('close', () => resolve());
      this.boom.end();
    });
    return this.closed;
  }
}

/** The access log: one formatted line per entry, appended without blocking. */
export class AccessLog {
  private constructor(private readonly file: LogFile) {}

  static async open(path: string, options: LogFileOptions = {}): Promise<AccessLog> {
    return new AccessLog(await LogFile.open(path, options));
  }

  get path(): string {
    return this.file.path;
  }

  write(entry: AccessLogEntry): void {
    this.file.write(formatAccessLine(entry));
  }

  /** Log rotation (SIGHUP): later lines go to a fresh file at the same path. */
  reopen(): void {
    this.file.reopen();
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

/** Mongrel2's error_log_level: 0 = error, 1 = warn, 2 = info (default), 3 = debug. */
export function errorLogLevel(level: number): LevelWithSilent {
  if (!Number.isInteger(level)) throw new RangeError(`error_log_level must be an integer 0..3, got ${level}`);
  if (level <= 0) return 'error';
  if (level === 1) return 'warn';
  if (level === 2) return 'info';
  return 'debug';
}

export interface ErrorLog {
  readonly logger: Logger;
  /** Log rotation (SIGHUP); a no-op on stderr. */
  reopen(): void;
  /** Flushes and closes the file; a no-op on stderr. */
  close(): Promise<void>;
}

export interface ErrorLogOptions extends LogFileOptions {
  /** The logger's `name` field (default 'mongrel2'). */
  name?: string;
}

/**
 * The server's error log at Mongrel2 `level` (0..3; beyond 3 is debug, below 0 error).
 * `'stderr'` gives the project's usual stderr logger; a path gives JSON lines
 * with ISO times, appended to that file.
 */
export async function createErrorLog(target: string, level: number, options: ErrorLogOptions = {}): Promise<ErrorLog> {
  const name = options.name ?? 'mongrel2';
  const pinoLevel = errorLogLevel(level);
  if (target === 'stderr') {
    return { logger: createLogger({ name, level: pinoLevel }), reopen: () => {}, close: async () => {} };
  }
  const file = await LogFile.open(target, options);
  // pino writes strings; a utf8 view of the same file keeps the bytes exact.
  const sink = { write: (line: string) => file.write(Buffer.from(line, 'utf8')) };
  const logger = pino({ name, level: pinoLevel, timestamp: pino.stdTimeFunctions.isoTime }, sink);
  return { logger, reopen: () => file.reopen(), close: () => file.close() };
}
