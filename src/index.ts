export * from './protocol/index.js';
export * from './handler/index.js';
