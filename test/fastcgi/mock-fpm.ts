/**
 * A mock FastCGI responder on node:net for client tests. It parses records
 * with its own code (not src/fastcgi), checks what PHP-FPM would refuse
 * (a name/value pair split across PARAMS records, content + padding > 65535),
 * and writes its answers unpadded and cut at arbitrary points (headers
 * included), so the client's decoder sees the worst legal framing.
 */
import { createHash, type Hash } from 'node:crypto';
import * as net from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';

export const T = {
  BEGIN: 1,
  ABORT: 2,
  END: 3,
  PARAMS: 4,
  STDIN: 5,
  STDOUT: 6,
  STDERR: 7,
  GET_VALUES: 9,
  GET_VALUES_RESULT: 10,
} as const;

/** A record by hand; `pad` padding bytes of garbage (0xaa) – legal, the content length tells the truth. */
export function record(type: number, id: number, content: Buffer | string = Buffer.alloc(0), pad = 0): Buffer {
  const c = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  const h = Buffer.from([1, type, id >> 8, id & 0xff, c.length >> 8, c.length & 0xff, pad, 0]);
  return Buffer.concat([h, c, Buffer.alloc(pad, 0xaa)]);
}

export function nvPairs(pairs: ReadonlyArray<readonly [string, string]>): Buffer {
  const len = (n: number): Buffer => (n < 128 ? Buffer.from([n]) : Buffer.from([0x80 | (n >>> 24), (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]));
  return Buffer.concat(
    pairs.flatMap(([k, v]) => {
      const kb = Buffer.from(k, 'utf8');
      const vb = Buffer.from(v, 'utf8');
      return [len(kb.length), len(vb.length), kb, vb];
    }),
  );
}

/** Parses one PARAMS record's content on its own, as FPM does; throws if a pair is cut. */
export function parsePairs(content: Buffer): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let at = 0;
  const len = (): number => {
    if (at >= content.length) throw new Error(`pair cut inside a length at ${at}`);
    if (content[at]! < 0x80) return content[at++]!;
    if (at + 4 > content.length) throw new Error(`pair cut inside a 4-byte length at ${at}`);
    const n = content.readUInt32BE(at) & 0x7fffffff;
    at += 4;
    return n;
  };
  while (at < content.length) {
    const k = len();
    const v = len();
    if (at + k + v > content.length) throw new Error(`pair split across records (needs ${k + v} bytes, ${content.length - at} left)`);
    out.push([content.toString('utf8', at, at + k), content.toString('utf8', at + k, at + k + v)]);
    at += k + v;
  }
  return out;
}

/** Small deterministic PRNG so a failing split can be reproduced from the seed. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface MockRequest {
  conn: MockConn;
  /** 1-based index of this request on its connection. */
  seq: number;
  requestId: number;
  role: number;
  keepConn: boolean;
  params: Array<[string, string]>;
  paramRecords: number;
  /** Set if FPM would have refused the PARAMS (split pair, oversize record). */
  paramsError?: string;
  stdinLength: number;
  stdinHash: Hash;
  /** The body, kept while it is under 4 MB. */
  stdinChunks: Buffer[];
  stdinDone: boolean;
  stdin(): Buffer;
  md5(): string;
}

export interface MockOptions {
  /** Called once the empty STDIN record arrived (unless onParams answered already). */
  onRequest?: (req: MockRequest) => void | Promise<void>;
  /** Called at BEGIN_REQUEST, before anything else of the request arrives. */
  onBegin?: (req: MockRequest) => void;
  /** Called when the params are complete, before the body. */
  onParams?: (req: MockRequest) => void;
  /** FCGI_GET_VALUES answers (default FCGI_MPXS_CONNS=0). */
  values?: Record<string, string>;
  /** Cut writes at random points (default true). */
  fragment?: boolean;
  seed?: number;
}

export class MockConn {
  readonly socket: net.Socket;
  readonly index: number;
  readonly closed: Promise<void>;
  isClosed = false;
  requests: MockRequest[] = [];
  /** Bytes of STDOUT content this connection got onto the wire (for backpressure tests). */
  stdoutWritten = 0;
  readonly #rand: () => number;
  readonly #fragment: boolean;
  #chain: Promise<void> = Promise.resolve();

  constructor(socket: net.Socket, index: number, fragment: boolean, seed: number) {
    this.socket = socket;
    this.index = index;
    this.#fragment = fragment;
    this.#rand = prng(seed + index);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        resolve();
      }),
    );
  }

  /** Writes bytes in order, cut into random pieces (headers too), respecting 'drain'. */
  send(bytes: Buffer): Promise<void> {
    this.#chain = this.#chain.then(async () => {
      let at = 0;
      let pieces = 0;
      while (at < bytes.length) {
        if (this.socket.destroyed) return;
        const left = bytes.length - at;
        let n = left;
        if (this.#fragment && pieces < 24) n = Math.max(1, Math.min(left, Math.floor(this.#rand() * Math.min(left, 40))));
        if (this.#fragment && pieces >= 24) n = Math.min(left, 256 * 1024);
        const ok = this.socket.write(bytes.subarray(at, at + n));
        at += n;
        pieces++;
        if (!ok) await drainOrClose(this.socket);
        else if (this.#fragment && pieces < 24) await nextTurn();
      }
    });
    return this.#chain;
  }

  stdout(data: Buffer | string, id = 1): Promise<void> {
    const b = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const recs: Buffer[] = [];
    for (let at = 0; at < b.length; at += 65535) recs.push(record(T.STDOUT, id, b.subarray(at, at + 65535)));
    return this.send(Buffer.concat(recs)).then(() => {
      this.stdoutWritten += b.length;
    });
  }

  stderr(data: string, id = 1): Promise<void> {
    return this.send(record(T.STDERR, id, data));
  }

  /** Empty STDOUT + END_REQUEST; closes the connection unless the request asked to keep it. */
  async end(appStatus = 0, protocolStatus = 0, id = 1): Promise<void> {
    const body = Buffer.alloc(8);
    body.writeUInt32BE(appStatus, 0);
    body[4] = protocolStatus;
    await this.send(Buffer.concat([record(T.STDOUT, id), record(T.END, id, body)]));
    const last = this.requests.at(-1);
    if (!last?.keepConn) this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function drainOrClose(socket: net.Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

export interface MockFpm {
  readonly address: { host: string; port: number };
  readonly addressText: string;
  readonly conns: MockConn[];
  /** Every request seen, in arrival order. */
  readonly requests: MockRequest[];
  /** Protocol violations the mock saw (FPM would have dropped the connection). */
  readonly violations: string[];
  /** Highest number of simultaneously open connections. */
  maxConcurrent: number;
  close(): Promise<void>;
}

export async function startMockFpm(opts: MockOptions = {}): Promise<MockFpm> {
  const conns: MockConn[] = [];
  const requests: MockRequest[] = [];
  const violations: string[] = [];
  let open = 0;
  const fragment = opts.fragment ?? true;
  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    const conn = new MockConn(socket, conns.length, fragment, seed);
    conns.push(conn);
    open++;
    mock.maxConcurrent = Math.max(mock.maxConcurrent, open);
    void conn.closed.then(() => open--);
    let buf: Buffer = Buffer.alloc(0);
    let req: MockRequest | undefined;
    let answered = false;
    socket.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      while (buf.length >= 8) {
        if (buf[0] !== 1) {
          violations.push(`conn ${conn.index}: version byte ${buf[0]}`);
          socket.destroy();
          return;
        }
        const type = buf[1]!;
        const id = buf.readUInt16BE(2);
        const len = buf.readUInt16BE(4);
        const pad = buf[6]!;
        if (buf.length < 8 + len + pad) break;
        if (len + pad > 65535) violations.push(`conn ${conn.index}: record with ${len}+${pad} bytes`);
        const content = buf.subarray(8, 8 + len);
        buf = buf.subarray(8 + len + pad);
        if (type === T.GET_VALUES) {
          const names = parsePairs(content).map(([k]) => k);
          const values = opts.values ?? { FCGI_MPXS_CONNS: '0' };
          const answer = names.filter((n) => n in values).map((n) => [n, values[n]!] as const);
          void conn.send(record(T.GET_VALUES_RESULT, 0, nvPairs(answer))).then(() => socket.end());
          continue;
        }
        if (type === T.BEGIN) {
          if (req && !answered) violations.push(`conn ${conn.index}: BEGIN_REQUEST while a request is active`);
          const chunks: Buffer[] = [];
          const hash = createHash('md5');
          const r: MockRequest = {
            conn,
            seq: conn.requests.length + 1,
            requestId: id,
            role: content.readUInt16BE(0),
            keepConn: (content[2]! & 1) === 1,
            params: [],
            paramRecords: 0,
            stdinLength: 0,
            stdinHash: hash,
            stdinChunks: chunks,
            stdinDone: false,
            stdin: () => Buffer.concat(chunks),
            md5: () => hash.copy().digest('hex'),
          };
          req = r;
          answered = false;
          conn.requests.push(r);
          requests.push(r);
          opts.onBegin?.(r);
          continue;
        }
        if (!req) {
          violations.push(`conn ${conn.index}: type ${type} before BEGIN_REQUEST`);
          continue;
        }
        if (id !== req.requestId) violations.push(`conn ${conn.index}: request id ${id}, expected ${req.requestId}`);
        if (type === T.PARAMS) {
          if (len === 0) {
            opts.onParams?.(req);
            continue;
          }
          req.paramRecords++;
          try {
            req.params.push(...parsePairs(content));
          } catch (err) {
            req.paramsError = (err as Error).message;
            violations.push(`conn ${conn.index}: ${req.paramsError}`);
          }
          continue;
        }
        if (type === T.STDIN) {
          if (len === 0) {
            req.stdinDone = true;
            if (!answered && opts.onRequest) {
              answered = true;
              void opts.onRequest(req);
            }
            continue;
          }
          req.stdinLength += len;
          req.stdinHash.update(content);
          if (req.stdinLength <= 4 * 1024 * 1024) req.stdinChunks.push(Buffer.from(content));
          continue;
        }
        if (type === T.ABORT) continue;
        violations.push(`conn ${conn.index}: unexpected record type ${type}`);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  const mock: MockFpm = {
    address: { host: '127.0.0.1', port },
    addressText: `127.0.0.1:${port}`,
    conns,
    requests,
    violations,
    maxConcurrent: 0,
    close: async () => {
      for (const c of conns) c.socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return mock;
}
