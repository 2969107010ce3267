/**
 * Content-Type lookup like Mongrel2's mime.c: the longest registered
 * extension that is a suffix of the lower-cased file path, else the default.
 */
import { asciiLower } from '../../http/ascii-lower.js';

export function mimeTypeFor(filePath: string, mimetypes: ReadonlyMap<string, string>, defaultType: string): string {
  const name = asciiLower(filePath.slice(filePath.lastIndexOf('/') + 1));
  // Registered extensions start with '.', so the first '.' gives the longest candidate.
  for (let dot = name.indexOf('.'); dot >= 0; dot = name.indexOf('.', dot + 1)) {
    const type = mimetypes.get(name.slice(dot));
    if (type !== undefined) return type;
  }
  return defaultType;
}
