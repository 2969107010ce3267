import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAccessLine, type AccessLogEntry } from '../../src/server/logs/access-log.js';
import { parseExact } from '../../src/protocol/tnetstring.js';

const ENTRY: AccessLogEntry = {
  host: 'localhost',
  remoteAddr: '127.0.0.1',
  remotePort: 54321,
  time: 1700000000,
  method: 'GET',
  path: '/',
  version: 'HTTP/1.1',
  status: 200,
  size: 1234,
};

test('the exact bytes of server-core.md §12', () => {
  assert.equal(
    formatAccessLine(ENTRY).toString('latin1'),
    '80:9:localhost,9:127.0.0.1,5:54321#10:1700000000#3:GET,1:/,8:HTTP/1.1,3:200#4:1234#]\n',
  );
});

test('field order and types survive a tnetstring parse', () => {
  const line = formatAccessLine({ ...ENTRY, method: 'JSON', version: '', status: 404, size: 0 });
  assert.equal(line.at(-1), 0x0a);
  const value = parseExact(line.subarray(0, -1));
  assert.deepEqual(value, [
    Buffer.from('localhost'),
    Buffer.from('127.0.0.1'),
    54321,
    1700000000,
    Buffer.from('JSON'),
    Buffer.from('/'),
    Buffer.from(''),
    404,
    0,
  ]);
});

test('wire fields keep their bytes; the host name is UTF-8 from the config', () => {
  const line = formatAccessLine({ ...ENTRY, host: 'café', path: '/a\u00ff' });
  assert.ok(line.includes(Buffer.from('5:caf\u00c3\u00a9,', 'latin1')), line.toString('latin1'));
  assert.ok(line.includes(Buffer.from('3:/a\u00ff,', 'latin1')), line.toString('latin1'));
});

test('a non-integer number is refused, naming the field', () => {
  assert.throws(() => formatAccessLine({ ...ENTRY, size: 1.5 }), /access log: size must be an integer, got 1\.5/);
  assert.throws(() => formatAccessLine({ ...ENTRY, time: 1_700_000_000.5 }), /access log: time must be an integer/);
  assert.throws(() => formatAccessLine({ ...ENTRY, remotePort: Number.NaN }), /remotePort/);
});
