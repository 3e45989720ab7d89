// Reads a logkv node through the official 0G TypeScript SDK's KvClient and
// prints what it saw as JSON on stdout:
//
//   node kvclient.mjs <url> <streamId> [key ...] [--paged=key ...] [--no-iterate]
//
// - "values": KvClient.getValue of each key given (UTF-8);
// - "paged": each --paged key's value read page by page with
//   KvClient.get(stream, key, startIndex, MAX_QUERY_SIZE), as the SDK pages.
//   (KvClient.getValue itself passes the base64 length of what it has read
//   as the next startIndex, so it cannot read a value larger than one page
//   from any server; nor can a KvIterator positioned on such a key.)
// - "forward": the stream through a KvIterator from seekToFirst, next()
//   until it is no longer valid (kv_getFirst, kv_getNext, then getValue);
// - "backward": the same from seekToLast with prev() (kv_getLast, kv_getPrev).
//   With --no-iterate, "forward" and "backward" are left out.
//
// Keys and values are base64, as the SDK returns them.
import { KvClient, MAX_QUERY_SIZE } from '@0gfoundation/0g-ts-sdk';

const [url, stream, ...rest] = process.argv.slice(2);
const keys = rest.filter((a) => !a.startsWith('--'));
const iterate = !rest.includes('--no-iterate');
const pagedKeys = rest.filter((a) => a.startsWith('--paged=')).map((a) => a.slice('--paged='.length));
if (!url || !stream) {
  console.error('usage: node kvclient.mjs <url> <streamId> [key ...]');
  process.exit(2);
}

const client = new KvClient(url);
const b64 = (bytes) => Buffer.from(bytes).toString('base64');

const values = [];
for (const key of keys) {
  const value = await client.getValue(stream, Buffer.from(key, 'utf8'));
  values.push(value === null ? null : { key: b64(Buffer.from(key, 'utf8')), data: value.data, size: value.size, version: value.version });
}

const paged = [];
for (const key of pagedKeys) {
  const k = Buffer.from(key, 'utf8');
  const parts = [];
  let got = 0;
  let first = await client.get(stream, k, 0, MAX_QUERY_SIZE);
  let page = first;
  for (;;) {
    const bytes = Buffer.from(page.data, 'base64');
    parts.push(bytes);
    got += bytes.length;
    if (got >= page.size || bytes.length === 0) {
      break;
    }
    // Later pages as of the first one's version: one value, however many
    // writes land meanwhile.
    page = await client.get(stream, k, got, MAX_QUERY_SIZE, first.version);
  }
  paged.push({ key: b64(k), data: b64(Buffer.concat(parts)), size: first.size, version: first.version, pages: parts.length });
}

async function walk(seek, step) {
  const iterator = client.newIterator(stream);
  const seen = [];
  let err = await iterator[seek]();
  while (err === null && iterator.valid()) {
    const pair = iterator.getCurrentPair();
    seen.push({ key: b64(pair.key), data: pair.data, size: pair.size, version: pair.version });
    err = await iterator[step]();
  }
  if (err !== null) {
    throw err;
  }
  return seen;
}

const out = { values, paged };
if (iterate) {
  out.forward = await walk('seekToFirst', 'next');
  out.backward = await walk('seekToLast', 'prev');
}
console.log(JSON.stringify(out));
