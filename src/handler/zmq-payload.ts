/**
 * What to hand zeromq.js's send() for one message frame.
 *
 * zeromq.js (v6) sends a Buffer over 128 bytes without copying: libzmq's I/O
 * thread releases it later through a uv_async, i.e. one more wake-up of the
 * sending event loop per message (measured: ~16 µs of CPU per request in the
 * core at low load). A string is copied into a std::string that the I/O
 * thread frees itself. Strings go out UTF-8 encoded, so only a frame that is
 * all ASCII (where latin1 and UTF-8 agree) may be sent as one.
 */
import { isAscii } from 'node:buffer';

/** zeromq.js copies frames up to this size (its zero_copy_threshold). */
const COPIED_ANYWAY = 128;

/** A string (standing for its UTF-8 bytes) is sent as it is. */
export function zmqPayload(frame: Buffer | string): Buffer | string {
  return typeof frame === 'string' || frame.length <= COPIED_ANYWAY || !isAscii(frame) ? frame : frame.toString('latin1');
}
