/**
 * Lower-cases A-Z only, as C's tolower() in the "C" locale (Mongrel2's host
 * matching and MIME lookup): other bytes, non-ASCII letters included, stay as
 * they were, unlike String.prototype.toLowerCase.
 */
export function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}
