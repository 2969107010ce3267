/**
 * The per-request shortcuts in src/bridge/cgi-params.ts (a plain path skips
 * percent-decoding and normalising, validated split options and the last Host
 * are remembered, NUL/CR/LF found by a loop) must answer exactly what the
 * general code answers. Each test forces the general path and compares.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildCgiParams, CgiParamsError, splitScriptPath, type CgiLocation, type SplitResult } from '../../src/bridge/cgi-params.js';
import { encodeRequest, parseMessage, type HttpRequest } from '../../src/protocol/index.js';

const OPTS = { index: 'index.php' };

/** Result without the reason text (its character offsets move when the path is prefixed). */
function outcome(r: SplitResult): unknown {
  return r.ok ? r.candidates : { status: r.status };
}

function request(headers: ReadonlyArray<readonly [string, string]>, query = ''): HttpRequest {
  const msg = parseMessage(
    encodeRequest({
      sender: 'S',
      connId: 1,
      path: '/x.php',
      headers: [...headers, ['PATH', '/x.php'], ['METHOD', 'GET'], ['VERSION', 'HTTP/1.1'], ['URI', `/x.php?${query}`], ['QUERY', query], ['URL_SCHEME', 'http']],
    }),
  );
  assert.equal(msg.kind, 'http');
  return msg as HttpRequest;
}

const LOC: CgiLocation = { scriptName: '/x.php', pathInfo: '', scriptFilename: '/srv/x.php', documentRoot: '/srv' };

describe('cgi-params shortcuts', () => {
  test('property: a path split directly equals the same path forced through decoding and normalising', () => {
    const piece = fc.constantFrom('/', '.', '..', 'a', 'x.php', 'X.PHP', 'index.php', 'php', '%2e', '%2f', '%41', '%', '%zz', '%00', 'é', '%C3%A9', '~', ';');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
        const raw = '/' + pieces.join('');
        // "/%2e" + raw decodes to "/." + raw, which normalises back to raw: both slow paths, same answer.
        assert.deepStrictEqual(outcome(splitScriptPath('/%2e' + raw, OPTS)), outcome(splitScriptPath(raw, OPTS)), raw);
      }),
      { numRuns: 500 },
    );
  });

  test('plain paths that still need normalising are normalised', () => {
    assert.deepStrictEqual(outcome(splitScriptPath('/a//b/./x.php/..', OPTS)), [{ scriptName: '/a/b/index.php', pathInfo: '' }]);
    assert.deepStrictEqual(outcome(splitScriptPath('/x.php/.', OPTS)), [
      { scriptName: '/x.php', pathInfo: '/' },
      { scriptName: '/x.php/index.php', pathInfo: '' },
    ]);
    assert.deepStrictEqual(outcome(splitScriptPath('/..', OPTS)), { status: 400 });
    assert.deepStrictEqual(outcome(splitScriptPath('/a/.../x.php', OPTS)), [{ scriptName: '/a/.../x.php', pathInfo: '' }]);
  });

  test('bad split options throw every time, also right after good ones', () => {
    for (const bad of [{ index: '' }, { index: 'a/b' }, { index: '..' }, { index: 'ok.php', extension: '' }, { index: 'ok.php', extension: '.p/p' }]) {
      assert.equal(splitScriptPath('/x.php', OPTS).ok, true);
      assert.throws(() => splitScriptPath('/x.php', bad), TypeError, JSON.stringify(bad));
      assert.throws(() => splitScriptPath('/x.php', bad), TypeError, JSON.stringify(bad));
    }
    assert.deepStrictEqual(outcome(splitScriptPath('/y.inc', { index: 'i.inc', extension: '.inc' })), [{ scriptName: '/y.inc', pathInfo: '' }]);
  });

  test('the remembered Host never leaks into a request with another one', () => {
    const server = (host: string | null): [string | undefined, string | undefined] => {
      const p = new Map(buildCgiParams(request(host === null ? [] : [['host', host]]), LOC));
      return [p.get('SERVER_NAME'), p.get('SERVER_PORT')];
    };
    assert.deepStrictEqual(server('A.example:8080'), ['a.example', '8080']);
    assert.deepStrictEqual(server('A.example:8080'), ['a.example', '8080']);
    assert.deepStrictEqual(server('b.example'), ['b.example', '80']);
    assert.deepStrictEqual(server('bad host'), ['', '80']);
    assert.deepStrictEqual(server('bad host'), ['', '80']);
    assert.deepStrictEqual(server(null), ['', '80']);
    assert.deepStrictEqual(server('A.example:8080'), ['a.example', '8080']);
  });

  test('NUL, CR or LF anywhere in any value is a 400', () => {
    for (const c of ['\0', '\r', '\n']) {
      for (const value of [`${c}v`, `v${c}`, `va${c}lue`]) {
        for (const req of [request([['x-h', value]]), request([], `q=${value}`)]) {
          assert.throws(() => buildCgiParams(req, LOC), (err: unknown) => err instanceof CgiParamsError && err.status === 400, JSON.stringify(value));
        }
      }
    }
    assert.doesNotThrow(() => buildCgiParams(request([['x-h', 'tab\there\u000b\u000c']]), LOC));
  });
});
