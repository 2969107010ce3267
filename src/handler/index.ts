export { Connection, type ConnectionOptions, type Request, type Target, type HttpReplyInit, type WebSocketReplyInit } from './connection.js';
export { CreditWindow } from './credit-window.js';
export { openUpload, claimedUploadPath, isInside, UploadError, type UploadConfig, type UploadFile } from './uploads.js';
export { createLogger, type Logger, type LoggerOptions } from './logger.js';
