export { ProxyHandler, type ProxyOptions, type ProxyRequest, type ProxyResponse, type ProxyUpgrade } from './proxy-handler.js';
export { gatewayTimeout } from './gateway-timeout.js';
