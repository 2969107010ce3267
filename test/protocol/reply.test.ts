import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  ctlReply,
  encodeReply,
  groupTargets,
  isValidSender,
  MAX_TARGETS,
  parseReply,
  sendfileReply,
  type Reply,
} from '../../src/protocol/index.js';
import { assertEncodeError, assertProtocolError, bytes, cat } from './helpers.js';

const ids = (n: number, from = 1): number[] => Array.from({ length: n }, (_, i) => from + i);
const idList = (n: number): string => ids(n).join(' ');

function data(sender: string, targets: readonly number[], body: string | Buffer): Reply {
  return { type: 'data', sender, ids: targets, body: typeof body === 'string' ? bytes(body) : body };
}

/** Compares a parsed reply with the expected fields, bodies by bytes. */
function assertReply(actual: Reply, want: { type: Reply['type']; sender: string; ids: number[]; body?: string; name?: string }): void {
  assert.equal(actual.type, want.type);
  assert.equal(actual.sender, want.sender);
  assert.deepStrictEqual([...actual.ids], want.ids);
  if (actual.type === 'data') assert.equal(actual.body.toString('latin1'), want.body);
  if (actual.type === 'extended') assert.equal(actual.name, want.name);
}

describe('parseReply: valid replies (§3.1, captured accepted)', () => {
  test('x 1:1, data', () => {
    assertReply(parseReply(bytes('x 1:1, data')), { type: 'data', sender: 'x', ids: [1], body: 'data' });
  });

  test('ab 6:1 2 3 , multi (single trailing space inside the netstring)', () => {
    assertReply(parseReply(bytes('ab 6:1 2 3 , multi')), { type: 'data', sender: 'ab', ids: [1, 2, 3], body: 'multi' });
  });

  test('whatever 3:999, data', () => {
    assertReply(parseReply(bytes('whatever 3:999, data')), { type: 'data', sender: 'whatever', ids: [999], body: 'data' });
  });

  test('UUID 1:5,  (space, empty body) is the close message', () => {
    assertReply(parseReply(bytes('UUID 1:5, ')), { type: 'close', sender: 'UUID', ids: [5] });
  });

  test('UUID 4:1 2 , (trailing space counts in Len) closes two ids', () => {
    assertReply(parseReply(bytes('UUID 4:1 2 , ')), { type: 'close', sender: 'UUID', ids: [1, 2] });
  });

  test('S 2:12, hi (§3.5)', () => {
    assertReply(parseReply(bytes('S 2:12, hi')), { type: 'data', sender: 'S', ids: [12], body: 'hi' });
  });

  test('only the first space after "," is a separator: 1:2,  x delivers " x"', () => {
    assertReply(parseReply(bytes('ab 1:2,  x')), { type: 'data', sender: 'ab', ids: [2], body: ' x' });
  });

  test('the body is every remaining byte, including spaces, NULs and CRLF', () => {
    const body = bytes('HTTP/1.1 200 OK\r\n\r\n\x00 a b \xff');
    const r = parseReply(cat('f00-BA7 1:7, ', body));
    assert.equal(r.type, 'data');
    if (r.type === 'data') assert.ok(r.body.equals(body));
  });

  test('uuid-shaped senders and the full character class are accepted', () => {
    assertReply(parseReply(bytes('f400bf85-4538-4f7a-8908-67e313d515c2 1:1, x')), { type: 'data', sender: 'f400bf85-4538-4f7a-8908-67e313d515c2', ids: [1], body: 'x' });
    assertReply(parseReply(bytes('azAZ09- 1:1, x')), { type: 'data', sender: 'azAZ09-', ids: [1], body: 'x' });
  });

  test('exactly 128 ids are accepted', () => {
    const list = idList(128);
    assertReply(parseReply(bytes(`ab ${list.length}:${list}, x`)), { type: 'data', sender: 'ab', ids: ids(128), body: 'x' });
  });

  test('the largest uint32 id is accepted', () => {
    assertReply(parseReply(bytes('ab 10:4294967295, x')), { type: 'data', sender: 'ab', ids: [4294967295], body: 'x' });
  });

  test('X sendfile reply (§4)', () => {
    const r = parseReply(bytes('UUID 3:X 5, 28:8:sendfile,13:/data/big.iso,]'));
    assertReply(r, { type: 'extended', sender: 'UUID', ids: [5], name: 'sendfile' });
    if (r.type === 'extended') {
      assert.ok(Buffer.isBuffer(r.args));
      assert.equal(r.args.toString('latin1'), '/data/big.iso');
    }
  });

  test('X ctl replies (§4.1, §5.2)', () => {
    const credits = parseReply(bytes('ab 3:X 1, 27:3:ctl,17:7:credits,4:2000#}]'));
    assertReply(credits, { type: 'extended', sender: 'ab', ids: [1], name: 'ctl' });
    if (credits.type === 'extended') assert.deepStrictEqual({ ...(credits.args as object) }, { credits: 2000 });
    const keep = parseReply(bytes('UUID 3:X 7, 31:3:ctl,21:10:keep-alive,4:true!}]'));
    if (keep.type !== 'extended') assert.fail('not extended');
    assert.deepStrictEqual({ ...(keep.args as object) }, { 'keep-alive': true });
    const multi = parseReply(bytes('UUID 5:X 7 8, 26:3:ctl,16:6:cancel,4:true!}]'));
    assertReply(multi, { type: 'extended', sender: 'UUID', ids: [7, 8], name: 'ctl' });
  });
});

describe('parseReply: invalid replies (§3.1, captured rejected)', () => {
  const list129 = idList(129);
  const invalid: Array<[string, Buffer]> = [
    ['a_b 1:1, x (underscore in the sender)', bytes('a_b 1:1, x')],
    ['a.b 1:1, x (dot in the sender)', bytes('a.b 1:1, x')],
    ['a:b 1:1, x (colon in the sender)', bytes('a:b 1:1, x')],
    ['ab 5:1, x (length longer than the id list)', bytes('ab 5:1, x')],
    ['ab 2:1, x (length longer than the id list, lands on a space)', bytes('ab 2:1, x')],
    ['ab 4:1  2, x (two spaces between ids)', bytes('ab 4:1  2, x')],
    ['ab 1:1, (no space after the comma)', bytes('ab 1:1,')],
    ['UUID 1:5, (close without the mandatory space)', bytes('UUID 1:5,')],
    ['ab 1:1,x (no space before the body)', bytes('ab 1:1,x')],
    ['ab 3:x 1, ... (lower-case x)', bytes('ab 3:x 1, ...')],
    ['ab 2:X1, x (X not followed by a space)', bytes('ab 2:X1, x')],
    ['ab 2:X , x (X without ids)', bytes('ab 2:X , x')],
    ['ab 0:, x (zero targets)', bytes('ab 0:, x')],
    ['ab 1: , x (only a space)', bytes('ab 1: , x')],
    ['ab 2: 1, x (leading space)', bytes('ab 2: 1, x')],
    ['ab 3:1,2, x (comma separator)', bytes('ab 3:1,2, x')],
    ['ab 2:-1, x (negative id)', bytes('ab 2:-1, x')],
    ['ab 10:4294967296, x (id above uint32)', bytes('ab 10:4294967296, x')],
    ['ab 1:1; x (wrong netstring terminator)', bytes('ab 1:1; x')],
    ['ab :1, x (missing length)', bytes('ab :1, x')],
    [' 1:1, x (empty sender)', bytes(' 1:1, x')],
    ['ab1:1, x (no space after the sender)', bytes('ab1:1, x')],
    ['129 ids', bytes(`ab ${list129.length}:${list129}, x`)],
    ['X reply whose body is not a tnetstring', bytes('ab 3:X 1, hello')],
    ['X reply with an empty body', bytes('ab 3:X 1, ')],
    ['X reply whose list has 3 elements (§4)', bytes('ab 3:X 1, 12:1:a,1:b,1:c,]')],
    ['X reply with trailing bytes after the tnetstring (§4)', bytes('ab 3:X 1, 8:1:a,1:b,]x')],
    ['X reply whose first element is not a string', bytes('ab 3:X 1, 8:1:1#1:b,]')],
    ['X reply whose body is not a list', bytes('ab 3:X 1, 8:1:a,1:b,}')],
    ['X reply body 3:abcZ (crashes Mongrel2, §4.3)', bytes('ab 3:X 1, 3:abcZ')],
  ];
  for (const [name, input] of invalid) {
    test(name, () => {
      assertProtocolError(() => parseReply(input), input, name);
    });
  }

  test('maxTargets option lowers the id limit', () => {
    assertProtocolError(() => parseReply(bytes('ab 5:1 2 3, x'), { maxTargets: 2 }));
    assert.equal(parseReply(bytes('ab 3:1 2, x'), { maxTargets: 2 }).ids.length, 2);
  });
});

describe('encodeReply: exact bytes', () => {
  test('data reply (§3.5): S 2:12, hi', () => {
    assert.equal(encodeReply(data('S', [12], 'hi')).toString('latin1'), 'S 2:12, hi');
  });

  test('several ids are joined with single spaces', () => {
    assert.equal(encodeReply(data('ab', [1, 2, 3], 'multi')).toString('latin1'), 'ab 5:1 2 3, multi');
  });

  test('close reply: UUID 1:5, ', () => {
    assert.equal(encodeReply({ type: 'close', sender: 'UUID', ids: [5] }).toString('latin1'), 'UUID 1:5, ');
  });

  test('binary bodies are written verbatim', () => {
    const body = Buffer.from([0, 1, 0xff, 0x20, 0x2c]);
    assert.ok(encodeReply(data('a', [1], body)).equals(cat('a 1:1, ', body)));
  });

  test('§4.1 ctl keep-alive', () => {
    assert.equal(encodeReply(ctlReply('UUID', [7], { keepAlive: true })).toString('latin1'), 'UUID 3:X 7, 31:3:ctl,21:10:keep-alive,4:true!}]');
  });

  test('§4.1 ctl credits', () => {
    assert.equal(encodeReply(ctlReply('UUID', [7], { credits: 65536 })).toString('latin1'), 'UUID 3:X 7, 28:3:ctl,18:7:credits,5:65536#}]');
  });

  test('§4.1 ctl cancel', () => {
    assert.equal(encodeReply(ctlReply('UUID', [7], { cancel: true })).toString('latin1'), 'UUID 3:X 7, 26:3:ctl,16:6:cancel,4:true!}]');
  });

  test('§5.2 ctl credits 2000', () => {
    assert.equal(encodeReply(ctlReply('ab', [1], { credits: 2000 })).toString('latin1'), 'ab 3:X 1, 27:3:ctl,17:7:credits,4:2000#}]');
  });

  test('ctl keys come out in the order keep-alive, credits, cancel', () => {
    assert.equal(
      encodeReply(ctlReply('U', [1], { cancel: true, credits: 1, keepAlive: true })).toString('latin1'),
      'U 3:X 1, 61:3:ctl,51:10:keep-alive,4:true!7:credits,1:1#6:cancel,4:true!}]',
    );
  });

  test('§4 sendfile demo: UUID 3:X 5, 28:8:sendfile,13:/data/big.iso,]', () => {
    assert.equal(encodeReply(sendfileReply('UUID', [5], '/data/big.iso')).toString('latin1'), 'UUID 3:X 5, 28:8:sendfile,13:/data/big.iso,]');
  });

  test('the largest uint32 id and id lists of 128', () => {
    assert.equal(encodeReply(data('a', [4294967295], 'x')).toString('latin1'), 'a 10:4294967295, x');
    const list = idList(128);
    assert.equal(encodeReply(data('a', ids(128), 'x')).toString('latin1'), `a ${list.length}:${list}, x`);
  });
});

describe('encodeReply: refusals', () => {
  test('bad senders: a_b, a.b, empty, space, non-ASCII', () => {
    for (const sender of ['a_b', 'a.b', '', 'a b', 'a:b', 'é', 'a\n']) {
      assertEncodeError(() => encodeReply(data(sender, [1], 'x')), JSON.stringify(sender));
      assertEncodeError(() => encodeReply({ type: 'close', sender, ids: [1] }), JSON.stringify(sender));
      assert.equal(isValidSender(sender), false, JSON.stringify(sender));
    }
    assert.equal(isValidSender('f400bf85-4538-4f7a-8908-67e313d515c2'), true);
  });

  test('no ids', () => {
    assertEncodeError(() => encodeReply(data('a', [], 'x')));
    assertEncodeError(() => encodeReply({ type: 'close', sender: 'a', ids: [] }));
  });

  test('129 ids (and more than a lowered maxTargets)', () => {
    assert.equal(MAX_TARGETS, 128);
    assertEncodeError(() => encodeReply(data('a', ids(129), 'x')));
    assertEncodeError(() => encodeReply(data('a', ids(5), 'x'), { maxTargets: 4 }));
    assert.ok(encodeReply(data('a', ids(129), 'x'), { maxTargets: 200 }));
  });

  test('negative, non-integer, non-finite and >uint32 ids', () => {
    for (const id of [-1, 1.5, NaN, Infinity, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
      assertEncodeError(() => encodeReply(data('a', [1, id], 'x')), String(id));
    }
  });

  test('an empty data body (that would be the close message)', () => {
    assertEncodeError(() => encodeReply(data('a', [1], '')));
  });

  test('ctl credits must be an integer from 1 to 2^31-1', () => {
    for (const credits of [1.5, 0, -1, NaN, 2 ** 31]) {
      assertEncodeError(() => ctlReply('a', [1], { credits }), String(credits));
    }
    assert.ok(ctlReply('a', [1], { credits: 2 ** 31 - 1 }));
    assert.ok(ctlReply('a', [1], { credits: 1 }));
  });

  test('ctl needs at least one key', () => {
    assertEncodeError(() => ctlReply('a', [1], {}));
    assertEncodeError(() => ctlReply('a', [1], { keepAlive: false, cancel: false }));
  });

  test('sendfile path must be non-empty and NUL-free', () => {
    assertEncodeError(() => sendfileReply('a', [1], ''));
    assertEncodeError(() => sendfileReply('a', [1], '/etc/\0passwd'));
  });

  test('extended replies refuse floats and empty names', () => {
    assertEncodeError(() => encodeReply({ type: 'extended', sender: 'a', ids: [1], name: 'ctl', args: { credits: 1.5 } }));
    assertEncodeError(() => encodeReply({ type: 'extended', sender: 'a', ids: [1], name: '', args: {} }));
  });

  test('the id checks also apply to ctl and sendfile replies', () => {
    assertEncodeError(() => encodeReply(ctlReply('a', [], { cancel: true })));
    assertEncodeError(() => encodeReply(sendfileReply('a_b', [1], '/f')));
  });
});

describe('groupTargets', () => {
  test('splits 300 ids into 128/128/44 in order', () => {
    const groups = groupTargets(ids(300));
    assert.deepStrictEqual(
      groups.map((g) => g.length),
      [128, 128, 44],
    );
    assert.deepStrictEqual(groups.flat(), ids(300));
  });

  test('drops duplicates, keeping first occurrences in order', () => {
    assert.deepStrictEqual(groupTargets([3, 1, 3, 2, 1]), [[3, 1, 2]]);
    assert.deepStrictEqual(groupTargets([...ids(200), ...ids(200)]).map((g) => g.length), [128, 72]);
  });

  test('respects a custom group size and accepts any iterable', () => {
    assert.deepStrictEqual(groupTargets(new Set([1, 2, 3, 4, 5]), 2), [[1, 2], [3, 4], [5]]);
    assert.deepStrictEqual(groupTargets([]), []);
  });

  // BUG (src/protocol/reply.ts:84-88): groupTargets does not check maxTargets.
  // With 0 (or a negative number) `i += maxTargets` never advances, so it loops
  // forever pushing empty groups until the process runs out of memory; with
  // NaN it returns [[]], an empty group that encodeReply refuses. Run in a
  // child process so the hang cannot stall this suite.
  test('groupTargets refuses a group size below 1 instead of hanging', () => {
    const src = new URL('../../src/protocol/index.ts', import.meta.url).href;
    const code = `
      import { groupTargets } from ${JSON.stringify(src)};
      const out = {};
      for (const n of [0, -1, NaN]) {
        try {
          const groups = groupTargets([1, 2, 3], n);
          const ok = groups.length > 0 && groups.every((g) => g.length > 0) && JSON.stringify(groups.flat()) === '[1,2,3]';
          out[String(n)] = ok ? 'ok' : 'returned ' + JSON.stringify(groups);
        } catch (err) {
          out[String(n)] = 'ok';
        }
      }
      console.log(JSON.stringify(out));`;
    const cwd = fileURLToPath(new URL('../..', import.meta.url));
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--max-old-space-size=96', '--input-type=module', '-e', code], { cwd, timeout: 4000, encoding: 'utf8' });
    assert.ok(r.signal === null && r.status === 0, `groupTargets([1, 2, 3], 0) did not return (signal ${String(r.signal)}, status ${String(r.status)})`);
    assert.deepStrictEqual(JSON.parse(r.stdout), { '0': 'ok', '-1': 'ok', NaN: 'ok' });
  });

  test('every group encodes as a valid reply', () => {
    for (const group of groupTargets(ids(1000))) assert.ok(parseReply(encodeReply(data('a', group, 'x'))));
  });
});

describe('reply properties', () => {
  const sender = fc.stringMatching(/^[A-Za-z0-9-]{1,40}$/);
  const targetIds = fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: MAX_TARGETS });

  test('encodeReply → parseReply round trip for data replies', () => {
    fc.assert(
      fc.property(sender, targetIds, fc.uint8Array({ minLength: 1, maxLength: 200 }), (s, t, b) => {
        const reply: Reply = { type: 'data', sender: s, ids: t, body: Buffer.from(b) };
        const back = parseReply(encodeReply(reply));
        assert.equal(back.type, 'data');
        assert.equal(back.sender, s);
        assert.deepStrictEqual([...back.ids], t);
        if (back.type === 'data') assert.deepStrictEqual([...back.body], [...b]);
      }),
      { numRuns: 300 },
    );
  });

  test('encodeReply → parseReply round trip for close and ctl replies', () => {
    fc.assert(
      fc.property(sender, targetIds, fc.integer({ min: 1, max: 0x7fffffff }), fc.boolean(), (s, t, credits, keepAlive) => {
        const close = parseReply(encodeReply({ type: 'close', sender: s, ids: t }));
        assert.deepStrictEqual({ type: close.type, sender: close.sender, ids: [...close.ids] }, { type: 'close', sender: s, ids: t });
        const ctl = parseReply(encodeReply(ctlReply(s, t, { credits, keepAlive })));
        if (ctl.type !== 'extended') assert.fail('ctl reply did not parse as extended');
        assert.equal(ctl.name, 'ctl');
        assert.deepStrictEqual([...ctl.ids], t);
        assert.deepStrictEqual({ ...(ctl.args as object) }, keepAlive ? { 'keep-alive': true, credits } : { credits });
      }),
      { numRuns: 200 },
    );
  });
});
