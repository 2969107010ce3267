/**
 * Opens COUNT keep-alive connections to 127.0.0.1:PORT in its own process
 * (so their memory is not the server's), sends one `GET PATH HTTP/1.1` on
 * each, waits for its complete answer, and then leaves them all idle. Used
 * by bench/core-handler.ts to measure a server's RSS with many idle clients.
 *
 *   node --import tsx bench/lib/idle-clients.ts PORT COUNT [PATH] [PARALLEL]
 *
 * stdout, one line each:
 *   ready {"open":N,"answered":N,"failed":N,"errors":{...},"ms":N}
 *     once every connection got its answer or failed;
 *   status {"open":N,"closedByPeer":N} for each "status" line on stdin.
 * It closes everything and exits when stdin ends or says "quit".
 */
import * as net from 'node:net';
import * as readline from 'node:readline';

const port = Number(process.argv[2]);
const count = Number(process.argv[3]);
const reqPath = process.argv[4] ?? '/';
const parallel = Number(process.argv[5] ?? 100);
if (!Number.isInteger(port) || !Number.isInteger(count) || count < 1 || !Number.isInteger(parallel) || parallel < 1) {
  process.stderr.write('usage: idle-clients.ts PORT COUNT [PATH] [PARALLEL]\n');
  process.exit(2);
}

const REQUEST = Buffer.from(`GET ${reqPath} HTTP/1.1\r\nHost: localhost\r\n\r\n`, 'latin1');
const sockets = new Set<net.Socket>();
let answered = 0;
let failed = 0;
let closedByPeer = 0;
const errors: Record<string, number> = {};

/** True once `buf` holds one complete response with a Content-Length body. */
function complete(buf: Buffer): boolean {
  const end = buf.indexOf('\r\n\r\n', 0, 'latin1');
  if (end < 0) return false;
  const len = /\r\ncontent-length:[ \t]*(\d+)/i.exec(buf.subarray(0, end).toString('latin1'))?.[1];
  return len !== undefined && buf.length >= end + 4 + Number(len);
}

/** One connection: resolves when it has its answer (true) or failed (false). */
function open(): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let got = Buffer.alloc(0);
    let settled = false;
    const settle = (ok: boolean, why?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!ok) {
        errors[why ?? 'unknown'] = (errors[why ?? 'unknown'] ?? 0) + 1;
        sock.destroy();
      }
      resolve(ok);
    };
    const timer = setTimeout(() => settle(false, 'timeout'), 30_000);
    sock.on('connect', () => sock.write(REQUEST));
    sock.on('data', (chunk: Buffer) => {
      if (settled) return; // nothing is expected after the answer
      got = Buffer.concat([got, chunk]);
      if (complete(got)) {
        sockets.add(sock);
        settle(true);
      }
    });
    sock.on('error', (err: NodeJS.ErrnoException) => settle(false, err.code ?? err.message));
    sock.on('close', () => {
      if (sockets.delete(sock) && !quitting) closedByPeer++;
      settle(false, 'closed before answer');
    });
  });
}

let quitting = false;
const started = Date.now();
let next = 0;
async function worker(): Promise<void> {
  while (next < count) {
    next++;
    if (await open()) answered++;
    else failed++;
  }
}
await Promise.all(Array.from({ length: Math.min(parallel, count) }, () => worker()));
process.stdout.write(`ready ${JSON.stringify({ open: sockets.size, answered, failed, errors, ms: Date.now() - started })}\n`);

const quit = (): void => {
  quitting = true;
  for (const s of sockets) s.destroy();
  process.exit(0);
};
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line.trim() === 'status') process.stdout.write(`status ${JSON.stringify({ open: sockets.size, closedByPeer })}\n`);
  else if (line.trim() === 'quit') quit();
});
rl.on('close', quit);
