// `npm run bench -- chunkCodec [--quick] [--objects N]`: the binary chunk codec (binaryChunk.ts) against
// the JSON one (snapshot.ts) on a state of N objects (default 1M; 2 replicas, 8 segments), cut
// into chunks of 10,000 records. Encode and decode every chunk, 3 runs each, medians.
// Verdict: each codec decodes every chunk back to its objects. `--quick` (CI): 20,000 objects.
import { decodeBinaryChunk, encodeBinaryChunk } from '../src/domain/snapshot/binaryChunk.ts';
import { decodeChunk, encodeChunk } from '../src/domain/snapshot/jsonChunk.ts';
import { snapshotChunks, type SnapshotChunk } from '../src/domain/snapshot/chunks.ts';
import { emptyState } from '../src/domain/model/state.ts';
import { numberFlag } from './lib/args.ts';
import { verdict, type BenchOutcome, type Verdict } from './lib/report.ts';
import { median, ms } from './lib/stats.ts';
import { foldEvents, SyntheticWrites } from './lib/syntheticWrites.ts';
import { printTable } from './lib/table.ts';

const RUNS = 3;

interface Codec {
  readonly name: string;
  readonly encode: (chunk: SnapshotChunk) => Uint8Array;
  readonly decode: (bytes: Uint8Array) => SnapshotChunk;
}

const CODECS: readonly Codec[] = [
  { name: 'json', encode: encodeChunk, decode: decodeChunk },
  { name: 'binary', encode: encodeBinaryChunk, decode: decodeBinaryChunk },
];

export async function run(args: string[]): Promise<BenchOutcome> {
  const objects = numberFlag(args, '--objects', args.includes('--quick') ? 20_000 : 1_000_000);
  const writes = new SyntheticWrites();
  let state = foldEvents(emptyState(), writes.mounts());
  for (let done = 0; done < objects; done += 10_000)
    state = foldEvents(state, writes.objects(Math.min(10_000, objects - done)));
  const chunks = [...snapshotChunks(state, 10_000)];
  const figures: Record<string, number> = { objects };
  const rows: (string | number)[][] = [];
  const verdicts: Verdict[] = [];
  for (const codec of CODECS) {
    const encodeMs: number[] = [];
    const decodeMs: number[] = [];
    let bytes = 0;
    for (let r = 0; r < RUNS; r++) {
      globalThis.gc?.();
      let t = performance.now();
      const encoded = chunks.map(codec.encode);
      encodeMs.push(performance.now() - t);
      bytes = encoded.reduce((n, b) => n + b.length, 0);
      globalThis.gc?.();
      t = performance.now();
      let decoded = 0;
      for (const b of encoded) decoded += codec.decode(b).objects.length;
      decodeMs.push(performance.now() - t);
      if (r === 0)
        verdicts.push(
          verdict(
            `${codec.name} decodes every object`,
            decoded === objects,
            `${decoded} of ${objects}`,
          ),
        );
    }
    const enc = median(encodeMs);
    const dec = median(decodeMs);
    figures[`${codec.name}EncodeMs`] = ms(enc);
    figures[`${codec.name}DecodeMs`] = ms(dec);
    figures[`${codec.name}Bytes`] = bytes;
    rows.push([
      codec.name,
      ms(enc),
      ms(dec),
      bytes,
      ms(bytes / 1e6 / (enc / 1000)),
      ms(bytes / 1e6 / (dec / 1000)),
    ]);
  }
  console.log(
    `chunk codec benchmark: ${objects} objects in ${chunks.length} chunks, ${RUNS} runs, median; node ${process.version}`,
  );
  printTable(['codec', 'encode ms', 'decode ms', 'bytes', 'encode MB/s', 'decode MB/s'], rows);
  await Promise.resolve();
  return { figures, verdicts };
}
