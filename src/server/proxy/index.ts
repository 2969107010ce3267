export { ProxyCancel, ProxyHandler, type ProxyOptions, type ProxyRequest, type ProxyResponse, type ProxyUpgrade } from './proxy-handler.js';
