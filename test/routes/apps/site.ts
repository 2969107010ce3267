// An Express 5 app for the route-map interop test: says who answered and what it was asked.
import express from 'express';

const app = express();
app.use((req, res) => {
  res.json({ app: 'express', path: req.path });
});
export default app;
