/**
 * Access control as a filter: a request gets `status` (default 403) and the
 * connection closes unless it comes from an allowed address and carries an
 * allowed value of a header. Either check may be left out.
 *
 *   Filter(name="examples/filters/header-access.ts", settings={
 *       "header": "x-api-key", "allow": ["k1", "k2"],     # the header must have one of these values
 *       "ips": ["127.0.0.1", "10.0.0.0/8", "::1"],       # the client address must be in one of these
 *       "status": 403,                                   # optional, default 403
 *       "events": ["HANDLER", "DIRECTORY", "PROXY"]      # optional: when to check (default: after routing)
 *   })
 *
 * Settings are checked once, when the server loads the filter. Header values
 * are compared through SHA-256 digests in constant time, so response timing
 * does not leak how much of a key was right.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import type { EventName, FilterConnection } from '../../src/server/filters/chain.js';
import { toEvent } from '../../src/server/filters/events.js';

type Settings = Readonly<Record<string, unknown>>;

interface Policy {
  readonly header: string | undefined;
  readonly allow: readonly Buffer[];
  readonly ips: BlockList | undefined;
  readonly status: number;
  readonly events: EventName[];
}

const DEFAULT_EVENTS: EventName[] = ['HANDLER', 'DIRECTORY', 'PROXY'];
const policies = new WeakMap<Settings, Policy>();

// Settings come parsed from a tnetstring: strings are Buffers.
const isText = (v: unknown): boolean => typeof v === 'string' || Buffer.isBuffer(v);
const digest = (s: string): Buffer => createHash('sha256').update(s, 'latin1').digest();

function textList(settings: Settings, key: string): string[] | undefined {
  const v = settings[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every(isText)) throw new Error(`header-access: settings.${key} must be a list of strings`);
  return v.map(String);
}

function policyOf(settings: Settings): Policy {
  const known = policies.get(settings);
  if (known) return known;
  const header = settings.header === undefined ? undefined : isText(settings.header) ? String(settings.header).toLowerCase() : undefined;
  if (settings.header !== undefined && header === undefined) throw new Error('header-access: settings.header must be a string');
  const allow = textList(settings, 'allow');
  if ((header === undefined) !== (allow === undefined)) throw new Error('header-access: settings.header and settings.allow go together');
  let ips: BlockList | undefined;
  const cidrs = textList(settings, 'ips');
  if (cidrs) {
    ips = new BlockList();
    for (const entry of cidrs) {
      const [addr = '', bits] = entry.split('/');
      const family = isIP(addr) === 6 ? 'ipv6' : isIP(addr) === 4 ? 'ipv4' : undefined;
      const prefix = bits === undefined ? undefined : Number(bits);
      if (!family || (prefix !== undefined && !(Number.isInteger(prefix) && prefix >= 0 && prefix <= (family === 'ipv4' ? 32 : 128)))) {
        throw new Error(`header-access: settings.ips entry ${JSON.stringify(entry)} is not an address or address/prefix`);
      }
      if (prefix === undefined) ips.addAddress(addr, family);
      else ips.addSubnet(addr, prefix, family);
    }
  }
  if (header === undefined && ips === undefined) throw new Error('header-access: settings need header+allow, ips, or both');
  const status = settings.status ?? 403;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 599) throw new Error('header-access: settings.status must be an integer 400..599');
  const eventNames = textList(settings, 'events') ?? DEFAULT_EVENTS;
  const events = eventNames.map((e) => toEvent(e) ?? failEvent(e));
  const policy: Policy = { header, allow: (allow ?? []).map(digest), ips, status, events };
  policies.set(settings, policy);
  return policy;
}

function failEvent(e: string): never {
  throw new Error(`header-access: settings.events holds ${JSON.stringify(e)}, which is no event`);
}

function allowed(policy: Policy, conn: FilterConnection): boolean {
  if (policy.ips) {
    const family = isIP(conn.remoteAddr) === 6 ? 'ipv6' : 'ipv4';
    if (isIP(conn.remoteAddr) === 0 || !policy.ips.check(conn.remoteAddr, family)) return false;
  }
  if (policy.header !== undefined) {
    const value = conn.request?.header(policy.header);
    if (value === undefined) return false;
    const got = digest(value);
    // Check every allowed key, so the time does not depend on which one matched.
    let ok = false;
    for (const key of policy.allow) ok = timingSafeEqual(got, key) || ok;
    return ok;
  }
  return true;
}

export function init(_server: unknown, settings: Settings): EventName[] {
  return policyOf(settings).events;
}

export function transition(event: EventName, conn: FilterConnection, settings: Settings): EventName {
  const policy = policyOf(settings);
  if (allowed(policy, conn)) return event;
  conn.respond(policy.status);
  return 'CLOSE';
}
