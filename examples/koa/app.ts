/**
 * A tiny Koa 3 app for `m2bridge --app examples/koa/app.ts`: a greeting
 * that reads the query string, and a streamed response (chunks written as
 * they are produced: the bridge frames them for Mongrel2).
 */
import { Readable } from 'node:stream';
import Koa from 'koa';

const app = new Koa();

app.use(async (ctx) => {
  if (ctx.path === '/count') {
    const to = Math.min(Number(ctx.query.to ?? 5) || 5, 1000);
    ctx.type = 'text/plain';
    ctx.body = Readable.from((function* () {
      for (let i = 1; i <= to; i++) yield `${i}\n`;
    })());
    return;
  }
  const name = typeof ctx.query.name === 'string' && ctx.query.name !== '' ? ctx.query.name : 'world';
  ctx.body = { hello: name, from: 'koa', path: ctx.path };
});

export default app;
