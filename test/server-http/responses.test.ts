/** Fixed responses, byte for byte as server-core.md §8.4 / src/response.c. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONTINUE_100, fixedResponse, NOT_MODIFIED_304, plainResponse, POLICY_RESPONSE, SERVER_HEADER } from '../../src/server/http/responses.js';

const expected = (status: number, reason: string, body: string): string =>
  `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: ${body.length}\r\nServer: Mongrel2/1.13.0\r\n\r\n${body}`;

test('every fixed error response', () => {
  const table: Array<[400 | 404 | 405 | 412 | 413 | 417 | 500 | 501 | 502 | 504, string, string]> = [
    [400, 'Bad Request', 'Bad Request'],
    [404, 'Not Found', 'Not Found'],
    [405, 'Method Not Allowed', 'Method Not Allowed'],
    [412, 'Precondition Failed', 'Precondition Failed'],
    [413, 'Request Entity Too Large', 'Entity Too Large'],
    [417, 'Expectation Failed', 'Expectation Failed'],
    [500, 'Internal Server Error', 'Internal Server Error'],
    [501, 'Not Implemented', 'Not Implemented'],
    [502, 'Bad Gateway', 'Bad Gateway'],
    [504, 'Gateway Timeout', 'Gateway Timeout'],
  ];
  for (const [status, reason, body] of table) assert.equal(fixedResponse(status).toString('latin1'), expected(status, reason, body));
  // The byte count of the real 400 (129 with "1.12.2" in the Debian capture; same length here).
  assert.equal(fixedResponse(400).length, 129);
});

test('plainResponse: the same shape for any status, reason and body; Content-Length counts UTF-8 bytes', () => {
  assert.equal(plainResponse(418, "I'm a Teapot", 'short and stout').toString(), expected(418, "I'm a Teapot", 'short and stout'));
  const r = plainResponse(403, 'Forbidden', 'nein – verboten');
  assert.match(r.toString('utf8'), /\r\nContent-Length: 17\r\n.*\r\n\r\nnein – verboten$/s);
});

test('fixedResponse hands out copies', () => {
  const a = fixedResponse(404);
  a.fill(0);
  assert.equal(fixedResponse(404).subarray(0, 8).toString(), 'HTTP/1.1');
});

test('100 Continue, 304 and the Flash policy', () => {
  assert.equal(SERVER_HEADER, 'Mongrel2/1.13.0');
  assert.equal(CONTINUE_100.toString('latin1'), 'HTTP/1.1 100 Continue\r\n\r\n');
  assert.equal(NOT_MODIFIED_304.toString('latin1'), 'HTTP/1.1 304 Not Modified\r\nConnection: close\r\nContent-Length: 0\r\nServer: Mongrel2/1.13.0\r\n\r\n');
  const policy = POLICY_RESPONSE.toString('latin1');
  assert.ok(policy.startsWith('<?xml version="1.0"?><!DOCTYPE cross-domain-policy SYSTEM "http://www.macromedia.com/xml/dtds/cross-domain-policy.dtd">'));
  assert.ok(policy.endsWith('<cross-domain-policy> <allow-access-from domain="*" to-ports="*" /></cross-domain-policy>\0'));
  assert.equal(POLICY_RESPONSE.indexOf(0), POLICY_RESPONSE.length - 1);
});
