/** A looping playlist read in fixed-size blocks that may span tracks. */
export interface Track {
  readonly title: string;
  readonly data: Buffer;
}

export interface Block {
  readonly audio: Buffer;
  /** A track started inside this block (always so for the very first block). */
  readonly changed: boolean;
  /** The title of the track playing at the end of the block. */
  readonly title: string;
}

export class Playlist {
  readonly #tracks: readonly Track[];
  #track = 0;
  #offset = 0;

  constructor(tracks: readonly Track[]) {
    if (tracks.length === 0 || tracks.some((t) => t.data.length === 0)) throw new RangeError('Playlist: needs at least one track, and no empty ones');
    this.#tracks = tracks;
  }

  next(size: number): Block {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`Playlist.next: size must be a positive integer, got ${size}`);
    const audio = Buffer.allocUnsafe(size);
    let filled = 0;
    let changed = false;
    let playing = this.#track;
    while (filled < size) {
      playing = this.#track;
      const data = this.#tracks[playing]!.data;
      if (this.#offset === 0) changed = true;
      const n = data.copy(audio, filled, this.#offset, Math.min(data.length, this.#offset + size - filled));
      filled += n;
      this.#offset += n;
      if (this.#offset === data.length) {
        this.#track = (this.#track + 1) % this.#tracks.length;
        this.#offset = 0;
      }
    }
    return { audio, changed, title: this.#tracks[playing]!.title };
  }
}
