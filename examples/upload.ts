/**
 * The manual's async upload demo (§5.5, examples/http_0mq/upload.py).
 * Mongrel2 spools a body bigger than `limits.content_length` to a temp file
 * (`upload.temp_store`) and tells the handler twice: when it starts (only
 * headers) and when it is done. On the start message this handler decides:
 * too big, and it answers 413 and sends the kill message (Mongrel2 closes
 * the connection and removes the temp file). On the done message it reads
 * the file through `openUpload` (which checks that both headers name the same
 * file inside the upload directory) and answers its md5.
 *
 *   node --import tsx examples/upload.ts --upload-dir /srv/m2/tmp [--chroot /srv/m2] [--max-bytes 10485760]
 *   curl -T big.file http://localhost:6767/handlertest
 */
import { createHash } from 'node:crypto';
import { createLogger, UploadError, type Connection, type Request } from '../src/handler/index.js';
import { headerValue, type HttpRequest } from '../src/protocol/index.js';
import { SAMPLE, commandLine, intFlag, isMain, runUntilSignal, serve, type Demo, type DemoOptions } from './support/demo.js';
import { dumpRequest } from './handlertest.js';

export interface UploadDemoOptions extends DemoOptions {
  /** Where Mongrel2's `upload.temp_store` files are, on this machine. */
  uploadDir: string;
  /** Mongrel2's chroot on this machine (upload paths are reported inside it). Default `/`. */
  chroot?: string;
  /** Uploads announcing more bytes than this are killed at the start message (default 10 MiB). */
  maxBytes?: number;
}

export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;

export function start(options: UploadDemoOptions): Demo {
  const log = options.logger ?? createLogger({ name: 'upload' });
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;

  const onStart = (req: HttpRequest, conn: Connection): void => {
    const length = Number(headerValue(req.headers, 'content-length'));
    if (Number.isSafeInteger(length) && length <= maxBytes) {
      log.info({ connId: req.connId, length }, 'upload starting, no reply yet');
      return;
    }
    // A reply and then the kill message: Mongrel2 stops reading the body,
    // closes the connection and unlinks the temp file.
    log.warn({ connId: req.connId, length, maxBytes }, 'upload too big: killed');
    void conn.replyHttp(req, `UPLOAD TOO BIG: ${length} bytes, at most ${maxBytes}\n`, { status: 413, close: true });
  };

  const onDone = async (req: HttpRequest, conn: Connection): Promise<void> => {
    let file;
    try {
      file = await conn.openUpload(req);
    } catch (err) {
      if (!(err instanceof UploadError)) throw err;
      log.warn({ connId: req.connId, err: err.message }, 'refused an upload');
      void conn.replyHttp(req, `BAD UPLOAD: ${err.message}\n`, { status: 400 });
      return;
    }
    const md5 = createHash('md5');
    try {
      for await (const chunk of file.open()) md5.update(chunk as Buffer);
    } finally {
      // Mongrel2 leaves a finished upload to the handler; it is gone before the answer goes.
      await file.remove();
    }
    void conn.replyHttp(req, `UPLOAD GOOD: ${md5.digest('hex')} ${file.size} bytes\n`);
  };

  return serve({ ...options, logger: log, uploads: { dir: options.uploadDir, root: options.chroot } }, (req: Request, conn: Connection) => {
    if (req.kind !== 'http') return;
    if (req.upload?.mode === 'file' && req.upload.phase === 'start') return onStart(req, conn);
    if (req.upload?.mode === 'file' && req.upload.phase === 'done') return onDone(req, conn);
    // Small bodies arrive inline: answer like the handler test.
    void conn.replyHttp(req, dumpRequest(req), { headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
  });
}

if (isMain(import.meta.url)) {
  const { demo, flags } = commandLine('upload.ts', SAMPLE.handlertest, {
    'upload-dir': { type: 'string', description: "directory of Mongrel2's upload.temp_store on this machine (required)" },
    chroot: { type: 'string', description: "Mongrel2's chroot on this machine (default /)" },
    'max-bytes': { type: 'string', description: `kill uploads bigger than this (default ${DEFAULT_MAX_BYTES})` },
  });
  if (flags['upload-dir'] === undefined) {
    process.stderr.write('upload.ts: --upload-dir is required (where upload.temp_store puts its files)\n');
    process.exit(2);
  }
  const maxBytes = intFlag('max-bytes', flags['max-bytes'], DEFAULT_MAX_BYTES, 0, Number.MAX_SAFE_INTEGER);
  await runUntilSignal(start({ ...demo, uploadDir: flags['upload-dir'], chroot: flags.chroot, maxBytes }), `upload demo on ${demo.sendSpec}: try curl -T big.file http://localhost:6767/handlertest`);
}
