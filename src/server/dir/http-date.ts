/**
 * HTTP-date (RFC 9110 §5.6.7): IMF-fixdate out, all three formats in.
 * Pure functions; times are whole seconds since the epoch.
 */

const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;
const LONG_DAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'] as const;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

const DAY = DAYS.join('|');
const MONTH = MONTHS.join('|');
const IMF_FIXDATE = new RegExp(`^(?:${DAY}), (\\d{2}) (${MONTH}) (\\d{4}) (\\d{2}):(\\d{2}):(\\d{2}) GMT$`);
const RFC850_DATE = new RegExp(`^(?:${LONG_DAYS.join('|')}), (\\d{2})-(${MONTH})-(\\d{2}) (\\d{2}):(\\d{2}):(\\d{2}) GMT$`);
const ASCTIME_DATE = new RegExp(`^(?:${DAY}) (${MONTH}) ( \\d|\\d{2}) (\\d{2}):(\\d{2}):(\\d{2}) (\\d{4})$`);

/** IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT` (what Mongrel2's `%a, %d %b %Y %H:%M:%S GMT` prints). */
export function formatHttpDate(epochSeconds: number): string {
  // toUTCString() is exactly IMF-fixdate for years 0..9999.
  return new Date(epochSeconds * 1000).toUTCString();
}

/**
 * Seconds since the epoch, or undefined when `value` is not a valid HTTP-date
 * (recipients ignore invalid dates: RFC 9110 §13.1.3/§13.1.4). The grammar is
 * case-sensitive; surrounding whitespace is allowed.
 */
export function parseHttpDate(value: string, nowSeconds = Date.now() / 1000): number | undefined {
  const v = value.trim();
  let m = IMF_FIXDATE.exec(v);
  if (m) return toSeconds(Number(m[3]), m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!);
  m = RFC850_DATE.exec(v);
  if (m) {
    // Two-digit years more than 50 years in the future mean the past century (§5.6.7).
    const thisYear = new Date(nowSeconds * 1000).getUTCFullYear();
    let year = Math.floor(thisYear / 100) * 100 + Number(m[3]);
    if (year > thisYear + 50) year -= 100;
    return toSeconds(year, m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!);
  }
  m = ASCTIME_DATE.exec(v);
  if (m) return toSeconds(Number(m[6]), m[1]!, Number(m[2]!.trim()), m[3]!, m[4]!, m[5]!);
  return undefined;
}

function toSeconds(year: number, monthName: string, day: number, hh: string, mm: string, ss: string): number | undefined {
  const month = MONTHS.indexOf(monthName as (typeof MONTHS)[number]);
  const h = Number(hh);
  const mi = Number(mm);
  const s = Number(ss);
  if (h > 23 || mi > 59 || s > 60) return undefined;
  // setUTCFullYear, not Date.UTC: the latter maps years 0..99 to 1900..1999.
  const d = new Date(0);
  d.setUTCFullYear(year, month, day);
  d.setUTCHours(h, mi, Math.min(s, 59));
  const ms = d.getTime();
  // Reject 31 Feb and friends: the date must round-trip.
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month || d.getUTCDate() !== day) return undefined;
  return ms / 1000 + (s === 60 ? 1 : 0);
}
