/** The one forwarded-header policy (core proxy and m2bridge --http). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FORWARDED_NAMES, forwardedHeaders } from '../../src/http/forwarded-headers.js';

const client: Record<string, string[]> = {
  'x-forwarded-for': ['6.6.6.6', ' 7.7.7.7, 8.8.8.8 '],
  'x-forwarded-proto': ['gopher'],
  'x-forwarded-host': ['evil.example'],
  forwarded: ['for=6.6.6.6', 'for=7.7.7.7'],
};
const values = (name: string): string[] => client[name] ?? [];
const facts = { peer: '192.0.2.7', proto: 'https', host: 'app.example' };

test("not trusting: the client's forwarded headers are replaced, Forwarded dropped", () => {
  assert.deepEqual(forwardedHeaders(values, { ...facts, trust: false }), [
    ['X-Forwarded-For', '192.0.2.7'],
    ['X-Forwarded-Proto', 'https'],
    ['X-Forwarded-Host', 'app.example'],
  ]);
});

test("trusting: the peer is appended to the client's chain; its Proto, Host and Forwarded are kept", () => {
  assert.deepEqual(forwardedHeaders(values, { ...facts, trust: true }), [
    ['X-Forwarded-For', '6.6.6.6, 7.7.7.7, 8.8.8.8, 192.0.2.7'],
    ['X-Forwarded-Proto', 'gopher'],
    ['X-Forwarded-Host', 'evil.example'],
    ['Forwarded', 'for=6.6.6.6'],
    ['Forwarded', 'for=7.7.7.7'],
  ]);
});

test('trusting a client that sent none (or empty ones): ours fill in', () => {
  const empty = (name: string): string[] => (name === 'x-forwarded-proto' ? [''] : []);
  assert.deepEqual(forwardedHeaders(empty, { ...facts, trust: true }), [
    ['X-Forwarded-For', '192.0.2.7'],
    ['X-Forwarded-Proto', 'https'],
    ['X-Forwarded-Host', 'app.example'],
  ]);
});

test('facts missing: no empty headers', () => {
  assert.deepEqual(forwardedHeaders(values, { peer: undefined, proto: undefined, host: undefined, trust: false }), []);
});

test('FORWARDED_NAMES names every header the policy sets', () => {
  for (const [name] of forwardedHeaders(values, { ...facts, trust: true })) assert.ok(FORWARDED_NAMES.has(name.toLowerCase()), name);
});
