/**
 * A tiny Express 5 app for `m2bridge --app examples/express/app.ts`: a page,
 * a JSON API with a body, and a 404. Node's own req/res, Express routing,
 * Mongrel2 in front.
 */
import express from 'express';

const app = express();
app.use(express.json());

const notes: string[] = [];

app.get('/', (_req, res) => {
  res.type('text/plain').send('Express behind Mongrel2. Try GET /notes and POST /notes {"text":"..."}\n');
});

app.get('/notes', (_req, res) => {
  res.json({ notes });
});

app.post('/notes', (req, res) => {
  const text: unknown = (req.body as { text?: unknown } | undefined)?.text;
  if (typeof text !== 'string' || text.trim() === '') {
    res.status(400).json({ error: 'expected a JSON body {"text": "..."}' });
    return;
  }
  notes.push(text.trim());
  res.status(201).json({ id: notes.length, text: text.trim() });
});

export default app;
