// Worker thread that reads (and for text sources compiles) an access map, so that loading a
// million-entry file never blocks the event loop that serves the MTAs. Started by
// ./access-loader.ts with { file, options }; answers with the image as a transferred ArrayBuffer.

import { parentPort, workerData } from 'node:worker_threads';
import { readAccessImage } from '../access-db/load.js';
import type { SourceOptions } from '../access-db/source.js';

const { file, options } = workerData as { file: string; options: SourceOptions };
const r = await readAccessImage(file, options);
if (r.ok) {
  // A fresh ArrayBuffer of exactly the image: Buffers can share a pool that must not be detached.
  const ab = new ArrayBuffer(r.image.length);
  new Uint8Array(ab).set(r.image);
  parentPort?.postMessage(
    { ok: true, image: ab, fromText: r.fromText, entries: r.entries, warnings: r.warnings },
    [ab],
  );
} else {
  parentPort?.postMessage(r);
}
