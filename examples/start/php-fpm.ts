/**
 * A private php-fpm for `npm start`: one static pool of 2 workers on a
 * free loopback port, its files in a folder of ours. Only used when
 * Debian's php-fpm is installed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface PhpFpm {
  readonly address: string;
  stop(): Promise<void>;
}

/** Debian's php-fpm binary (php-fpm8.2 on bookworm), if installed. */
export function findPhpFpm(): string | undefined {
  const dir = '/usr/sbin';
  if (!existsSync(dir)) return undefined;
  const bin = readdirSync(dir).find((f) => /^php-fpm[0-9.]*$/.test(f));
  return bin === undefined ? undefined : path.join(dir, bin);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });
}

export async function startPhpFpm(bin: string, home: string): Promise<PhpFpm> {
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  const conf = path.join(home, 'php-fpm.conf');
  writeFileSync(
    conf,
    [
      '[global]',
      `pid = ${path.join(home, 'run', 'php-fpm.pid')}`,
      `error_log = ${path.join(home, 'logs', 'php-fpm.log')}`,
      'daemonize = no',
      '[www]',
      ...(asRoot ? ['user = www-data', 'group = www-data'] : []),
      `listen = 127.0.0.1:${port}`,
      'pm = static',
      'pm.max_children = 2',
      'clear_env = no',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(bin, ['-F', '-y', conf, ...(asRoot ? ['-R'] : [])], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  // php-fpm has no readiness signal: poll its port, bounded.
  while (!(await listening(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`php-fpm did not start (see ${path.join(home, 'logs', 'php-fpm.log')})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    address: `127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
