/**
 * Comma-separated HTTP token lists (RFC 9110 §5.6.1: Connection,
 * Transfer-Encoding, …). Pure. Lives in the protocol layer so both it and
 * src/http (hop-by-hop headers) split lists the one way.
 */

/** The tokens of comma-separated header values: trimmed, lower-cased, empty ones left out. */
export function listTokens(values: Iterable<string>): string[] {
  const out: string[] = [];
  for (const value of values) {
    for (const part of value.split(',')) {
      const token = part.trim().toLowerCase();
      if (token) out.push(token);
    }
  }
  return out;
}
