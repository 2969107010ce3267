/**
 * The client-header table Mongrel2 builds for each request, reproduced so that
 * the headers reach handlers in the same order as from the real server.
 *
 * Mongrel2 stores lower-cased names in a kazlib hash (`src/adt/hash.c`) keyed
 * with FNV-1a (`bstr_hash_fun`), 64 chains to start, each new node pushed on
 * the head of its chain, doubling (which reverses each chain) once 128 nodes
 * are stored, and the JSON encoder walks chains 0..n-1 head to tail (TNET
 * walks the same order backwards). Limits (`src/request.c`): at most
 * `limits.header_count` names (once full, every further header line is
 * dropped, duplicates too) and 5 values per name.
 */

export type TableValue = string | string[];

/** FNV-1a over the bytes of a latin1 string (Mongrel2's bstr_hash_fun). */
export function fnv1a(name: string): number {
  let acc = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    acc ^= name.charCodeAt(i) & 0xff;
    acc = Math.imul(acc, 16777619) >>> 0;
  }
  return acc;
}

/** A kazlib hnode: chains are singly linked lists, as in hash.c. */
interface Node {
  readonly key: string;
  readonly hkey: number;
  values: string[];
  next: Node | undefined;
}

const INIT_SIZE = 64;

/** Empty chain heads. Holes read as undefined; filling 64 slots per request showed in profiles. */
const newChains = (n: number): Array<Node | undefined> => new Array<Node | undefined>(n);
export const MAX_DUPE_HEADERS = 5;

export interface DroppedHeader {
  readonly name: string;
  readonly reason: 'header_count' | 'duplicates';
}

/** A kazlib-ordered multi-map of header values. */
export class HeaderTable {
  /** Chain heads; one array per table, nodes linked through `next`. */
  private chains: Array<Node | undefined> = newChains(INIT_SIZE);
  private mask = INIT_SIZE - 1;
  private highmark = INIT_SIZE * 2;
  private count = 0;
  readonly dropped: DroppedHeader[] = [];

  constructor(private readonly maxCount: number) {}

  private find(key: string, hkey: number): Node | undefined {
    for (let n = this.chains[hkey & this.mask]; n !== undefined; n = n.next) if (n.hkey === hkey && n.key === key) return n;
    return undefined;
  }

  private insert(key: string, hkey: number, value: string): void {
    if (this.count >= this.highmark) this.grow();
    const c = hkey & this.mask;
    this.chains[c] = { key, hkey, values: [value], next: this.chains[c] };
    this.count++;
  }

  /** kazlib grow_table: split each chain by the newly exposed bit, reversing both halves. */
  private grow(): void {
    const n = this.chains.length;
    const mask = (this.mask << 1) | 1;
    const exposed = mask ^ this.mask;
    const next = newChains(n * 2);
    for (let c = 0; c < n; c++) {
      for (let node = this.chains[c], after: Node | undefined; node !== undefined; node = after) {
        after = node.next;
        const to = c + (node.hkey & exposed ? n : 0);
        node.next = next[to];
        next[to] = node;
      }
    }
    this.chains = next;
    this.mask = mask;
    this.highmark *= 2;
  }

  /** One header line as the parser saw it (`header_field_cb` + `Request_set(..., 0)`). */
  add(name: string, value: string): void {
    const key = name.toLowerCase();
    if (this.count >= this.maxCount) {
      this.dropped.push({ name: key, reason: 'header_count' });
      return;
    }
    const hkey = fnv1a(key);
    const node = this.find(key, hkey);
    if (node === undefined) this.insert(key, hkey, value);
    else if (node.values.length < MAX_DUPE_HEADERS) node.values.push(value);
    else this.dropped.push({ name: key, reason: 'duplicates' });
  }

  /** `Request_set(..., replace=1)`: one value, keeping the node's place when it exists. */
  replace(key: string, value: string): void {
    const hkey = fnv1a(key);
    const node = this.find(key, hkey);
    if (node === undefined) this.insert(key, hkey, value);
    else node.values = [value];
  }

  remove(key: string): void {
    const hkey = fnv1a(key);
    const c = hkey & this.mask;
    for (let n = this.chains[c], prev: Node | undefined; n !== undefined; prev = n, n = n.next) {
      if (n.hkey !== hkey || n.key !== key) continue;
      if (prev === undefined) this.chains[c] = n.next;
      else prev.next = n.next;
      this.count--;
      return;
    }
  }

  get(key: string): string | undefined {
    return this.find(key, fnv1a(key))?.values[0];
  }

  has(key: string): boolean {
    return this.find(key, fnv1a(key)) !== undefined;
  }

  /** Calls `fn` per name in Mongrel2's JSON order (chains 0..n-1, each head to tail). */
  forEach(fn: (key: string, values: readonly string[]) => void): void {
    const chains = this.chains;
    for (let c = 0; c < chains.length; c++) for (let n = chains[c]; n !== undefined; n = n.next) fn(n.key, n.values);
  }

  keys(): string[] {
    const out: string[] = [];
    this.forEach((k) => out.push(k));
    return out;
  }

  /** In Mongrel2's JSON order; duplicated names as arrays. */
  entries(): Array<[string, TableValue]> {
    const out: Array<[string, TableValue]> = [];
    this.forEach((k, values) => out.push([k, values.length > 1 ? [...values] : values[0]!]));
    return out;
  }
}
