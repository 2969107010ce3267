/**
 * The orders the real m2sh walks things in, reproduced so that our rows come
 * out in the same order (route order decides routing tie-breaks).
 *
 * - Every scope (top level, class parameters, hashes) is a ternary search tree
 *   (src/adt/tst.c). Keys are compared byte by byte as C `char`, which is
 *   signed on x86/ARM Linux builds, so UTF-8 bytes >= 0x80 sort BEFORE ASCII.
 *   A duplicate key overwrites the value in place (last wins). An empty key
 *   behaves as the one-byte key "\0" (tst_insert reads the terminating NUL).
 *   Walks are breadth-first over the tree nodes (tst_traverse), not file order.
 * - Filter settings become a tnetstring dict held in a kazlib hash
 *   (src/adt/hash.c, 64 chains, doubling past 2 entries per chain) keyed by
 *   FNV-1a of the key bytes up to the first NUL (bstr_hash_fun); the renderer
 *   writes back to front, so keys come out in REVERSE hash-scan order.
 */

interface TstNode<T> {
  split: number;
  low?: TstNode<T>;
  equal?: TstNode<T>;
  high?: TstNode<T>;
  entry?: { key: string; value: T };
}

/** A key's bytes as C sees them: UTF-8, as signed chars. "" acts as "\0". */
function signedBytes(key: string): number[] {
  const bytes = Buffer.from(key, 'utf8');
  if (bytes.length === 0) return [0];
  return Array.from(bytes, (b) => (b << 24) >> 24);
}

/**
 * `entries` in the order m2sh's TST walk visits them: duplicates collapsed to
 * the last value (kept at the tree position of the key), breadth-first.
 */
export function tstOrder<T>(entries: Iterable<readonly [string, T]>): Array<[string, T]> {
  let root: TstNode<T> | undefined;
  for (const [key, value] of entries) {
    const s = signedBytes(key);
    let k = 0;
    // Iterative tst_insert_base: follow/create nodes until the last byte.
    let slot: { get: () => TstNode<T> | undefined; set: (n: TstNode<T>) => void } = {
      get: () => root,
      set: (n) => (root = n),
    };
    for (;;) {
      let p = slot.get();
      if (!p) {
        p = { split: s[k]! };
        slot.set(p);
      }
      const node = p;
      const c = s[k]!;
      if (c < node.split) {
        slot = { get: () => node.low, set: (n) => (node.low = n) };
      } else if (c > node.split) {
        slot = { get: () => node.high, set: (n) => (node.high = n) };
      } else if (k < s.length - 1) {
        k++;
        slot = { get: () => node.equal, set: (n) => (node.equal = n) };
      } else {
        node.entry = { key, value };
        break;
      }
    }
  }
  const out: Array<[string, T]> = [];
  if (!root) return out;
  const queue: Array<TstNode<T>> = [root];
  for (let q = 0; q < queue.length; q++) {
    const cur = queue[q]!;
    if (cur.entry) out.push([cur.entry.key, cur.entry.value]);
    if (cur.low) queue.push(cur.low);
    if (cur.equal) queue.push(cur.equal);
    if (cur.high) queue.push(cur.high);
  }
  return out;
}

/** FNV-1a over the key's bytes up to the first NUL (lib bstraux bstr_hash_fun). */
function bstrHash(key: string): number {
  let acc = 2166136261;
  for (const b of Buffer.from(key, 'utf8')) {
    if (b === 0) break;
    acc = Math.imul(acc ^ b, 16777619) >>> 0;
  }
  return acc >>> 0;
}

/**
 * The key order in which mongrel2's tns_render writes a dict whose keys were
 * added in `keys` order (unique keys). Simulates kazlib's dynamic hash:
 * insert at the chain head, grow (splitting each chain, which reverses it)
 * when an insert finds nodecount >= highmark; scan chains 0..n, then reverse.
 */
export function tnsDictRenderOrder(keys: readonly string[]): string[] {
  let nchains = 64;
  let mask = 63;
  let highmark = 128;
  let table: Array<Array<{ key: string; hkey: number }>> = Array.from({ length: nchains }, () => []);
  let count = 0;
  for (const key of keys) {
    if (count >= highmark) {
      const grown: typeof table = Array.from({ length: nchains * 2 }, () => []);
      const exposed = nchains;
      for (let chain = 0; chain < nchains; chain++) {
        // Nodes move one by one to the head of their new chain: order reverses.
        for (const node of table[chain]!) {
          grown[node.hkey & exposed ? chain + nchains : chain]!.unshift(node);
        }
      }
      table = grown;
      nchains *= 2;
      mask = mask * 2 + 1;
      highmark *= 2;
    }
    const hkey = bstrHash(key);
    table[hkey & mask]!.unshift({ key, hkey });
    count++;
  }
  const scan: string[] = [];
  for (const chain of table) for (const node of chain) scan.push(node.key);
  return scan.reverse();
}
