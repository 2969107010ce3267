/**
 * Parses the CGI header block at the start of a FastCGI STDOUT stream
 * (bridge-anchors.md §3.5) into a status, headers and nginx's X-Accel
 * controls. Pure: it only sees the bytes it is given.
 */

/** The backend sent a response that cannot be forwarded; answer 502 (nginx does). */
export class CgiResponseError extends Error {
  override readonly name = 'CgiResponseError';
  readonly status = 502;
}

export interface CgiHead {
  status: number;
  /** Reason phrase from `Status: 404 Not Found`; undefined when none was given. */
  reason?: string;
  /**
   * Headers to forward, in order, without Status and the X-Accel / X-Sendfile
   * controls. Values are latin1 text of the raw bytes, which is what
   * buildHttpHead writes back byte for byte.
   */
  headers: Array<[string, string]>;
  /** Body bytes that arrived in the same chunk(s) as the end of the head. */
  rest: Buffer;
  /** X-Accel-Redirect value (UTF-8 decoded): an internal redirect the caller must resolve. */
  accelRedirect?: string;
  /** X-Sendfile value (UTF-8 decoded): a file path the caller may serve instead of the body. */
  sendfile?: string;
  /** `X-Accel-Buffering: no`: forward each STDOUT record at once (SSE, long-poll). */
  noBuffering: boolean;
}

export interface CgiHeadParserOptions {
  /** Largest header block, blank line included. Default 64 KiB. */
  maxHeaderBytes?: number;
}

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Stripped from the forwarded headers, as nginx's fastcgi module hides them by default. */
const HIDDEN = new Set(['status', 'x-accel-redirect', 'x-accel-buffering', 'x-accel-expires', 'x-accel-limit-rate', 'x-accel-charset', 'x-sendfile']);
/** Control headers whose repeats would be ambiguous (which status? which file?). */
const UNIQUE = new Set(['status', 'x-accel-redirect', 'x-sendfile']);

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The two path-valued controls are used as file names, so decode them as UTF-8. */
function utf8Path(name: string, latin1: string): string {
  try {
    return utf8.decode(Buffer.from(latin1, 'latin1'));
  } catch {
    throw new CgiResponseError(`${name} is not valid UTF-8`);
  }
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Feed STDOUT chunks with `push` until it returns the head. PHP splits large
 * header blocks over several STDOUT records (h2o#951), so a chunk may end
 * anywhere, even between the CR and LF of the blank line.
 */
export class CgiHeadParser {
  private readonly max: number;
  private readonly chunks: Buffer[] = [];
  private seen = 0;
  /** The current line so far: 0 = empty, 1 = a lone CR, -1 = has content. */
  private lineState: 0 | 1 | -1 = 0;
  private done = false;

  constructor(options: CgiHeadParserOptions = {}) {
    const max = options.maxHeaderBytes ?? 64 * 1024;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxHeaderBytes must be a positive integer, got ${max}`);
    this.max = max;
  }

  /** Returns the head once the blank line has arrived, else null (need more). */
  push(chunk: Buffer): CgiHead | null {
    if (this.done) throw new Error('CgiHeadParser: push after the head was already returned');
    const base = this.seen;
    for (let i = 0; i < chunk.length; i++) {
      // Checked per byte, so the outcome does not depend on how the stream was split.
      if (base + i >= this.max) throw new CgiResponseError(`header block too large (over ${this.max} bytes)`);
      const b = chunk[i]!;
      if (b === LF) {
        if (this.lineState !== -1) {
          this.done = true;
          // The usual head comes in one chunk: no copy then.
          const all = this.chunks.length === 0 ? chunk : Buffer.concat([...this.chunks, chunk]);
          this.chunks.length = 0;
          const end = base + i + 1;
          return parseHead(all.subarray(0, end), all.subarray(end));
        }
        this.lineState = 0;
      } else if (b === CR && this.lineState === 0) {
        this.lineState = 1;
      } else {
        this.lineState = -1;
      }
    }
    this.chunks.push(chunk);
    this.seen += chunk.length;
    return null;
  }
}

const BAD_VALUE = /[\0\r]/;

/** line[from..] without leading and trailing spaces and tabs, sliced once. */
function trimSpaceTab(line: string, from: number): string {
  let start = from;
  let end = line.length;
  while (start < end && (line.charCodeAt(start) === 0x20 || line.charCodeAt(start) === 0x09)) start++;
  while (end > start && (line.charCodeAt(end - 1) === 0x20 || line.charCodeAt(end - 1) === 0x09)) end--;
  return line.slice(start, end);
}

function parseHead(block: Buffer, rest: Buffer): CgiHead {
  const lines = block.toString('latin1').split('\n');
  lines.pop(); // after the final LF
  lines.pop(); // the blank line
  const headers: Array<[string, string]> = [];
  let seen: Set<string> | undefined;
  let status: number | undefined;
  let reason: string | undefined;
  let location = false;
  let accelRedirect: string | undefined;
  let sendfile: string | undefined;
  let noBuffering = false;

  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n]!;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const colon = line.indexOf(':');
    if (colon < 0) throw new CgiResponseError(`header line ${n + 1} has no colon: ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon);
    if (!TOKEN_RE.test(name)) throw new CgiResponseError(`header line ${n + 1} has an invalid name: ${JSON.stringify(name.slice(0, 80))}`);
    const value = trimSpaceTab(line, colon + 1);
    if (BAD_VALUE.test(value)) throw new CgiResponseError(`header ${name} contains NUL or a bare CR`);
    const lower = name.toLowerCase();
    if (UNIQUE.has(lower)) {
      if (seen?.has(lower)) throw new CgiResponseError(`duplicate ${name} header`);
      (seen ??= new Set()).add(lower);
    }
    switch (lower) {
      case 'status': {
        const m = /^([1-9][0-9]{2})(?:[ \t]+(.*))?$/.exec(value);
        if (m === null) throw new CgiResponseError(`invalid status ${JSON.stringify(value.slice(0, 80))}`);
        status = Number(m[1]);
        reason = m[2] === undefined || m[2] === '' ? undefined : m[2];
        break;
      }
      case 'x-accel-redirect':
        if (value !== '') accelRedirect = utf8Path(name, value);
        break;
      case 'x-sendfile':
        if (value !== '') sendfile = utf8Path(name, value);
        break;
      case 'x-accel-buffering':
        noBuffering = value.toLowerCase() === 'no'; // the last one wins, as with PHP's header()
        break;
      case 'location':
        location = true;
        break;
      default:
        break;
    }
    if (!HIDDEN.has(lower)) headers.push([name, value]);
  }

  // CGI: no Status but a Location means a client redirect (RFC 3875 §6.2.3; nginx does the same).
  const head: CgiHead = { status: status ?? (location ? 302 : 200), headers, rest, noBuffering };
  if (reason !== undefined) head.reason = reason;
  if (accelRedirect !== undefined) head.accelRedirect = accelRedirect;
  if (sendfile !== undefined) head.sendfile = sendfile;
  return head;
}
