/**
 * The server's log files: the access log (raw tnetstring lines) and the error
 * log (a pino Logger). Both append, write asynchronously through sonic-boom
 * (pino.destination), so a slow disk never blocks the event loop, and both
 * reopen their path on demand: SIGHUP log rotation, as in Mongrel2.
 *
 * Access-log lines are batched (one line per request would be one write,
 * i.e. one thread-pool job, per request): they go to the file once
 * BATCH_BYTES are pending or BATCH_MS after the first pending line, and
 * before a reopen, a close or the process exiting.
 */
import { once } from 'node:events';
import { pino, type LevelWithSilent } from 'pino';
import { createLogger, type Logger } from '../../handler/logger.js';
import { accessLineText, type AccessLogEntry } from './access-log.js';

/** Lines held in memory while the disk is slower than the traffic; beyond this they are dropped and counted. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
/** A batched file writes once this much is pending... */
const BATCH_BYTES = 16 * 1024;
/** ...or this long after the first pending line. */
const BATCH_MS = 100;

export interface LogFileOptions {
  /** Errors after opening (write failures, a failed reopen). Default: one line on stderr. */
  onError?: (err: Error) => void;
}

interface OpenOptions extends LogFileOptions {
  /** Hold writes for up to BATCH_MS / BATCH_BYTES. */
  batch?: boolean;
}

type SonicBoom = ReturnType<typeof pino.destination>;

/** An open append-only file behind sonic-boom, in buffer mode so bytes are written as given. */
class LogFile {
  private readonly boom: SonicBoom;
  private closed: Promise<void> | undefined;
  /** Batched lines as latin1 text (one char per byte): one encode per batch, not per line. */
  private pending = '';
  private timer: NodeJS.Timeout | undefined;
  /** A reopen not finished yet: sonic-boom drops an end() that comes while a write delays the reopen. */
  private reopening = false;
  /** Hands what is pending to sonic-boom and writes it synchronously: nothing logged is lost on exit. */
  private readonly onExit = (): void => {
    this.flush();
    try {
      this.boom.flushSync();
    } catch {
      // not open or already closed: nothing more can be written
    }
  };

  private constructor(
    readonly path: string,
    boom: SonicBoom,
    private readonly batch: boolean,
  ) {
    this.boom = boom;
    const reopened = (): void => {
      this.reopening = false;
    };
    boom.on('ready', reopened);
    boom.on('error', reopened);
    if (batch) process.once('exit', this.onExit);
  }

  /** Resolves once the file is open; rejects (with the path in the message) when it cannot be. */
  static async open(path: string, options: OpenOptions): Promise<LogFile> {
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
    return new LogFile(path, boom, options.batch === true);
  }

  /** Written at once (after any batched lines). */
  write(bytes: Buffer): void {
    if (this.closed) return;
    this.flush();
    this.hand(bytes);
  }

  /** Latin1 text (one char per byte), batched when the file batches. */
  append(latin1: string): void {
    if (this.closed) return;
    if (!this.batch) return this.hand(Buffer.from(latin1, 'latin1'));
    this.pending += latin1;
    if (this.pending.length >= BATCH_BYTES) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), BATCH_MS).unref();
  }

  /** Passes the pending batch on to sonic-boom, which writes it at once. */
  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const bytes = Buffer.from(this.pending, 'latin1');
    this.pending = '';
    this.hand(bytes);
  }

  private hand(bytes: Buffer): void {
    // sonic-boom's typings only know its utf8 mode; in buffer mode write takes Buffers.
    (this.boom.write as unknown as (data: Buffer) => boolean).call(this.boom, bytes);
  }

  /** Reopens the same path (a rotated file is left to its new name); lines still queued then may land in either file, none is lost. */
  reopen(): void {
    if (this.closed) return;
    this.flush();
    this.reopening = true;
    this.boom.reopen();
  }

  /** Flushes everything written so far, then closes the file. Idempotent. */
  close(): Promise<void> {
    this.closed ??= new Promise<void>((resolve) => {
      this.flush();
      process.off('exit', this.onExit);
      this.boom.once('close', () => resolve());
      if (!this.reopening) return void this.boom.end();
      const end = (): void => {
        this.boom.off('ready', end).off('error', end);
        this.boom.end();
      };
      this.boom.once('ready', end).once('error', end);
    });
    return this.closed;
  }
}

/** The access log: one formatted line per entry, appended without blocking. */
export class AccessLog {
  private constructor(private readonly file: LogFile) {}

  static async open(path: string, options: LogFileOptions = {}): Promise<AccessLog> {
    return new AccessLog(await LogFile.open(path, { ...options, batch: true }));
  }

  get path(): string {
    return this.file.path;
  }

  write(entry: AccessLogEntry): void {
    this.file.append(accessLineText(entry));
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
