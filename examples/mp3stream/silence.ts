/**
 * The stream's audio, generated here instead of shipped: a run of silent
 * MPEG-1 Layer III frames (128 kbit/s, 48 kHz, mono). At 48 kHz a 128 kbit/s
 * frame is exactly 144 * 128000 / 48000 = 384 bytes (no padding slot) and
 * lasts 1152 samples = 24 ms. Each frame is its 4-byte header and 380 zero
 * bytes: zeroed side info says "no main data, part2_3_length 0", which every
 * decoder plays as silence. No binary blob, no download.
 *
 *   node --import tsx examples/mp3stream/silence.ts out.mp3 [seconds]   # writes a file, e.g. for mplayer
 */
import { writeFileSync } from 'node:fs';
import { isMain } from '../support/demo.js';

/** Sync 0xFFF, MPEG-1, Layer III, no CRC | 128 kbit/s, 48 kHz, no padding | mono. */
export const FRAME_HEADER = Buffer.from([0xff, 0xfb, 0x94, 0xc0]);
export const FRAME_BYTES = 384;
export const FRAME_MS = 24;
/** 128 kbit/s. */
export const BYTES_PER_SECOND = 16_000;

/** `seconds` of silence, rounded up to whole frames. */
export function silentMp3(seconds: number): Buffer {
  if (!(seconds > 0) || seconds > 3600) throw new RangeError(`silentMp3: seconds must be in (0, 3600], got ${seconds}`);
  const frames = Math.ceil((seconds * 1000) / FRAME_MS);
  const out = Buffer.alloc(frames * FRAME_BYTES);
  for (let i = 0; i < frames; i++) FRAME_HEADER.copy(out, i * FRAME_BYTES);
  return out;
}

if (isMain(import.meta.url)) {
  const [file, seconds = '10'] = process.argv.slice(2);
  if (file === undefined || !(Number(seconds) > 0)) {
    process.stderr.write('usage: node --import tsx examples/mp3stream/silence.ts OUT.mp3 [seconds]\n');
    process.exit(2);
  }
  writeFileSync(file, silentMp3(Number(seconds)));
}
