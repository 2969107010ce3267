/**
 * The manual's MP3 streaming demo (§5.6, examples/mp3stream/) in
 * TypeScript: one playlist played in real time to every listener at once.
 *
 * Each tick takes the next `metaint` bytes of the playlist and sends them to
 * all listeners with ONE reply per group of up to 128 connection ids (N:M:
 * Mongrel2 copies the message to each connection). Clients that sent
 * `Icy-MetaData: 1` get an ICY metadata block after every `metaint` audio
 * bytes; for that to land at the right offset for everyone, a new listener
 * only joins the delivery at the next block boundary, and gets the current
 * title on its first block. Ticks are paced by the clock at the stream's
 * byte rate (128 kbit/s by default), from a fixed start time so they do
 * not drift.
 *
 *   node --import tsx examples/mp3stream/handler.ts [--dir DIR_WITH_MP3S] [--metaint 8192]
 *   mplayer http://localhost:6767/mp3stream
 *
 * Without .mp3 files it plays generated silence (see silence.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createLogger, type Connection, type Request } from '../../src/handler/index.js';
import { SAMPLE, commandLine, intFlag, isMain, runUntilSignal, serve, type Demo, type DemoOptions } from '../support/demo.js';
import { BYTES_PER_SECOND, silentMp3 } from './silence.js';
import { NO_METADATA, icyHead, titleBlock, wantsMetadata } from './icy.js';
import { Playlist, type Track } from './playlist.js';

export interface Mp3StreamOptions extends DemoOptions {
  /** What to play, in a loop (default: two tracks of generated silence). */
  tracks?: readonly Track[];
  /** Audio bytes between metadata blocks, = bytes per tick (default 8192, as the manual). */
  metaint?: number;
  /** Playback speed in bytes per second (default 16000 = 128 kbit/s, the speed of the audio). */
  bytesPerSecond?: number;
  /** `icy-name` (default "Mongrel2 Radio"). */
  name?: string;
  /** More listeners than this get a 503, as the manual's "Too Many Connected" (default 1000). */
  maxListeners?: number;
}

export interface Mp3StreamDemo extends Demo {
  /** Connection ids currently receiving the stream (or about to, at the next block). */
  listeners(): number[];
}

export const DEFAULT_TRACKS: readonly Track[] = [
  { title: 'Generated silence, part one', data: silentMp3(5) },
  { title: 'Generated silence, part two', data: silentMp3(5) },
];

export function start(options: Mp3StreamOptions): Mp3StreamDemo {
  const log = options.logger ?? createLogger({ name: 'mp3stream' });
  const metaint = options.metaint ?? 8192;
  const intervalMs = (metaint * 1000) / (options.bytesPerSecond ?? BYTES_PER_SECOND);
  const name = options.name ?? 'Mongrel2 Radio';
  const maxListeners = options.maxListeners ?? 1000;
  const playlist = new Playlist(options.tracks ?? DEFAULT_TRACKS);

  // Listeners by kind; `joining` ones get their first block at the next tick.
  const withMeta = new Set<number>();
  const joining = new Set<number>();
  const plain = new Set<number>();
  let sender = '';
  let timer: NodeJS.Timeout | undefined;
  let startedAt = 0;
  let ticks = 0;
  let stopped = false;

  const count = (): number => withMeta.size + joining.size + plain.size;

  const tick = (conn: Connection): void => {
    timer = undefined;
    if (count() === 0 || stopped) return; // idle until the next listener
    const { audio, changed, title } = playlist.next(metaint);
    const titled = Buffer.concat([audio, titleBlock(title)]);
    if (changed) {
      void conn.deliver(sender, [...withMeta, ...joining], titled);
    } else {
      if (withMeta.size > 0) void conn.deliver(sender, withMeta, Buffer.concat([audio, NO_METADATA]));
      if (joining.size > 0) void conn.deliver(sender, joining, titled);
    }
    if (plain.size > 0) void conn.deliver(sender, plain, audio);
    for (const id of joining) withMeta.add(id);
    joining.clear();
    schedule(conn);
  };

  const schedule = (conn: Connection): void => {
    if (timer !== undefined || stopped) return;
    if (ticks === 0) startedAt = performance.now();
    const due = startedAt + ticks * intervalMs;
    ticks++;
    timer = setTimeout(() => tick(conn), Math.max(0, due - performance.now()));
  };

  const leave = (connId: number): void => {
    if (!withMeta.delete(connId) && !joining.delete(connId) && !plain.delete(connId)) return;
    log.info({ connId, listeners: count() }, 'listener left');
    if (count() === 0) {
      clearTimeout(timer);
      timer = undefined;
      ticks = 0;
    }
  };

  const demo = serve(
    { ...options, logger: log },
    (req: Request, conn: Connection) => {
      if (req.kind !== 'http') return;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        void conn.replyHttp(req, 'only GET and HEAD\n', { status: 405, headers: { Allow: 'GET, HEAD' } });
        return;
      }
      if (count() >= maxListeners) {
        void conn.replyHttp(req, 'Too Many Connected. Try Later.\n', { status: 503, close: true });
        return;
      }
      const meta = wantsMetadata(req.headers);
      void conn.reply(req, icyHead(name, meta ? metaint : undefined));
      if (req.method === 'HEAD') {
        void conn.close(req);
        return;
      }
      sender = req.sender;
      (meta ? joining : plain).add(req.connId);
      log.info({ connId: req.connId, metadata: meta, listeners: count() }, 'listener joined');
      schedule(conn);
    },
    () => {
      stopped = true;
      clearTimeout(timer);
      const everyone = [...withMeta, ...joining, ...plain];
      if (everyone.length > 0) void demo.connection.deliverClose(sender, everyone);
    },
  );
  demo.connection.on('disconnect', (n) => leave(n.connId));
  return { ...demo, listeners: () => [...withMeta, ...joining, ...plain] };
}

/** The *.mp3 files of a directory as tracks, titled by file name. */
export function tracksFromDir(dir: string): Track[] {
  return readdirSync(dir)
    .filter((f) => f.toLowerCase().endsWith('.mp3'))
    .sort()
    .map((f) => ({ title: path.basename(f, path.extname(f)), data: readFileSync(path.join(dir, f)) }))
    .filter((t) => t.data.length > 0);
}

if (isMain(import.meta.url)) {
  const { demo, flags } = commandLine('mp3stream/handler.ts', SAMPLE.mp3stream, {
    dir: { type: 'string', description: 'play the .mp3 files of this directory (default: generated silence)' },
    metaint: { type: 'string', description: 'audio bytes between ICY metadata blocks (default 8192)' },
  });
  const tracks = flags.dir === undefined ? undefined : tracksFromDir(flags.dir);
  if (tracks?.length === 0) {
    process.stderr.write(`mp3stream: no non-empty .mp3 files in ${flags.dir}\n`);
    process.exit(2);
  }
  const metaint = intFlag('metaint', flags.metaint, 8192, 1, 1 << 20);
  const titles = (tracks ?? DEFAULT_TRACKS).map((t) => t.title).join(', ');
  await runUntilSignal(start({ ...demo, tracks, metaint }), `mp3stream on ${demo.sendSpec}, playing: ${titles}\ntry mplayer http://localhost:6767/mp3stream`);
}
