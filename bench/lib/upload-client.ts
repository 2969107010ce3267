/**
 * Streams one big request body (a Content-Length POST) to 127.0.0.1:PORT
 * without holding it in memory: one 256 KiB pattern buffer written again
 * and again, with backpressure. Resolves with the response once it is
 * complete (Content-Length) or the server closed; an early answer (413, 400)
 * stops the sending.
 */
import * as net from 'node:net';

export interface UploadResult {
  status: number | null;
  /** The response body (latin1), or what arrived before the close. */
  body: string;
  /** Body bytes handed to the socket. */
  sent: number;
  /** From connect to the complete response, ms. */
  ms: number;
  error?: string;
}

const CHUNK = Buffer.alloc(256 * 1024, 'm2bridge upload bench ');

export function streamUpload(port: number, reqPath: string, bytes: number, timeoutMs: number): Promise<UploadResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const sock = net.connect({ host: '127.0.0.1', port });
    let got = Buffer.alloc(0);
    let sent = 0;
    let finished = false;
    const finish = (error?: string): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      const text = got.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const status = /^HTTP\/1\.\d (\d{3})/.exec(text)?.[1];
      resolve({ status: status ? Number(status) : null, body: end >= 0 ? text.slice(end + 4) : text, sent, ms: performance.now() - t0, ...(error ? { error } : {}) });
    };
    const timer = setTimeout(() => finish(`no complete response within ${timeoutMs} ms (${sent} bytes sent)`), timeoutMs);
    const answered = (): boolean => {
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return false;
      const len = /\r\ncontent-length:[ \t]*(\d+)/i.exec(got.subarray(0, end).toString('latin1'))?.[1];
      return len !== undefined && got.length >= end + 4 + Number(len);
    };
    const pump = (): void => {
      while (!finished && got.length === 0 && sent < bytes) {
        const n = Math.min(CHUNK.length, bytes - sent);
        sent += n;
        if (!sock.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return void sock.once('drain', pump);
      }
    };
    sock.on('connect', () => {
      sock.write(`POST ${reqPath} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bytes}\r\n\r\n`);
      pump();
    });
    sock.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (answered()) finish();
    });
    sock.on('close', () => finish(answered() ? undefined : `closed by the server after ${sent} bytes sent`));
    sock.on('error', (e) => finish(`${e.message} after ${sent} bytes sent`));
  });
}
