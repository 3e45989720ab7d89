//! Seed inputs for each target, made from valid encodings by the real
//! encoders, so the fuzzer starts from what the decoders accept.
//! `cargo run -p logkv-fuzz --bin logkv-fuzz-seeds -- fuzz/corpus` writes
//! them as the committed corpus; a test replays that corpus, not these.

use std::path::Path;

use bytes::Bytes;
use logkv_fs::SimFs;
use logkv_runtime::codec::native::{self, Body, BodyWrite, Op};
use logkv_runtime::codec::{zerog, Control, ControlOp, ExpireCond, NewExpiry, PutCond, Read, NATIVE, ZEROG};
use logkv_runtime::envelope::{Entry, Protocol, TxPart};
use logkv_runtime::signing::Signer;
use logkv_runtime::types::{Address, StreamId};
use logkv_store::{AppliedOp, AppliedValue, Store, WriteBatch, DEFAULT_KEYSPACE};

use crate::stored::{options, read_files, DIR};

/// The seeds of the target called `name` (none for an unknown name).
pub fn seeds(name: &str) -> Vec<Vec<u8>> {
    match name {
        "resp" => resp(),
        "jsonrpc" => jsonrpc(),
        "zerog" => zerog_bodies().iter().map(zerog::encode).collect(),
        "native" => native_seeds(),
        "envelope" => entries(),
        "segments" => segments(),
        "checkpoint" => checkpoint(),
        "compacted" => compacted(),
        _ => Vec::new(),
    }
}

fn resp() -> Vec<Vec<u8>> {
    let requests: [&[u8]; 8] = [
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n",
        b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n",
        b"*5\r\n$3\r\nSET\r\n$3\r\nkey\r\n$1\r\nv\r\n$2\r\nNX\r\n$3\r\nGET\r\n",
        b"*4\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n",
        b"SET \"a b\" 'c\\'d' \"\\x41\\n\"\r\n",
        b"MULTI\r\nINCRBY counter 5\r\nEXEC\r\n",
        b"*0\r\n*-1\r\n\r\n",
        b"*3\r\n$4\r\nSCAN\r\n$1\r\n0\r\n$5\r\nMATCH\r\n",
    ];
    // Each with the default limits cut early, and with the small ones.
    requests.iter().flat_map(|r| [0u8, 1].map(|limits| [&[limits, 7][..], r].concat())).collect()
}

fn jsonrpc() -> Vec<Vec<u8>> {
    [
        r#"{"jsonrpc":"2.0","id":1,"method":"kv_getValue","params":["0x0101010101010101010101010101010101010101010101010101010101010101","0x6b",0,262144,null]}"#,
        r#"[{"jsonrpc":"2.0","id":"a","method":"kv_getHoldingStreamIds"},{"jsonrpc":"2.0","method":"kv_getNext","params":[]}]"#,
        r#"{"jsonrpc":"2.0","id":18446744073709551616,"method":"kv_submit","params":["0x4c4b5645"]}"#,
        r#"{"jsonrpc":"2.0","id":null,"method":"admin_sync","params":null}"#,
        r#"[1,{"jsonrpc":"1.0"},{"id":[],"jsonrpc":"2.0","method":"x"}]"#,
    ]
    .map(|s| s.as_bytes().to_vec())
    .to_vec()
}

fn stream(n: u8) -> StreamId {
    StreamId([n; 32])
}

fn zerog_bodies() -> Vec<zerog::Body> {
    let write = |n: u8, key: &[u8], value: &[u8]| zerog::BodyWrite {
        stream: stream(n),
        key: key.into(),
        value: value.into(),
    };
    vec![
        zerog::Body { version: u64::MAX, writes: vec![write(1, b"k", b"v")], ..Default::default() },
        zerog::Body {
            version: 7,
            reads: vec![Read { stream: stream(1), key: b"r".to_vec() }],
            writes: vec![write(1, b"a", b"1"), write(2, b"b", b"")],
            controls: vec![
                Control {
                    op: ControlOp::GrantWriteRole,
                    stream: stream(2),
                    key: None,
                    account: Some(Address([9; 20])),
                },
                Control {
                    op: ControlOp::SetKeyToSpecial,
                    stream: stream(1),
                    key: Some(b"s".to_vec()),
                    account: None,
                },
            ],
        },
    ]
}

fn native_bodies() -> Vec<Body> {
    let write = |n: u8, key: &[u8], op: Op| BodyWrite { stream: stream(n), key: key.into(), op };
    vec![
        Body {
            version: u64::MAX,
            writes: vec![write(1, b"k", Op::Put(Bytes::from_static(b"v")))],
            ..Default::default()
        },
        Body {
            version: 3,
            check_reads_only: true,
            reads: vec![Read { stream: stream(2), key: b"w".to_vec() }],
            writes: vec![
                write(1, b"n", Op::Increment(-5)),
                write(1, b"a", Op::Append(Bytes::from_static(b"tail"))),
                write(2, b"x", Op::PutIfAbsent(Bytes::new())),
                write(2, b"y", Op::PutIfPresent(Bytes::from_static(b"y"))),
                write(1, b"d", Op::Delete),
                write(1, b"e", Op::DeleteIfPresent),
                write(1, b"g", Op::Get),
                write(
                    1,
                    b"t",
                    Op::PutExpiring {
                        value: Bytes::from_static(b"v"),
                        cond: PutCond::IfPresent,
                        expiry: NewExpiry::At(9),
                    },
                ),
                write(
                    1,
                    b"t",
                    Op::PutExpiring { value: Bytes::new(), cond: PutCond::Always, expiry: NewExpiry::Keep },
                ),
                write(2, b"t", Op::Expire { cond: ExpireCond::IfLater, at: Some(1 << 40) }),
                write(2, b"t", Op::Expire { cond: ExpireCond::Always, at: None }),
            ],
            controls: vec![Control {
                op: ControlOp::RenounceAdminRole,
                stream: stream(1),
                key: None,
                account: None,
            }],
        },
    ]
}

/// Each native body in codec 1, and in codec 2 with the streams 1 and 2
/// as tags (the tags the target derives from a tag count of 2 and 3 are
/// `[1; 32]`, `[0x12; 32]`, ...: some seeds name streams by index, others
/// write them out).
fn native_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for body in native_bodies() {
        seeds.push([&[0u8, 0][..], &native::encode(&body)].concat());
        for tag_count in [0u8, 2] {
            let tags: Vec<StreamId> = (0..tag_count).map(|i| StreamId([i * 0x11 + 1; 32])).collect();
            seeds.push([&[1u8, tag_count][..], &native::encode_compact(&body, &tags)].concat());
        }
    }
    seeds
}

fn entries() -> Vec<Vec<u8>> {
    let signer = Signer::from_secret_bytes([7; 32]).expect("a valid key");
    let zerog_tx = |body: &zerog::Body| TxPart { codec: ZEROG, tags: body.tags(), body: zerog::encode(body) };
    let native_tx = |body: &Body| TxPart { codec: NATIVE, tags: body.tags(), body: native::encode(body) };
    let (zerog_bodies, native_bodies) = (zerog_bodies(), native_bodies());
    let txs = vec![
        zerog_tx(&zerog_bodies[1]),
        native_tx(&native_bodies[0]),
        native::compact_tx(&native_bodies[1], native_bodies[1].tags()),
    ];
    let entry = Entry { sender: signer.address(), nonce: 42, txs };
    let one = Entry { sender: signer.address(), nonce: 1, txs: vec![zerog_tx(&zerog_bodies[0])] };
    [(&one, Protocol::V1), (&entry, Protocol::V1), (&entry, Protocol::V2), (&entry, Protocol::V3)]
        .into_iter()
        .map(|(entry, protocol)| entry.encode_signed_as(protocol, &signer).expect("encodes"))
        .collect()
}

/// Writes a small store into [`DIR`]: puts, overwrites, deletes and a
/// batch, across several segments, and closes it.
pub(crate) fn small_store(fs: &SimFs) -> Store {
    let store = Store::open(DIR, options(fs)).expect("open store");
    for i in 0..24u32 {
        let value = vec![b'a' + (i % 26) as u8; 40 + i as usize * 8];
        store.put(format!("key{}", i % 9).as_bytes(), &value).expect("put");
    }
    store.delete(b"key3").expect("delete");
    let mut batch = WriteBatch::default();
    batch.put("b1", "one").delete("key4").put("b2", "");
    store.write(&batch).expect("batch");
    store
}

/// Writes a store of applied entries into [`DIR`], as a node does: each
/// record an entry with the version records derived from it (values inside
/// the entry), a state and an annex.
fn applied_store(fs: &SimFs) -> Store {
    let store = Store::open(DIR, options(fs)).expect("open store");
    for p in 1..=12u64 {
        let key = format!("k{}", p % 4).into_bytes();
        let ops = [AppliedOp {
            keyspace: DEFAULT_KEYSPACE,
            key: &key,
            version: p << 16,
            value: AppliedValue::InEntry { offset: 2, len: 6 },
        }];
        let entry = vec![p as u8; 40 + p as usize];
        let annex = format!("annex {p}");
        store
            .append_applied(None, p << 16, &entry, &ops, &[p as u8; 32], annex.as_bytes(), Some(1_000 * p))
            .expect("append applied");
    }
    store.commit(12).expect("commit");
    store
}

/// The files of [`DIR`] whose names end in `suffix`.
fn files(fs: &SimFs, suffix: &str) -> Vec<Vec<u8>> {
    read_files(fs).into_iter().filter(|(name, _)| name.ends_with(suffix)).map(|(_, bytes)| bytes).collect()
}

fn segments() -> Vec<Vec<u8>> {
    let (batches, applied) = (SimFs::new(), SimFs::new());
    small_store(&batches).close().expect("close");
    applied_store(&applied).close().expect("close");
    let (batches, applied) = (files(&batches, ".log").concat(), files(&applied, ".log").concat());
    vec![[&[0u8][..], &batches].concat(), [&[2u8][..], &batches].concat(), [&[0u8][..], &applied].concat()]
}

fn checkpoint() -> Vec<Vec<u8>> {
    let fs = SimFs::new();
    let store = small_store(&fs);
    store.checkpoint().expect("checkpoint");
    store.close().expect("close");
    files(&fs, ".ckpt").into_iter().map(|ckpt| [&[0u8][..], &ckpt].concat()).collect()
}

fn compacted() -> Vec<Vec<u8>> {
    [small_store, applied_store]
        .iter()
        .flat_map(|write| {
            let fs = SimFs::new();
            let store = write(&fs);
            store.compact(&mut |_, _| {}).expect("compact");
            store.close().expect("close");
            files(&fs, ".head").into_iter().map(|head| [&[0u8][..], &head].concat())
        })
        .collect()
}

/// Writes every target's seeds under `corpus/<target>/seed-<n>`.
pub fn write_all(corpus: &Path) -> std::io::Result<()> {
    for target in crate::TARGETS {
        let dir = corpus.join(target.name);
        std::fs::create_dir_all(&dir)?;
        for (i, seed) in seeds(target.name).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), seed)?;
        }
    }
    Ok(())
}
