/**
 * Request and disconnect messages, byte for byte against the real Mongrel2
 * captures in shared/fixtures/mongrel2-wire (same sender, conn id and peer
 * address, so nothing needs normalising), plus the header-table rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadWireFixtures, pyBytes, WIRE_FIXTURE_DIR } from '../support/fixtures.js';
import { HeaderTable, fnv1a } from '../../src/server/header-table.js';
import fc from 'fast-check';
import { encodeRequest } from '../../src/protocol/request.js';
import { encodeCredits, encodeDisconnect, encodeHttpRequest, wireText } from '../../src/server/handler-message.js';

/** Decodes the Python bytes repr on the fixture's "CLIENT SENT" line. */
function clientBytes(name: string): Buffer | undefined {
  const text = readFileSync(path.join(WIRE_FIXTURE_DIR, `${name}.txt`), 'utf8');
  const m = /CLIENT SENT[\s\S]*?b'((?:[^'\\]|\\.)*)'/.exec(text);
  if (!m) return undefined;
  return pyBytes(m[1]!);
}

/** Just enough of a request splitter for the simple captured requests. */
function splitRequest(raw: Buffer): { method: string; version: string; uri: string; path: string; query?: string; fragment?: string; headers: Array<[string, string]>; body: Buffer } {
  const end = raw.indexOf('\r\n\r\n');
  const lines = raw.toString('latin1', 0, end).split('\r\n');
  const [method, target, version] = lines[0]!.split(' ') as [string, string, string];
  const hash = target.indexOf('#');
  const uri = hash < 0 ? target : target.slice(0, hash);
  const q = uri.indexOf('?');
  return {
    method,
    version,
    uri,
    path: q < 0 ? uri : uri.slice(0, q),
    ...(q < 0 ? {} : { query: uri.slice(q + 1) }),
    ...(hash < 0 ? {} : { fragment: target.slice(hash + 1) }),
    headers: lines.slice(1).map((l): [string, string] => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).replace(/^[ \t]+/, '')]),
    body: raw.subarray(end + 4),
  };
}

const fixtures = loadWireFixtures();
const requestFixtures = ['get-query', 'dup-headers', 'head', 'http10-get', 'post-form', 'tns-get-query', 'tns-dup-headers', 'tns-post-form', 'disconnect-request', 'half-close-request'];

for (const name of requestFixtures) {
  test(`request message matches the capture ${name}`, () => {
    const fx = fixtures.find((f) => f.name === name);
    assert.ok(fx, `fixture ${name} exists`);
    const raw = clientBytes(name);
    assert.ok(raw, `fixture ${name} has the client bytes`);
    const req = splitRequest(raw);
    const table = new HeaderTable(1280);
    for (const [k, v] of req.headers) table.add(k, v);
    table.replace('x-forwarded-for', '127.0.0.1');
    const protocol = fx.decoded.socket.includes('tnetstring') ? 'tnetstring' : 'json';
    const pattern = fx.decoded.headers.PATTERN as string;
    const message = encodeHttpRequest(
      { sendIdent: fx.decoded.sender, protocol },
      Number(fx.decoded.conn_id),
      { method: req.method, version: req.version, uri: req.uri, path: req.path, query: req.query, fragment: req.fragment, pattern, urlScheme: 'http', remoteAddr: '127.0.0.1' },
      table,
      req.body,
    );
    // A string stands for its UTF-8 bytes (a bodyless JSON request is one).
    const bytes = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
    assert.equal(bytes.toString('latin1'), fx.bin.toString('latin1'));
  });
}

for (const name of ['disconnect', 'tns-disconnect', 'half-close-disconnect']) {
  test(`disconnect notice matches the capture ${name}`, () => {
    const fx = fixtures.find((f) => f.name === name)!;
    const protocol = fx.decoded.socket.includes('tnetstring') ? 'tnetstring' : 'json';
    assert.equal(encodeDisconnect({ sendIdent: fx.decoded.sender, protocol }, Number(fx.decoded.conn_id)).toString('latin1'), fx.bin.toString('latin1'));
  });
}

test('FNV-1a is the 32-bit FNV-1a of the name bytes', () => {
  assert.equal(fnv1a(''), 0x811c9dc5);
  assert.equal(fnv1a('a'), 0xe40c292c);
  assert.equal(fnv1a('foobar'), 0xbf9cf968);
});

test('header table: lower-cased names, duplicates as lists, at most 5 values, header_count names', () => {
  const t = new HeaderTable(3);
  t.add('X-A', '1');
  for (let i = 2; i <= 7; i++) t.add('x-a', String(i));
  t.add('B', 'b');
  t.add('C', 'c');
  t.add('D', 'd');
  t.add('x-a', 'late');
  const map = new Map(t.entries());
  assert.deepEqual(map.get('x-a'), ['1', '2', '3', '4', '5']);
  assert.equal(map.get('b'), 'b');
  assert.equal(map.has('d'), false);
  assert.deepEqual(t.dropped.map((d) => d.reason), ['duplicates', 'duplicates', 'header_count', 'header_count']);
});

test('header table: replace keeps the position, growing past 128 names keeps every name', () => {
  const t = new HeaderTable(1280);
  t.add('host', 'h');
  t.add('x-forwarded-for', 'forged');
  const before = t.keys();
  t.replace('x-forwarded-for', '10.0.0.1');
  assert.deepEqual(t.keys(), before);
  assert.equal(t.get('x-forwarded-for'), '10.0.0.1');
  const big = new HeaderTable(1280);
  for (let i = 0; i < 300; i++) big.add(`x-h${i}`, 'v');
  assert.equal(new Set(big.keys()).size, 300);
});

test('wireText passes UTF-8 bytes through and keeps other bytes one char each', () => {
  assert.equal(wireText(Buffer.from('é', 'utf8').toString('latin1')), 'é');
  assert.equal(wireText('\xff\xfe'), '\xff\xfe');
  assert.equal(wireText('plain'), 'plain');
});

test('credits notices: the bytes of handler-protocol.md §2.2 (JSON and TNET)', () => {
  assert.equal(
    encodeCredits({ sendIdent: 'aaaa-json-ident', protocol: 'json' }, 1, 1000).toString('latin1'),
    'aaaa-json-ident 1 @* 43:{"METHOD":"JSON","DOWNLOAD_CREDITS":"1000"},18:{"type":"credits"},',
  );
  assert.equal(
    encodeCredits({ sendIdent: 'bbbb-tnet-ident', protocol: 'tnetstring' }, 2, 12345).toString('latin1'),
    'bbbb-tnet-ident 2 @* 44:16:DOWNLOAD_CREDITS,5:12345,6:METHOD,4:JSON,}18:{"type":"credits"},',
  );
});

// The plain fast path (printable ASCII, nothing to escape) must give the general path's bytes.
/** Printable ASCII without '"' or '\\': what the fast path takes. */
const plainArb = fc.string({ unit: fc.constantFrom(...'abcXYZ019-_./:;=?&% !#$\'()*+,<>@[]^`{|}~'), maxLength: 12 });
const oddArb = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 6 }).map((s) => Buffer.from(s, 'utf8').toString('latin1')),
  fc.constantFrom('"q"', 'back\\slash', 'tab\there', '\x7f', 'caf\xc3\xa9', '\xff', '\u2028', '\ud800'),
);
const textArb = (oddWeight: number) => (oddWeight === 0 ? plainArb : fc.oneof({ weight: 8, arbitrary: plainArb }, { weight: oddWeight, arbitrary: oddArb }));
const isPlainText = (t: string): boolean => /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/.test(t);

function requestArb(oddWeight: number) {
  const text = textArb(oddWeight);
  const word = fc.oneof({ weight: 8, arbitrary: fc.stringMatching(/^\/[a-z0-9/._-]{0,12}$/) }, { weight: oddWeight, arbitrary: text.filter((t) => t.length > 0) });
  return fc.record({
    sender: oddWeight === 0 ? fc.constant('54c6755b-9628-40a4-9a2d-cc82a816345e') : fc.oneof({ weight: 8, arbitrary: fc.constant('54c6755b-9628-40a4-9a2d-cc82a816345e') }, { weight: oddWeight, arbitrary: word }),
    connId: oddWeight === 0 ? fc.nat() : fc.oneof({ weight: 8, arbitrary: fc.nat() }, { weight: oddWeight, arbitrary: fc.constantFrom(0xffffffff, -1, 2 ** 32, 1.5) }),
    path: word,
    method: fc.oneof(fc.constantFrom('GET', 'POST', 'WEBSOCKET'), text),
    version: fc.option(fc.constantFrom('HTTP/1.0', 'HTTP/1.1'), { nil: undefined }),
    uri: fc.option(text, { nil: undefined }),
    query: fc.option(text, { nil: undefined }),
    fragment: fc.option(text, { nil: undefined }),
    pattern: fc.oneof(fc.constant('/handler'), text),
    remoteAddr: fc.oneof(fc.constant('127.0.0.1'), text),
    // A small pool of names, so duplicates (JSON arrays) are common.
    headers: fc.array(fc.tuple(fc.oneof({ weight: 8, arbitrary: fc.constantFrom('Host', 'Accept', 'X-A', 'x-a', 'Cookie') }, { weight: oddWeight, arbitrary: text.filter((t) => t.length > 0) }), text), { maxLength: 8 }),
    body: fc.oneof(fc.constant(Buffer.alloc(0)), fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a))),
  });
}
type Req = ReturnType<typeof requestArb> extends fc.Arbitrary<infer T> ? T : never;

/** The general path's encoding, written out: PATH, client headers in table order, then the server keys. */
function generalEncoding(r: Req, table: HeaderTable): Buffer {
  const wire = (v: string | readonly string[]): string | string[] => (typeof v === 'string' ? wireText(v) : v.map(wireText));
  const headers: Array<[string, string | string[]]> = [['PATH', wireText(r.path)]];
  for (const [k, v] of table.entries()) headers.push([k, wire(v)]);
  const server: Array<[string, string | undefined]> = [
    ['METHOD', r.method], ['VERSION', r.version], ['URI', r.uri], ['QUERY', r.query], ['FRAGMENT', r.fragment],
    ['PATTERN', r.pattern], ['URL_SCHEME', 'http'], ['REMOTE_ADDR', r.remoteAddr],
  ];
  for (const [k, v] of server) if (v !== undefined) headers.push([k, wireText(v)]);
  return encodeRequest({ sender: r.sender, connId: r.connId, path: wireText(r.path), headers, body: r.body, protocol: 'json' });
}

/** Checks one request; true when it was one the fast path takes (every text plain, sender and id valid, no duplicate beyond arrays). */
function checkSameBytes(r: Req): boolean {
  const table = new HeaderTable(1280);
  for (const [k, v] of r.headers) table.add(k, v);
  const facts = { method: r.method, version: r.version, uri: r.uri, path: r.path, query: r.query, fragment: r.fragment, pattern: r.pattern, urlScheme: 'http' as const, remoteAddr: r.remoteAddr };
  const encode = () => encodeHttpRequest({ sendIdent: r.sender, protocol: 'json' }, r.connId, facts, table, r.body);
  let expected: Buffer;
  try {
    expected = generalEncoding(r, table);
  } catch (err) {
    assert.throws(encode, { name: (err as Error).name, message: (err as Error).message });
    return false;
  }
  const got = encode();
  assert.equal((typeof got === 'string' ? Buffer.from(got, 'utf8') : got).toString('latin1'), expected.toString('latin1'));
  const texts = [r.sender, r.path, r.method, r.pattern, r.remoteAddr, ...[r.version, r.uri, r.query, r.fragment].filter((t) => t !== undefined), ...r.headers.flat()];
  return texts.every(isPlainText) && !r.sender.includes(' ') && !r.path.includes(' ');
}

test('JSON requests: the plain fast path and the general path give the same bytes (property, mixed input)', () => {
  let plain = 0;
  fc.assert(fc.property(requestArb(2), (r) => void (checkSameBytes(r) && plain++)), { numRuns: 2000 });
  assert.ok(plain > 100, `only ${plain} of 2000 runs took the fast path`);
});

test('JSON requests: the plain fast path gives the bytes of the general path (property, plain input, duplicate headers)', () => {
  let plain = 0;
  let arrays = 0;
  fc.assert(
    fc.property(requestArb(0), (r) => {
      if (checkSameBytes(r)) plain++;
      if (new Set(r.headers.map(([k]) => k.toLowerCase())).size < r.headers.length) arrays++;
    }),
    { numRuns: 1000 },
  );
  assert.equal(plain, 1000, 'every run is fast-path input');
  assert.ok(arrays > 200, `only ${arrays} runs had a duplicated header`);
});
