/** One file of an image source (a folder or a zip), read on demand so a dataset never sits in memory twice. */
export interface ImageEntry {
  /** Relative path in the folder / entry path in the zip, '/'-separated: the image's id. */
  id: string;
  /** Uncompressed size in bytes. */
  bytes: number;
  read(): Promise<Uint8Array>;
}

export interface ImageListing {
  /** Files named like images, in a stable (sorted) order: the candidates to decode. */
  entries: ImageEntry[];
  /** Files not named like images (counted as skipped without being opened). */
  otherFiles: string[];
  close(): Promise<void>;
}

/** Extensions worth handing to the decoder (anything else is reported, not opened). */
export const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'jpe', 'jfif', 'png', 'webp', 'gif', 'tif', 'tiff', 'avif', 'heic', 'heif', 'bmp'];

export function looksLikeImage(name: string): boolean {
  const dot = name.lastIndexOf('.');
  return dot >= 0 && IMAGE_EXTENSIONS.includes(name.slice(dot + 1).toLowerCase());
}

/** OS clutter (dotfiles, macOS resource forks) is neither an image nor worth a warning. */
export function isClutter(relPath: string): boolean {
  return relPath.split('/').some((part) => part.startsWith('.') || part === '__MACOSX' || part === 'Thumbs.db');
}
