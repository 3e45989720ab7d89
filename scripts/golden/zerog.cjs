// Golden vectors for the 0G body ("stream data") and tags, made by the real
// 0G TypeScript SDK. Prints JSON: a list of cases, each with what the SDK
// built (version, reads, writes, controls; keys and values as hex) and its
// bytes: `StreamData.encode()` and `buildTags()`. The fixture is
// crates/logkv-runtime/tests/fixtures/zerog.json (see check.sh); the Rust
// test tests/zerog_golden.rs decodes and re-encodes every case.
//
// The SDK has no helpers for reads or access control: reads and controls
// are pushed into the builder's fields by hand, and a stream named only by a
// control is added to the tags with `addStreamId`, as the Go client does.
'use strict';
const { StreamDataBuilder } = require('@0gfoundation/0g-ts-sdk');
const { ethers } = require('ethers');

const stream = (b) => '0x' + b.repeat(32);
const account = (b) => '0x' + b.repeat(20);
const utf8 = (s) => ethers.toUtf8Bytes(s);
const hex = (bytes) => ethers.hexlify(bytes);
// Deterministic filler bytes: byte i is (i * 7 + seed) mod 256.
const pattern = (len, seed) => Uint8Array.from({ length: len }, (_, i) => (i * 7 + seed) & 0xff);

const S1 = stream('11');
const S2 = stream('22');
const S3 = stream('a3');
const A1 = account('33');
const A2 = account('4f');

// Reads: `b.reads` maps a stream to a Map of hex keys (no 0x).
function read(b, sid, key) {
  if (!b.reads.has(sid)) b.reads.set(sid, new Map());
  b.reads.get(sid).set(Buffer.from(key).toString('hex'), true);
}

// Controls: `{Type, StreamId, Key?, Account?}`; the SDK writes Key and
// Account when present, so each op gets exactly the fields it has.
function control(b, type, sid, fields) {
  b.controls.push({ Type: type, StreamId: sid, ...fields });
  b.addStreamId(sid);
}

const cases = [];
function addCase(description, b) {
  const sd = b.build();
  cases.push({
    description,
    version: String(sd.Version),
    reads: sd.Reads.map((r) => ({ stream: r.StreamId, key: hex(r.Key) })),
    writes: sd.Writes.map((w) => ({ stream: w.StreamId, key: hex(w.Key), value: hex(w.Data) })),
    controls: sd.Controls.map((c) => ({
      op: c.Type,
      stream: c.StreamId,
      ...(c.Key !== undefined && { key: hex(c.Key) }),
      ...(c.Account !== undefined && { account: c.Account }),
    })),
    encoded: hex(sd.encode()),
    tags: hex(b.buildTags()),
  });
}

{
  addCase('empty body at version 0: tags are the domain alone', new StreamDataBuilder(0));
}
{
  const b = new StreamDataBuilder(1);
  b.set(S1, utf8('k'), utf8('v1'));
  addCase('one write', b);
}
{
  const b = new StreamDataBuilder(5);
  b.set(S1, utf8('a'), utf8('1'));
  b.set(S2, utf8('b'), utf8('2'));
  b.set(S1, utf8('c'), utf8('3'));
  b.set(S3, utf8('d'), utf8('4'));
  addCase('several streams: writes grouped by stream in order of first set, tags in the same order', b);
}
{
  const b = new StreamDataBuilder(2);
  b.set(S1, utf8('a'), utf8('xyz'));
  b.set(S1, utf8('b'), new Uint8Array(0));
  b.set(S1, utf8('c'), utf8('q'));
  addCase('an empty value is a delete, and its data takes no bytes', b);
}
{
  const b = new StreamDataBuilder(9);
  read(b, S1, utf8('r1'));
  read(b, S2, utf8('r2'));
  read(b, S1, utf8('r3'));
  b.set(S3, utf8('w'), utf8('v'));
  addCase('reads: grouped by stream, not tagged', b);
}
{
  const b = new StreamDataBuilder(3);
  control(b, 0x00, S1, { Account: A1 }); // GrantAdminRole
  control(b, 0x01, S1, {}); // RenounceAdminRole
  control(b, 0x10, S1, { Key: utf8('special') }); // SetKeyToSpecial
  control(b, 0x11, S1, { Key: utf8('normal') }); // SetKeyToNormal
  control(b, 0x20, S2, { Account: A2 }); // GrantWriteRole
  control(b, 0x21, S2, { Account: A1 }); // RevokeWriteRole
  control(b, 0x22, S2, {}); // RenounceWriteRole
  control(b, 0x30, S3, { Key: utf8('sk'), Account: A2 }); // GrantSpecialWriteRole
  control(b, 0x31, S3, { Key: utf8('sk'), Account: A1 }); // RevokeSpecialWriteRole
  control(b, 0x32, S3, { Key: utf8('sk2') }); // RenounceSpecialWriteRole
  addCase('every control op, key before account', b);
}
{
  const b = new StreamDataBuilder(7);
  b.set(S1, utf8('a'), utf8('xyz'));
  b.set(S1, utf8('b'), new Uint8Array(0));
  read(b, S1, utf8('r'));
  control(b, 0x20, S1, { Account: account('22') });
  control(b, 0x30, S1, { Key: utf8('s'), Account: account('22') });
  control(b, 0x01, S1, {});
  addCase('reads, writes, a delete and controls together (the research note\'s example)', b);
}
{
  const b = new StreamDataBuilder(2n ** 64n - 1n);
  b.set(S1, utf8('k'), utf8('v'));
  addCase('version u64::MAX (no version check), passed as a BigInt', b);
}
{
  const b = new StreamDataBuilder((123456789n << 16n) | 5n);
  b.set(S1, utf8('k'), utf8('v'));
  addCase('a version above 2^53 (position 123456789, index 5), passed as a BigInt', b);
}
{
  const b = new StreamDataBuilder(4);
  b.set(S1, utf8('a'), utf8('1'));
  b.set(S1, utf8('b'), utf8('2'));
  b.set(S1, utf8('a'), utf8('3'));
  addCase('a repeated set keeps the first place and the last value (the SDK dedupes)', b);
}
{
  const b = new StreamDataBuilder(6);
  b.set(S2, pattern(1000, 1), pattern(100 * 1024, 2));
  addCase('a 1,000-byte key with a 100 KiB value', b);
}
{
  const b = new StreamDataBuilder(8);
  b.set(S1, Uint8Array.from([0x00, 0xff, 0x80]), Uint8Array.from([0x00]));
  addCase('binary key and a one-byte zero value', b);
}

process.stdout.write(JSON.stringify(cases, null, 2) + '\n');
