// Golden vectors for logkv's signing and signed entries, made with the real
// ethers 6.13.1 that 0G wallets use. Prints JSON; check.sh compares it with
// crates/logkv-runtime/tests/fixtures/sign.json.
//
// - keys: fixed private keys (0x01×32, 0x02×32, a random-looking one, n−1)
//   with the address and uncompressed public key ethers derives;
// - digests: 32-byte digests with ethers' EIP-191 hashMessage of their raw bytes;
// - signatures: wallet.signMessage(getBytes(digest)) for every key × digest;
// - envelopes: logkv entries, in protocols 1 and 2, built here byte by byte
//   from docs/format.md ("Signed entries") and signed the way a JS client
//   would, so the Rust encoder must produce the same bytes and the parser
//   must accept them; protocol 2 ones carry a codec 2 (native compact) body
//   built here from "Transaction bodies", which the Rust encoder must match.
'use strict';
const { ethers } = require('ethers');

const keys = [
  '0x' + '01'.repeat(32),
  '0x' + '02'.repeat(32),
  '0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318',
  // The largest valid secret key: the group order n minus 1.
  '0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140',
];

const digests = [
  ethers.keccak256(ethers.toUtf8Bytes('hello')),
  '0x' + '00'.repeat(32),
  '0x' + 'ff'.repeat(32),
  ethers.hexlify(Uint8Array.from({ length: 32 }, (_, i) => i + 1)),
];
for (let i = 0; i < 4; i++) digests.push(ethers.keccak256(ethers.toUtf8Bytes(`logkv-${i}`)));

const be = (n, bytes) => {
  const out = new Uint8Array(bytes);
  let v = BigInt(n);
  for (let i = bytes - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
};
// Unsigned LEB128, shortest form.
const varint = (n) => {
  const out = [];
  let v = BigInt(n);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
};
const sortedUnique = (ids) => [...new Set(ids.map((t) => t.toLowerCase()))].sort();
// Counts and lengths: u32 in protocol 1, varints in protocol 2.
const count = (protocol, n) => (protocol === 1 ? be(n, 4) : varint(n));

// The unsigned part of an entry (docs/format.md, "Signed entries").
function unsignedEntry(protocol, sender, nonce, txs) {
  const tags = sortedUnique(txs.flatMap((tx) => tx.tags));
  const parts = [
    ethers.toUtf8Bytes('LKVE'),
    be(protocol, 2),
    sender,
    be(nonce, 8),
    count(protocol, tags.length),
    ...tags,
    count(protocol, txs.length),
  ];
  for (const tx of txs) {
    const body = ethers.getBytes(tx.body);
    const own = sortedUnique(tx.tags);
    // Protocol 2 names a transaction's tags by their index in the entry's list.
    const named = protocol === 1 ? own : own.map((t) => varint(tags.indexOf(t)));
    parts.push(Uint8Array.of(tx.codec), count(protocol, own.length), ...named, count(protocol, body.length), body);
  }
  return ethers.concat(parts);
}

async function main() {
  const wallets = keys.map((k) => new ethers.Wallet(k));
  const out = {
    generator: 'scripts/golden/sign.cjs',
    ethers: ethers.version,
    keys: wallets.map((w) => ({
      private_key: w.privateKey,
      address: w.address,
      public_key: w.signingKey.publicKey,
    })),
    digests: digests.map((d) => ({ digest: d, eip191_hash: ethers.hashMessage(ethers.getBytes(d)) })),
    signatures: [],
    envelopes: [],
  };
  for (let k = 0; k < wallets.length; k++) {
    for (let d = 0; d < digests.length; d++) {
      const signature = await wallets[k].signMessage(ethers.getBytes(digests[d]));
      out.signatures.push({ key: k, digest: d, signature });
    }
  }

  const s = (b) => '0x' + b.repeat(32);
  // The 0G "one write" body: version 1, no reads, key "k" -> "v1" in stream 0x11…, no controls.
  const oneWrite =
    '0x0000000000000001000000000000000111111111111111111111111111111111111111111111111111111111111111110000016b0000000000000002763100000000';
  // A codec 2 body: SET of a 16-byte key to a 100-byte value on the
  // transaction's only tag (index 0), no version check (version + 1 = 0),
  // flags "reads only", no reads, one Put, no controls.
  const compactSet = ethers.hexlify(
    ethers.concat([
      Uint8Array.of(0x00, 0x01, 0x00, 0x01, 0x01, 0x00),
      varint(16),
      ethers.toUtf8Bytes('k'.repeat(16)),
      varint(100),
      ethers.toUtf8Bytes('v'.repeat(100)),
      Uint8Array.of(0x00),
    ])
  );
  const mixed = [
    { codec: 1, tags: [s('22'), s('11')], body: '0x0102030405' },
    { codec: 0, tags: [s('33'), s('11')], body: '0x' },
    { codec: 0x80, tags: [], body: '0xdeadbeef' },
  ];
  const envelopes = [
    { protocol: 1, key: 0, nonce: '1', txs: [{ codec: 0, tags: [s('11')], body: oneWrite }] },
    { protocol: 1, key: 1, nonce: '18446744073709551615', txs: mixed },
    { protocol: 1, key: 2, nonce: '0', txs: [] },
    {
      protocol: 2,
      key: 0,
      nonce: '2',
      txs: [
        { codec: 2, tags: [s('11')], body: compactSet },
        { codec: 2, tags: [s('11')], body: compactSet },
      ],
    },
    { protocol: 2, key: 1, nonce: '18446744073709551615', txs: mixed },
    { protocol: 2, key: 2, nonce: '0', txs: [] },
    { protocol: 2, key: 3, nonce: '300', txs: [{ codec: 0x80, tags: [], body: '0x' + 'aa'.repeat(200) }] },
  ];
  for (const e of envelopes) {
    const w = wallets[e.key];
    const unsigned = unsignedEntry(e.protocol, w.address, e.nonce, e.txs);
    const digest = ethers.keccak256(unsigned);
    const signature = await w.signMessage(ethers.getBytes(digest));
    if (ethers.verifyMessage(ethers.getBytes(digest), signature) !== w.address) {
      throw new Error('ethers does not recover its own signature');
    }
    out.envelopes.push({
      protocol: e.protocol,
      key: e.key,
      sender: w.address,
      nonce: e.nonce,
      txs: e.txs.map((tx) => ({ codec: tx.codec, tags: sortedUnique(tx.tags), body: tx.body })),
      signing_digest: digest,
      entry: ethers.concat([unsigned, signature]),
    });
  }
  console.log(JSON.stringify(out, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
