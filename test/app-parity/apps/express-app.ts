// The parity routes on Express 5 (default export). koa-app.ts has the same routes on Koa.
import express, { type NextFunction, type Request, type Response } from 'express';
import { BIG_BODY, SSE_EVENTS, closesSeen, recordClose, releaseStep, stepReleased } from './signals.js';

const app = express();
app.use(express.json());
app.use(express.urlencoded({ extended: false }));

app.get('/json', (_req, res) => {
  res.json({ hello: 'world', list: [1, 2, 3], nested: { ok: true } });
});
app.get('/redirect', (_req, res) => res.redirect(302, '/json'));
app.get('/moved', (_req, res) => res.redirect(301, 'https://example.test/elsewhere'));
app.get('/cookies', (req, res) => {
  res.cookie('session', 'abc123', { httpOnly: true, path: '/' });
  res.cookie('theme', 'dark mode', { expires: new Date(Date.UTC(2030, 0, 1)), sameSite: 'lax' });
  res.type('text/plain').send(`you sent: ${req.get('cookie') ?? '(none)'}`);
});
app.get('/error', () => {
  throw new Error('boom');
});
app.get('/query', (req, res) => {
  res.json({ query: req.query, url: req.originalUrl });
});
app.post('/echo-json', (req, res) => {
  res.status(201).json({ got: req.body as unknown, type: req.get('content-type') });
});
app.post('/echo-form', (req, res) => {
  res.json({ got: req.body as unknown });
});
app.post('/echo-size', (req, res) => {
  let n = 0;
  req.on('data', (c: Buffer) => (n += c.length));
  req.on('end', () => res.json({ bytes: n }));
});
app.get('/stream', (_req, res) => {
  res.type('text/plain');
  res.write('first,');
  res.write('second,');
  setImmediate(() => res.end('last'));
});
app.get('/big', (_req, res) => {
  res.type('application/octet-stream').send(BIG_BODY);
});
app.get('/sse', async (req, res) => {
  const id = String(req.query.id);
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  res.flushHeaders();
  for (const [i, event] of SSE_EVENTS.entries()) {
    if (i > 0) await stepReleased(id, i);
    res.write(event);
  }
  res.end();
});
app.get('/sse-next', (req, res) => {
  res.json({ released: releaseStep(String(req.query.id)) });
});
app.get('/hold', (req, res) => {
  const id = String(req.query.id);
  req.on('close', () => recordClose(id, 'req'));
  res.on('close', () => recordClose(id, 'res'));
  res.type('text/plain');
  res.write('started');
});
app.get('/closed', async (req, res) => {
  res.json(await closesSeen(String(req.query.id), 5000));
});
// Express's own error page, without the stack (NODE_ENV may differ between the two processes).
app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
  res.status(500).type('text/plain').send(`error: ${err.message}`);
});

export default app;
