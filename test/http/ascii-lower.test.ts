/** C-locale lower-casing, shared by host matching and MIME lookup. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { asciiLower } from '../../src/http/ascii-lower.js';

test('only A-Z fold; other bytes stay as they are', () => {
  assert.equal(asciiLower('WWW.Example.COM'), 'www.example.com');
  assert.equal(asciiLower('FILE.TAR.GZ'), 'file.tar.gz');
  assert.equal(asciiLower('ÄÖÜ-İ-\xC9'), 'ÄÖÜ-İ-\xC9');
  assert.equal(asciiLower(''), '');
});
