/**
 * Request path → filesystem path bytes, the way Mongrel2's dir.c builds the
 * target (`Dir_resolve_file`), before realpath and the containment check.
 * Pure functions over Buffers: file names need not be UTF-8.
 */

const PERCENT = 0x25;

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10;
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10;
  return -1;
}

/**
 * Decode `%XX` escapes only (`+` stays `+`, as in dir.c's burl_decode).
 * Returns undefined for a `%` not followed by two hex digits (Mongrel2 keeps
 * those literally; we refuse the malformed URI) and for a decoded NUL byte
 * (a C path would be cut there).
 */
export function percentDecode(raw: Buffer): Buffer | undefined {
  const out = Buffer.alloc(raw.length);
  let o = 0;
  for (let i = 0; i < raw.length; i++) {
    let byte = raw[i]!;
    if (byte === PERCENT) {
      const hi = i + 2 < raw.length ? hexValue(raw[i + 1]!) : -1;
      const lo = hi >= 0 ? hexValue(raw[i + 2]!) : -1;
      if (lo < 0) return undefined;
      byte = hi * 16 + lo;
      i += 2;
    }
    if (byte === 0) return undefined;
    out[o++] = byte;
  }
  return out.subarray(0, o);
}

/**
 * What to append to the resolved base for `path` under route `prefix`
 * (dir.c:456-467), percent-decoded:
 *  - path ends in '/': `/` + path after the prefix + index file;
 *  - path equals the prefix: the whole path (a route like '/favicon.ico');
 *  - otherwise: `/` + path after the prefix.
 * Only the request part is decoded (dir.c decodes base and index file too).
 * The path is taken as latin1, i.e. byte for byte as it came off the wire.
 */
export function targetSuffix(path: string, prefix: string, indexFile: string): Buffer | undefined {
  const fromRequest = path === prefix && !path.endsWith('/') ? path : '/' + path.slice(prefix.length);
  const decoded = percentDecode(Buffer.from(fromRequest, 'latin1'));
  if (decoded === undefined) return undefined;
  return path.endsWith('/') ? Buffer.concat([decoded, Buffer.from(indexFile, 'utf8')]) : decoded;
}

/** True when `resolved` is `base` itself or inside it (not a sibling like `base2`). */
export function isInside(resolved: Buffer, base: Buffer): boolean {
  if (resolved.equals(base)) return true;
  // The root directory is the one base that already ends in '/'.
  const dirPrefix = base[base.length - 1] === 0x2f ? base : Buffer.concat([base, Buffer.from('/')]);
  return resolved.length > dirPrefix.length && resolved.subarray(0, dirPrefix.length).equals(dirPrefix);
}
