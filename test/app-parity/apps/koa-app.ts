// The parity routes on Koa 3 (default export), same paths and answers as express-app.ts.
import Koa from 'koa';
import { PassThrough } from 'node:stream';
import { BIG_BODY, SSE_EVENTS, closesSeen, recordClose, releaseStep, stepReleased } from './signals.js';

const app = new Koa();
// Koa's default error handler writes to stderr; the answer (500 "Internal Server Error") is what we compare.
app.silent = true;

async function readBody(req: Koa.Request['req']): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

app.use(async (ctx) => {
  const id = String(ctx.query.id);
  switch (`${ctx.method} ${ctx.path}`) {
    case 'GET /json':
    case 'HEAD /json':
      ctx.body = { hello: 'world', list: [1, 2, 3], nested: { ok: true } };
      return;
    case 'GET /redirect':
      ctx.redirect('/json');
      return;
    case 'GET /moved':
      ctx.status = 301;
      ctx.redirect('https://example.test/elsewhere');
      return;
    case 'GET /cookies':
      ctx.cookies.set('session', 'abc123', { httpOnly: true });
      ctx.cookies.set('theme', 'dark', { expires: new Date(Date.UTC(2030, 0, 1)), sameSite: 'lax' });
      ctx.type = 'text/plain';
      ctx.body = `you sent: ${ctx.get('cookie') || '(none)'}`;
      return;
    case 'GET /error':
      throw new Error('boom');
    case 'GET /query':
      ctx.body = { query: ctx.query, url: ctx.originalUrl };
      return;
    case 'POST /echo-json':
      ctx.status = 201;
      ctx.body = { got: JSON.parse((await readBody(ctx.req)).toString()) as unknown, type: ctx.get('content-type') };
      return;
    case 'POST /echo-form':
      ctx.body = { got: Object.fromEntries(new URLSearchParams((await readBody(ctx.req)).toString())) };
      return;
    case 'POST /echo-size':
      ctx.body = { bytes: (await readBody(ctx.req)).length };
      return;
    case 'GET /stream': {
      const body = new PassThrough();
      ctx.type = 'text/plain';
      ctx.body = body;
      body.write('first,');
      body.write('second,');
      setImmediate(() => body.end('last'));
      return;
    }
    case 'GET /big':
      ctx.type = 'application/octet-stream';
      ctx.body = BIG_BODY;
      return;
    case 'GET /sse': {
      const body = new PassThrough();
      ctx.set('Cache-Control', 'no-cache');
      ctx.type = 'text/event-stream';
      ctx.body = body;
      void (async () => {
        for (const [i, event] of SSE_EVENTS.entries()) {
          if (i > 0) await stepReleased(id, i);
          body.write(event);
        }
        body.end();
      })();
      return;
    }
    case 'GET /sse-next':
      ctx.body = { released: releaseStep(id) };
      return;
    case 'GET /hold': {
      ctx.req.on('close', () => recordClose(id, 'req'));
      ctx.res.on('close', () => recordClose(id, 'res'));
      const body = new PassThrough();
      ctx.type = 'text/plain';
      ctx.body = body;
      body.write('started');
      return;
    }
    case 'GET /closed':
      ctx.body = await closesSeen(id, 5000);
      return;
    default:
      // Koa's own 404 (body "Not Found")
      return;
  }
});

export default app;
