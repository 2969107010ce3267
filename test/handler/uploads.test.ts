/**
 * Temp-file uploads (handler-protocol.md §5.1): the `x-mongrel2-upload-*`
 * headers can be forged by a client (§1.4), so openUpload must only accept a
 * finished upload (start == done) naming a regular file under the upload dir.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openUpload, UploadError, type UploadConfig } from '../../src/handler/index.js';
import { encodeRequest, parseMessage, type HttpRequest } from '../../src/protocol/index.js';

const CONTENT = 'hello upload\n'.repeat(100);
const SECRET = 'not yours';

let base: string; // <tmp>/m2bridge-uploads-XXXXXX
let root: string; // base/chroot: the server's chroot on this machine
let dir: string; // root/tmp: upload.temp_store is "/tmp/upload.XXXXXX"
let secret: string; // base/secret.txt: outside the upload dir

before(async () => {
  base = await realpath(await mkdtemp(path.join(os.tmpdir(), 'm2bridge-uploads-')));
  root = path.join(base, 'chroot');
  dir = path.join(root, 'tmp');
  secret = path.join(base, 'secret.txt');
  await mkdir(dir, { recursive: true });
  await writeFile(secret, SECRET);
  await writeFile(path.join(dir, 'upload.other'), 'other');
  await mkdir(path.join(dir, 'upload.dir'));
  await symlink(secret, path.join(dir, 'upload.link'));
  await symlink(dir, path.join(base, 'dir-link'));
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

/** A request as the server (or a forging client) would send it. */
function uploadRequest(headers: ReadonlyArray<readonly [string, string]>, opts: { contentLength?: string | null; body?: string } = {}): HttpRequest {
  const cl = opts.contentLength === undefined ? String(Buffer.byteLength(CONTENT)) : opts.contentLength;
  const msg = parseMessage(
    encodeRequest({
      sender: 'S',
      connId: 1,
      path: '/up',
      headers: [['PATH', '/up'], ['METHOD', 'POST'], ['VERSION', 'HTTP/1.1'], ...(cl === null ? [] : ([['content-length', cl]] as const)), ...headers],
      body: opts.body,
    }),
  );
  assert.equal(msg.kind, 'http');
  return msg as HttpRequest;
}

function finished(claimed: string): HttpRequest {
  return uploadRequest([
    ['x-mongrel2-upload-start', claimed],
    ['x-mongrel2-upload-done', claimed],
  ]);
}

let counter = 0;
/** A fresh upload file in the upload dir; returns its absolute path and chroot-relative name. */
async function newUpload(name = `upload.${++counter}`): Promise<{ abs: string; inChroot: string }> {
  const abs = path.join(dir, name);
  await writeFile(abs, CONTENT);
  return { abs, inChroot: `/tmp/${name}` };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString();
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

describe('openUpload: accepted', () => {
  test('an absolute path under the dir when start == done (no root)', async () => {
    const { abs } = await newUpload();
    const file = await openUpload(finished(abs), { dir });
    assert.equal(file.path, abs);
    assert.equal(file.size, Buffer.byteLength(CONTENT));
    assert.equal(await readAll(file.open()), CONTENT);
    await file.remove();
  });

  test('the chroot-relative path /tmp/upload.X joined to root', async () => {
    const { abs, inChroot } = await newUpload();
    const file = await openUpload(finished(inChroot), { dir, root });
    assert.equal(file.path, abs);
    assert.equal(file.size, Buffer.byteLength(CONTENT));
    assert.equal(await readAll(file.open()), CONTENT);
    await file.remove();
  });

  test('the upload dir may be given through a symlink', async () => {
    const { abs } = await newUpload();
    const viaLink = path.join(base, 'dir-link', path.basename(abs));
    const file = await openUpload(finished(viaLink), { dir: path.join(base, 'dir-link') });
    assert.equal(file.path, abs);
    await file.remove();
  });

  test('a file whose name merely starts with ".." is still inside the dir', async () => {
    const { abs, inChroot } = await newUpload('..upload.dots');
    const file = await openUpload(finished(inChroot), { dir, root });
    assert.equal(file.path, abs);
    await file.remove();
  });
});

describe('UploadFile', () => {
  test('remove() deletes the file and is safe to call twice', async () => {
    const { abs } = await newUpload();
    const file = await openUpload(finished(abs), { dir });
    assert.equal(await exists(abs), true);
    await file.remove();
    assert.equal(await exists(abs), false);
    await file.remove();
    assert.equal(await exists(abs), false);
  });

  test('open() streams the whole content, and can be called more than once', async () => {
    const { abs } = await newUpload();
    const file = await openUpload(finished(abs), { dir });
    assert.equal(await readAll(file.open()), await readFile(abs, 'utf8'));
    assert.equal(await readAll(file.open()), CONTENT);
    await file.remove();
  });
});

describe('openUpload: forged upload headers', () => {
  const pair = (p: string): Array<[string, string]> => [
    ['x-mongrel2-upload-start', p],
    ['x-mongrel2-upload-done', p],
  ];
  test('a small request with its body inline is not an upload, even naming a real temp file', async () => {
    const { abs } = await newUpload();
    await assert.rejects(openUpload(uploadRequest(pair(abs), { contentLength: '3', body: 'abc' }), { dir }), /inline body/);
  });
  test('a request that announced no body is not an upload', async () => {
    const { abs } = await newUpload();
    await assert.rejects(openUpload(uploadRequest(pair(abs), { contentLength: null }), { dir }), /announced no body/);
    await assert.rejects(openUpload(uploadRequest(pair(abs), { contentLength: '0' }), { dir }), /announced no body/);
  });
  test('a file whose size is not the announced Content-Length is refused', async () => {
    const { abs } = await newUpload();
    await assert.rejects(openUpload(uploadRequest(pair(abs), { contentLength: '99999' }), { dir }), /holds \d+ bytes, the request announced 99999/);
  });
  test('a chunked upload has no length to compare', async () => {
    const { abs } = await newUpload();
    const file = await openUpload(uploadRequest([...pair(abs), ['transfer-encoding', 'chunked']], { contentLength: null }), { dir });
    assert.equal(file.size, Buffer.byteLength(CONTENT));
    await file.remove();
  });
});

describe('openUpload: rejected', () => {
  async function rejects(req: HttpRequest, config: UploadConfig, why: RegExp | undefined = undefined): Promise<void> {
    await assert.rejects(openUpload(req, config), (err: unknown) => {
      assert.ok(err instanceof UploadError, `expected an UploadError, got ${String(err)}`);
      if (why) assert.match(err.message, why);
      return true;
    });
  }

  test('start and done naming different files', async () => {
    const { abs } = await newUpload();
    await rejects(
      uploadRequest([
        ['x-mongrel2-upload-start', abs],
        ['x-mongrel2-upload-done', path.join(dir, 'upload.other')],
      ]),
      { dir },
    );
    assert.equal(await exists(abs), true, 'a rejected upload must not be deleted');
  });

  test('only the start header (the upload is not finished)', async () => {
    const { inChroot } = await newUpload();
    await rejects(uploadRequest([['x-mongrel2-upload-start', inChroot]]), { dir, root });
  });

  test('only the done header', async () => {
    const { inChroot } = await newUpload();
    await rejects(uploadRequest([['x-mongrel2-upload-done', inChroot]]), { dir, root });
  });

  test('a path outside the dir: /etc/passwd (the captured forgery, §1.2)', async () => {
    await rejects(finished('/etc/passwd'), { dir });
  });

  test('an existing file outside the dir', async () => {
    await rejects(finished(secret), { dir });
    assert.equal(await readFile(secret, 'utf8'), SECRET);
  });

  test('.. traversal out of the dir (with and without root)', async () => {
    await rejects(finished(`${dir}/../../secret.txt`), { dir });
    await rejects(finished('/tmp/../../secret.txt'), { dir, root });
  });

  test('.. traversal to a file that exists under root but outside the dir', async () => {
    await writeFile(path.join(root, 'etc-file'), 'chroot file');
    await rejects(finished('/tmp/../etc-file'), { dir, root });
  });

  test('a symlink inside the dir pointing outside', async () => {
    await rejects(finished(path.join(dir, 'upload.link')), { dir });
    await rejects(finished('/tmp/upload.link'), { dir, root });
    assert.equal(await readFile(secret, 'utf8'), SECRET);
  });

  test('a directory', async () => {
    await rejects(finished('/tmp/upload.dir'), { dir, root });
  });

  test('the upload dir itself', async () => {
    await rejects(finished('/tmp'), { dir, root });
  });

  test('a missing file', async () => {
    await rejects(finished('/tmp/upload.missing'), { dir, root });
  });

  test('a relative path, even one that would resolve under root', async () => {
    const { inChroot } = await newUpload();
    await rejects(finished(inChroot.slice(1)), { dir, root });
  });

  test('a request that is not an upload', async () => {
    await rejects(uploadRequest([]), { dir, root });
  });

  test('a streaming upload (UPLOAD_STREAM) is not a temp-file upload', async () => {
    await rejects(uploadRequest([['UPLOAD_STREAM', '0']]), { dir, root });
  });
});
