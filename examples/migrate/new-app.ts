/**
 * The new Express app taking over one URL of the legacy PHP site,
 * /report.php, without changing the URL: clients and links do not notice.
 */
import express from 'express';

const app = express();

app.get('/report.php', (_req, res) => {
  res.set('X-Served-By', 'new-express').json({ report: 'sales', total: 1234, source: 'new-express' });
});

export default app;
