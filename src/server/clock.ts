/**
 * Unix seconds for connection bookkeeping and the access log, refreshed four
 * times a second: cheaper than several Date.now() calls per request, and
 * finer than Mongrel2's own cached clock (refreshed every limits.tick_timer).
 */
let seconds = Math.floor(Date.now() / 1000);
let ticking: NodeJS.Timeout | undefined;

export function nowSeconds(): number {
  if (ticking === undefined) {
    seconds = Math.floor(Date.now() / 1000);
    ticking = setInterval(() => (seconds = Math.floor(Date.now() / 1000)), 250);
    ticking.unref();
  }
  return seconds;
}
