/**
 * A catalogue of bad handler replies (handler-protocol.md §3 says what a
 * good one is), each aimed at one live connection. `core` is what our core
 * must do with it: 'skip' (nothing reaches the client, which stays open), or
 * 'close' (the connection is ended). `mongrel2` is what Debian's 1.12.2 was
 * seen doing with the same frames ('crash': the process dies of SIGSEGV).
 */

export type Outcome = 'skip' | 'close';

export interface ReplyAbuse {
  readonly name: string;
  /** The frames to PUBlish (more than one = one multipart message). */
  build(sender: string, connId: number): Buffer[];
  readonly core: Outcome;
  readonly mongrel2: Outcome | 'crash';
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const ns = (s: string): string => `${Buffer.byteLength(s, 'latin1')}:${s},`;
/** A tnetstring of `payload` with type byte `type`. */
const tn = (payload: string, type: string): string => `${Buffer.byteLength(payload, 'latin1')}:${payload}${type}`;

function nested(depth: number): string {
  let v = tn('', '~');
  for (let i = 0; i < depth; i++) v = tn(v, ']');
  return v;
}

/** `X id` extended reply with a raw tnetstring body. */
const ext = (sender: string, id: number, body: string): Buffer[] => [b(`${sender} ${ns(`X ${id}`)} ${body}`)];

export const REPLY_ABUSES: readonly ReplyAbuse[] = [
  { name: 'empty message', build: () => [Buffer.alloc(0)], core: 'skip', mongrel2: 'skip' },
  { name: 'random bytes', build: () => [Buffer.from([0xde, 0xad, 0x00, 0xbe, 0xef, 0x20, 0x33, 0x3a])], core: 'skip', mongrel2: 'skip' },
  { name: 'sender only', build: (s) => [b(s)], core: 'skip', mongrel2: 'skip' },
  { name: 'sender and space only', build: (s) => [b(`${s} `)], core: 'skip', mongrel2: 'skip' },
  { name: 'netstring without its comma', build: (s, id) => [b(`${s} ${String(id).length}:${id} HTTP/1.1 200 OK\r\n\r\n`)], core: 'skip', mongrel2: 'skip' },
  { name: 'netstring length too big', build: (s, id) => [b(`${s} 9:${id}, HTTP/1.1 200 OK\r\n\r\n`)], core: 'skip', mongrel2: 'skip' },
  { name: 'netstring length of 12 digits', build: (s, id) => [b(`${s} 999999999999:${id}, x`)], core: 'skip', mongrel2: 'skip' },
  { name: 'truncated mid-netstring', build: (s, id) => [b(`${s} 20:${id}`)], core: 'skip', mongrel2: 'skip' },
  { name: 'no space after the netstring', build: (s, id) => [b(`${s} ${ns(String(id))}HTTP/1.1 200 OK\r\n\r\n`)], core: 'skip', mongrel2: 'skip' },
  { name: 'non-numeric id', build: (s) => [b(`${s} ${ns('abc')} x`)], core: 'skip', mongrel2: 'skip' },
  { name: 'negative id', build: (s, id) => [b(`${s} ${ns(`-${id}`)} x`)], core: 'skip', mongrel2: 'skip' },
  // Mongrel2 wraps this id to 0 (a notice for conn 0 comes back); ours refuses the message.
  { name: 'id over uint32 (4294967296)', build: (s) => [b(`${s} ${ns('4294967296')} x`)], core: 'skip', mongrel2: 'skip' },
  { name: 'two spaces between ids', build: (s, id) => [b(`${s} ${ns(`${id}  ${id}`)} x`)], core: 'skip', mongrel2: 'skip' },
  { name: '129 ids, over limits.handler_targets', build: (s, id) => [b(`${s} ${ns(Array.from({ length: 129 }, (_, i) => id + i * 100_000).join(' '))} x`)], core: 'skip', mongrel2: 'skip' },
  { name: 'sender with a bad byte', build: (s, id) => [b(`${s}! ${ns(String(id))} x`)], core: 'skip', mongrel2: 'skip' },
  { name: 'X: float in ctl args', build: (s, id) => ext(s, id, tn(tn('ctl', ',') + tn(tn('keep-alive', ',') + tn('1.5', '^'), '}'), ']')), core: 'skip', mongrel2: 'crash' },
  { name: 'X: nesting 1000 deep', build: (s, id) => ext(s, id, tn(tn('ctl', ',') + nested(1000), ']')), core: 'skip', mongrel2: 'crash' },
  { name: 'X: 999999999-byte length', build: (s, id) => ext(s, id, `999999999:${tn('ctl', ',')}]`), core: 'skip', mongrel2: 'skip' },
  { name: 'X: truncated tnetstring', build: (s, id) => ext(s, id, tn(tn('ctl', ',') + tn('', '}'), ']').slice(0, -3)), core: 'skip', mongrel2: 'skip' },
  { name: 'X: trailing bytes after the tnetstring', build: (s, id) => ext(s, id, `${tn(tn('ctl', ',') + tn(tn('keep-alive', ',') + tn('true', '!'), '}'), ']')}junk`), core: 'skip', mongrel2: 'skip' },
  { name: 'X: not a list', build: (s, id) => ext(s, id, tn('ctl', ',')), core: 'skip', mongrel2: 'skip' },
  { name: 'X: list of three', build: (s, id) => ext(s, id, tn(tn('ctl', ',') + tn('', '}') + tn('', '}'), ']')), core: 'skip', mongrel2: 'skip' },
  { name: 'X: name not a string', build: (s, id) => ext(s, id, tn(tn('1', '#') + tn('', '}'), ']')), core: 'skip', mongrel2: 'skip' },
  // Mongrel2 closes the connection (with a disconnect notice); ours logs and ignores it.
  { name: 'X: ctl args not a dict', build: (s, id) => ext(s, id, tn(tn('ctl', ',') + tn('cancel', ','), ']')), core: 'skip', mongrel2: 'close' },
  { name: 'X: ctl with unknown keys', build: (s, id) => ext(s, id, tn(tn('ctl', ',') + tn(tn('bogus', ',') + tn('true', '!'), '}'), ']')), core: 'skip', mongrel2: 'skip' },
  { name: 'X: an unknown extension', build: (s, id) => ext(s, id, tn(tn('nosuchplugin', ',') + tn('', '}'), ']')), core: 'close', mongrel2: 'close' },
];
