// Golden vectors for logkv's signing and signed entries, made with the real
// ethers 6.13.1 that 0G wallets use. Prints JSON; check.sh compares it with
// crates/logkv-runtime/tests/fixtures/sign.json.
//
// - keys: fixed private keys (0x01×32, 0x02×32, a random-looking one, n−1)
//   with the address and uncompressed public key ethers derives;
// - digests: 32-byte digests with ethers' EIP-191 hashMessage of their raw bytes;
// - signatures: wallet.signMessage(getBytes(digest)) for every key × digest;
// - envelopes: logkv entries built here byte by byte from docs/format.md
//   ("Signed entries") and signed the way a JS client would, so the Rust
//   encoder must produce the same bytes and the parser must accept them.
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
const sortedUnique = (ids) => [...new Set(ids.map((t) => t.toLowerCase()))].sort();
const tagList = (ids) => ethers.concat([be(ids.length, 4), ...ids]);

// The unsigned part of an entry (docs/format.md, "Signed entries").
function unsignedEntry(sender, nonce, txs) {
  const tags = sortedUnique(txs.flatMap((tx) => tx.tags));
  const parts = [
    ethers.toUtf8Bytes('LKVE'),
    be(1, 2),
    sender,
    be(nonce, 8),
    tagList(tags),
    be(txs.length, 4),
  ];
  for (const tx of txs) {
    const body = ethers.getBytes(tx.body);
    parts.push(Uint8Array.of(tx.codec), tagList(sortedUnique(tx.tags)), be(body.length, 4), body);
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
  const envelopes = [
    { key: 0, nonce: '1', txs: [{ codec: 0, tags: [s('11')], body: oneWrite }] },
    {
      key: 1,
      nonce: '18446744073709551615',
      txs: [
        { codec: 1, tags: [s('22'), s('11')], body: '0x0102030405' },
        { codec: 0, tags: [s('33'), s('11')], body: '0x' },
        { codec: 0x80, tags: [], body: '0xdeadbeef' },
      ],
    },
    { key: 2, nonce: '0', txs: [] },
  ];
  for (const e of envelopes) {
    const w = wallets[e.key];
    const unsigned = unsignedEntry(w.address, e.nonce, e.txs);
    const digest = ethers.keccak256(unsigned);
    const signature = await w.signMessage(ethers.getBytes(digest));
    if (ethers.verifyMessage(ethers.getBytes(digest), signature) !== w.address) {
      throw new Error('ethers does not recover its own signature');
    }
    out.envelopes.push({
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
