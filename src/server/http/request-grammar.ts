/**
 * Mongrel2's request grammar (src/http11/http11_parser.rl, 1.13), transcribed
 * rule for rule into dfa.ts expressions and compiled once per `relaxed` flag.
 *
 * Two Ragel constructs are rewritten into the plain regular language they
 * accept, because our DFA stops at the first accepting byte exactly like the
 * real `@done … fbreak`:
 *  - `field_name ":" lws* field_value :> CRLF`: the entry guard kills the value
 *    as soon as CR or LF starts the line end, so `lws` can never fold lines
 *    and a value is simply "no CTL except HT".
 *  - `… :>> "\0"` in the socket messages only matters after the NUL, where we
 *    have already stopped.
 * Quirks kept on purpose: the IPv6 rule's `6( h16 ":" )` is the byte 0x06
 * followed by one `h16 ":"` in Ragel (a number is a byte literal), and
 * `( h16 ":" ){1,}` means "one or more". The generated C has the same keys.
 */
import { alt, anyOf, chars, compile, lit, minus, opt, plus, range, rep, seq, star, type Dfa, type Expr } from './dfa.js';

const CRLF = alt(lit('\r\n'), lit('\n'));
const ALPHA = anyOf(range('A', 'Z'), range('a', 'z'));
const DIGIT = range('0', '9');
const XDIGIT = anyOf(DIGIT, range('A', 'F'), range('a', 'f'));
const UPPER = range('A', 'Z');

function grammar(relaxed: boolean): Expr {
  const subDelims = chars("!$&'()*+,;=", relaxed ? '{}^' : '');
  const unreserved = anyOf(ALPHA, DIGIT, chars('-._~'));
  const pct = seq(chars('%'), XDIGIT, XDIGIT);
  const pchar = alt(anyOf(unreserved, subDelims, chars(':@')), pct);
  const fragment = star(alt(pchar, chars('/?')));
  const query = fragment;

  const segmentNzNc = plus(alt(anyOf(unreserved, subDelims, chars('@')), pct));
  const segmentNz = plus(pchar);
  const segment = star(pchar);
  const slashSegments = star(seq(chars('/'), segment));
  const pathRootless = seq(segmentNz, slashSegments);
  const pathNoscheme = seq(segmentNzNc, slashSegments);
  const pathAbsolute = seq(chars('/'), opt(seq(segmentNz, slashSegments)));
  const pathAbempty = slashSegments;

  const regName = star(alt(anyOf(unreserved, subDelims), pct));
  const decOctet = alt(
    DIGIT,
    seq(range('1', '9'), DIGIT),
    seq(chars('1'), DIGIT, DIGIT),
    seq(chars('2'), range('0', '4'), DIGIT),
    seq(lit('25'), range('0', '5')),
  );
  const dot = chars('.');
  const ipv4 = seq(decOctet, dot, decOctet, dot, decOctet, dot, decOctet);
  const h16 = rep(XDIGIT, 1, 4);
  const h16c = seq(h16, chars(':'));
  const ls32 = alt(seq(h16, chars(':'), h16), ipv4);
  const dc = lit('::');
  const byte = (b: number): Expr => chars(b);
  const lead = (min: number): Expr => opt(seq(rep(h16c, min), h16));
  const ipv6 = alt(
    seq(byte(6), h16c, ls32),
    seq(dc, byte(5), h16c, ls32),
    seq(opt(h16), dc, byte(4), h16c, ls32),
    seq(lead(1), dc, byte(3), h16c, ls32),
    seq(lead(2), dc, byte(2), h16c, ls32),
    seq(lead(3), dc, h16c, ls32),
    seq(lead(4), dc, ls32),
    seq(lead(5), dc, h16),
    seq(lead(6), dc),
  );
  const ipvFuture = seq(chars('v'), plus(XDIGIT), dot, plus(anyOf(unreserved, subDelims, chars(':'))));
  const ipLiteral = seq(chars('['), alt(ipv6, ipvFuture), chars(']'));
  const port = star(DIGIT);
  const host = alt(ipLiteral, ipv4, regName);
  const userinfo = star(alt(anyOf(unreserved, subDelims, chars(':')), pct));
  const authority = seq(opt(seq(userinfo, chars('@'))), host, opt(seq(chars(':'), port)));
  const scheme = seq(ALPHA, star(anyOf(ALPHA, DIGIT, chars('+-.'))));

  const relativePart = alt(seq(lit('//'), authority, pathAbempty), pathAbsolute, pathNoscheme /* | path_empty */, seq());
  const hierPart = alt(seq(lit('//'), authority, pathAbempty), pathAbsolute, pathRootless, seq());
  const queryPart = opt(seq(chars('?'), query));
  const fragmentPart = opt(seq(chars('#'), fragment));
  const relativeRef = seq(relativePart, queryPart, fragmentPart);
  const uri = seq(scheme, chars(':'), hierPart, queryPart, fragmentPart);
  const uriReference = alt(uri, relativeRef);

  const method = rep(anyOf(UPPER, DIGIT), 1, 20);
  const version = seq(lit('HTTP/1.'), chars('01'));
  const requestLine = seq(method, chars(' '), uriReference, chars(' '), version, CRLF);

  // Deliberate difference: Ragel's `HTTP_CTL = (0 - 31) | 127` is only NUL and DEL (`-` subtracts,
  // a range is `..`), so the real parser lets CR, LF and other controls into header names and values
  // (a line without ':' then never ends). We refuse every CTL except HT in values, as RFC 9110 does.
  const ctl = anyOf(range(0, 31), chars(127));
  const separator = chars('()<>@,;:\\"/[]?={} \t');
  const token = minus(minus(range(0, 127), ctl), separator);
  const valueByte = anyOf(minus(range(0, 255), ctl), chars('\t'));
  const messageHeader = seq(plus(token), chars(':'), star(valueByte), CRLF);
  const request = seq(requestLine, star(messageHeader), CRLF);

  const any = range(0, 255);
  const socketJson = seq(chars('@'), relativePart, chars(' '), chars('{'), star(any), chars('}'), chars(0));
  const space = chars(' \t\v\f\n\r');
  const socketXml = seq(chars('<'), plus(anyOf(ALPHA, DIGIT, chars('-.'))), anyOf(chars('/>'), space), star(any), chars('>'), chars(0));

  return alt(request, socketXml, socketJson);
}

const compiled = new Map<boolean, Dfa>();

/** The request DFA; built on first use (a few ms) and shared, it is immutable. */
export function requestDfa(relaxed: boolean): Dfa {
  let dfa = compiled.get(relaxed);
  if (dfa === undefined) {
    dfa = compile(grammar(relaxed));
    compiled.set(relaxed, dfa);
  }
  return dfa;
}
