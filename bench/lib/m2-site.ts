/**
 * A server folder for benches that run the real Mongrel2 and our core on the
 * same config: a fresh HOME (= the chroot) with run/ logs/ tmp/ static/, the
 * given static files, a conf rendered from a bench template with fresh ports
 * (HTTP_PORT, SEND_PORT, RECV_PORT) and uuids, and the config.sqlite that
 * Debian's m2sh loads from it. startRealMongrel2 runs /usr/bin/mongrel2 on
 * it the way test/support/mongrel2.ts does (setpriv --pdeathsig, bounded
 * readiness poll until every port is its LISTEN socket).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { M2SH_BIN, MONGREL2_BIN, renderMongrel2Conf } from '../../test/support/mongrel2.js';
import { freePorts, listenOwner, readIf, spawnDaemon, tail, terminateDaemon, tryConnect } from '../../test/support/process.js';

export interface Site {
  home: string;
  uuid: string;
  /** HOME/config.sqlite */
  db: string;
  httpPort: number;
  /** The handler route's specs (mongrel2 binds both; a handler connects). */
  sendSpec: string;
  recvSpec: string;
  ports: number[];
}

const ENV = { ...process.env, LOGNAME: process.env.LOGNAME ?? process.env.USER ?? 'root' };

export async function prepareSite(template: string, values: Readonly<Record<string, string | number>>, files: Readonly<Record<string, Buffer>>): Promise<Site> {
  const home = await fsp.mkdtemp(path.join(os.tmpdir(), 'm2site-'));
  for (const dir of ['run', 'logs', 'tmp', 'static']) await fsp.mkdir(path.join(home, dir));
  for (const [name, body] of Object.entries(files)) await fsp.writeFile(path.join(home, 'static', name), body);
  const [httpPort, send, recv] = (await freePorts(3)) as [number, number, number];
  const uuid = randomUUID();
  const conf = renderMongrel2Conf(await fsp.readFile(template, 'utf8'), { ...values, SERVER_UUID: uuid, HTTP_PORT: httpPort, SEND_PORT: send, RECV_PORT: recv, SEND_IDENT: randomUUID() });
  await fsp.writeFile(path.join(home, 'mongrel2.conf'), conf);
  const out = await new Promise<string>((resolve) =>
    execFile(M2SH_BIN, ['load', '-config', 'mongrel2.conf', '-db', 'config.sqlite'], { cwd: home, env: ENV, timeout: 15_000 }, (err, stdout, stderr) => resolve(`${stdout}${stderr}${err ? `\n${err.message}` : ''}`)),
  );
  // m2sh exits 0 even when the conf does not parse: its output says so.
  if (/\[ERROR\]|Command failed/.test(out)) throw new Error(`m2sh load failed in ${home}:\n${tail(out)}`);
  return { home, uuid, db: path.join(home, 'config.sqlite'), httpPort, sendSpec: `tcp://127.0.0.1:${send}`, recvSpec: `tcp://127.0.0.1:${recv}`, ports: [httpPort, send, recv] };
}

export interface RealMongrel2 {
  pid: number;
  stop(): Promise<void>;
}

export async function startRealMongrel2(site: Site, timeoutMs = 10_000): Promise<RealMongrel2> {
  const outLog = path.join(site.home, 'logs', 'mongrel2.out');
  const daemon = await spawnDaemon(MONGREL2_BIN, ['config.sqlite', site.uuid], { cwd: site.home, env: ENV, outLog, pdeathsig: 'SIGKILL', comms: ['mongrel2'] });
  const stop = (): Promise<void> =>
    terminateDaemon(daemon, [
      ['SIGINT', 5000],
      ['SIGTERM', 3000],
      ['SIGKILL', 3000],
    ]);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await tryConnect({ port: site.httpPort }, 500)) && site.ports.every((p) => listenOwner(daemon.pid, p) !== 'none')) break;
    if (daemon.proc.exitCode !== null || daemon.proc.signalCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`mongrel2 in ${site.home} did not listen on ${site.ports.join(', ')} within ${timeoutMs} ms:\n${tail(readIf(outLog) + readIf(path.join(site.home, 'logs', 'error.log')))}`);
    }
    await sleep(50);
  }
  return { pid: daemon.pid, stop };
}
