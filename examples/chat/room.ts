/**
 * The chat room as pure state: who is here under which nickname, and what
 * each event sends to whom. The handler turns every `Outgoing` into ONE
 * reply to all its connection ids (N:M), as the manual's chat.py does with
 * `deliver_json(users.keys(), ...)`.
 *
 * Client → server (JSON text frames):  {"type":"join","nick":"alice"}  {"type":"msg","text":"hi"}
 * Server → client:  welcome {nick, users}  join {nick, users}  leave {nick, users}  msg {nick, text}  error {message}
 */
export type ServerMessage =
  | { type: 'welcome'; nick: string; users: string[] }
  | { type: 'join'; nick: string; users: string[] }
  | { type: 'leave'; nick: string; users: string[] }
  | { type: 'msg'; nick: string; text: string }
  | { type: 'error'; message: string };

export type ClientMessage = { type: 'join'; nick: string } | { type: 'msg'; text: string };

export interface Outgoing {
  readonly to: number[];
  readonly message: ServerMessage;
}

export const MAX_NICK = 24;
export const MAX_TEXT = 1000;

/** Parses one client frame, or says what is wrong with it. */
export function parseClientMessage(text: string): ClientMessage | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { error: 'not JSON' };
  }
  if (value === null || typeof value !== 'object') return { error: 'expected a JSON object' };
  const v = value as Record<string, unknown>;
  if (v.type === 'join' && typeof v.nick === 'string') return { type: 'join', nick: v.nick };
  if (v.type === 'msg' && typeof v.text === 'string') return { type: 'msg', text: v.text };
  return { error: 'expected {"type":"join","nick":...} or {"type":"msg","text":...}' };
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

export class Room {
  readonly #nicks = new Map<number, string>();

  members(): number[] {
    return [...this.#nicks.keys()];
  }

  users(): string[] {
    return [...this.#nicks.values()].sort((a, b) => a.localeCompare(b));
  }

  join(connId: number, rawNick: string): Outgoing[] {
    const nick = rawNick.trim();
    const refuse = (message: string): Outgoing[] => [{ to: [connId], message: { type: 'error', message } }];
    if (this.#nicks.has(connId)) return refuse(`you are already here as ${this.#nicks.get(connId)}`);
    if (nick === '' || [...nick].length > MAX_NICK || CONTROL.test(nick)) return refuse(`a nickname is 1 to ${MAX_NICK} printable characters`);
    if ([...this.#nicks.values()].some((n) => n.toLowerCase() === nick.toLowerCase())) return refuse(`${nick} is taken, pick another nickname`);
    const others = this.members();
    this.#nicks.set(connId, nick);
    const users = this.users();
    const out: Outgoing[] = [{ to: [connId], message: { type: 'welcome', nick, users } }];
    if (others.length > 0) out.push({ to: others, message: { type: 'join', nick, users } });
    return out;
  }

  say(connId: number, rawText: string): Outgoing[] {
    const nick = this.#nicks.get(connId);
    if (nick === undefined) return [{ to: [connId], message: { type: 'error', message: 'join first' } }];
    const text = rawText.trim();
    if (text === '') return [];
    if ([...text].length > MAX_TEXT) return [{ to: [connId], message: { type: 'error', message: `messages are at most ${MAX_TEXT} characters` } }];
    return [{ to: this.members(), message: { type: 'msg', nick, text } }];
  }

  /** Idempotent: a close frame and the disconnect notice both end up here. */
  leave(connId: number): Outgoing[] {
    const nick = this.#nicks.get(connId);
    if (nick === undefined) return [];
    this.#nicks.delete(connId);
    const rest = this.members();
    return rest.length > 0 ? [{ to: rest, message: { type: 'leave', nick, users: this.users() } }] : [];
  }
}
