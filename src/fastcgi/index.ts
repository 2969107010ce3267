export * from './errors.js';
export * from './records.js';
export {
  FastCgiClient,
  parseFastCgiAddress,
  formatFastCgiAddress,
  type FastCgiAddress,
  type FastCgiClientOptions,
  type FastCgiRequestInit,
  type FastCgiResponse,
  type FastCgiEnd,
  type FastCgiStats,
  type FastCgiCancel,
} from './client.js';
