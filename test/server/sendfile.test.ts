/** The sendfile extended reply through the core: ordered with normal replies, confined to the server root and Dir bases. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { rawHandler, startCore, type CorePeer, type RawHandler } from '../support/core.js';

function request(port: number, h: RawHandler, script: (connId: number) => Promise<void>): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port }, () => sock.write('GET /handler/file HTTP/1.1\r\nHost: localhost\r\n\r\n'));
    const got: Buffer[] = [];
    sock.on('data', (d: Buffer) => got.push(d));
    sock.once('close', () => resolve(Buffer.concat(got)));
    sock.once('error', reject);
    void h.next().then((req) => script(req.connId));
  });
}

const tnet = (s: string): string => `${Buffer.byteLength(s)}:${s},`;
const sendfile = (connId: number, file: string): string => {
  const list = tnet('sendfile') + tnet(file);
  return `x ${String(connId).length + 2}:X ${connId}, ${list.length}:${list}]`;
};
const data = (connId: number, text: string): string => `x ${String(connId).length}:${connId}, ${text}`;

describe('core: sendfile', { timeout: 30_000 }, () => {
  let peer: CorePeer;
  let h: RawHandler;
  before(async () => {
    peer = await startCore();
    h = await rawHandler(peer);
    writeFileSync(path.join(peer.staticDir, 'file.bin'), 'the file contents 23 b\n');
    writeFileSync(path.join(peer.home, 'root.txt'), 'root');
  });
  after(async () => {
    h?.close();
    await peer?.stop();
  });

  test('head, file, then the reply sent after it, in order (as captured from Mongrel2)', async () => {
    const got = await request(peer.httpPort, h, async (id) => {
      await h.send(data(id, 'HTTP/1.1 200 OK\r\nContent-Length: 28\r\n\r\n'));
      await h.send(sendfile(id, 'static/file.bin'));
      await h.send(data(id, 'AFTER'));
      await h.send(`x ${String(id).length}:${id}, `);
    });
    assert.equal(got.toString(), 'HTTP/1.1 200 OK\r\nContent-Length: 28\r\n\r\nthe file contents 23 b\nAFTER');
  });

  test('a file in the server root is allowed too', async () => {
    const got = await request(peer.httpPort, h, async (id) => {
      await h.send(sendfile(id, path.join(peer.home, 'root.txt')));
      await h.send(`x ${String(id).length}:${id}, `);
    });
    assert.equal(got.toString(), 'root');
  });

  test('a path outside the root and Dir bases closes the connection and is logged', async () => {
    const got = await request(peer.httpPort, h, async (id) => {
      await h.send(data(id, 'HTTP/1.1 200 OK\r\n\r\n'));
      await h.send(sendfile(id, '/etc/passwd'));
      await h.send(data(id, 'NEVER'));
    });
    assert.equal(got.toString(), 'HTTP/1.1 200 OK\r\n\r\n');
    assert.ok(peer.logs().some((r) => r.msg === 'sendfile refused; closing the connection'));
  });
});
