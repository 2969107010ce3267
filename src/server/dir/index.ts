export { DirHandler, type DirHandlerOptions, type DirRequest, type DirResponse } from './dir-handler.js';
