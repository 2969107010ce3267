/** The embedding API as a user imports it: `m2bridge/server`. */
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { configFromConf, createServer, ConfigSyntaxError } from 'm2bridge/server';

test('createServer(configFromConf(text, uuid)) serves, and closes cleanly', async (t) => {
  const home = await mkdtemp(path.join(os.tmpdir(), 'm2embed-'));
  t.after(() => rm(home, { recursive: true, force: true }));
  await mkdir(path.join(home, 'public'));
  await writeFile(path.join(home, 'public', 'index.html'), '<h1>embedded</h1>\n');
  const config = configFromConf(
    `main = Server(uuid="embed-1", name="embed", chroot="", bind_addr="127.0.0.1", port=1,
       access_log="/logs/access.log", error_log="/logs/error.log", pid_file="/run/m.pid", default_host="localhost",
       hosts=[Host(name="localhost", routes={"/": Dir(base="public/", index_file="index.html", default_ctype="text/plain")})])
     servers = [main]`,
    'embed-1',
  );
  // Port 0 for the test: the config's port is only what listen() binds.
  const server = createServer({ ...config, server: { ...config.server, port: 0 } }, { cwd: home });
  const { port } = await server.listen();
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html');
    assert.equal(await res.text(), '<h1>embedded</h1>\n');
  } finally {
    await server.close();
  }
});

test('a .conf error names the line and column', () => {
  assert.throws(() => configFromConf('servers = [\n  Server(uuid="x" port=)\n]', 'x', 'site.conf'), (err: unknown) => err instanceof ConfigSyntaxError && /^site\.conf:2:/.test(err.message));
});
