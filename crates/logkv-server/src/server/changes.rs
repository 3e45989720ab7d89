//! A stream's changes in version order, read from the log itself: every
//! `Applied` record holds the version records the node derived from its
//! entry, so the writes of one stream from any version on are the ops of
//! those records in the stream's keyspace — deletes included, which no
//! scan of the index can list once a key is gone. `kv_watch` reads its
//! history and then its live changes this way, one bounded step at a time,
//! never past the newest acknowledged position.
//!
//! Compaction replaces the oldest segments with a file of the versions
//! retention keeps, which no longer says what changed when: changes before
//! it cannot be read ([`oldest_watchable`]), and a reader whose segment
//! was replaced goes on in the segment holding its next position.

use logkv_log::format::{
    read_frame, FrameRead, SegmentHeader, FRAME_HEADER_LEN, FRAME_OVERHEAD, SEGMENT_HEADER_LEN,
};
use logkv_log::{Loc, RecordType};
use logkv_runtime::node::Node;
use logkv_runtime::system::{stream_key, SYSTEM_KEYSPACE};
use logkv_runtime::types::{tx_version, version_position, StreamId};
use logkv_store::applied::parse_applied;
use logkv_store::record::{OpKind, OP_HEADER_LEN};

use crate::compacted;

/// One write to a key of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The version that wrote it.
    pub version: u64,
    /// The key.
    pub key: Vec<u8>,
    /// The new value; `None` when the key was deleted.
    pub value: Option<Vec<u8>>,
}

/// Where a reader is in the log.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// The segment and the offset of the next frame in it.
    loc: Loc,
    /// The position of the next record to read.
    next: u64,
}

/// Reads one stream's changes from a version on.
#[derive(Debug)]
pub struct ChangeReader {
    stream: StreamId,
    keyspace: Option<u32>,
    from_version: u64,
    cursor: Option<Cursor>,
}

impl ChangeReader {
    /// A reader of `stream`'s changes at versions `from_version` and later.
    pub fn new(stream: StreamId, from_version: u64) -> Self {
        ChangeReader { stream, keyspace: None, from_version, cursor: None }
    }

    /// The changes after the previous call, in version order, until their
    /// keys and values hold `max_bytes` (a record's changes are never
    /// split, so one record's may go past it) and never past the newest
    /// acknowledged record. Empty once caught up.
    pub fn step(&mut self, node: &Node, max_bytes: usize) -> Result<Vec<Change>, String> {
        let visible = node.store().visible_position();
        let keyspace = match self.keyspace {
            Some(ks) => ks,
            None => match stream_keyspace(node, &self.stream)? {
                Some(ks) => *self.keyspace.insert(ks),
                // Nothing was ever written to the stream: it gets a
                // keyspace with its first write, later in the log.
                None => return Ok(Vec::new()),
            },
        };
        let mut cursor = match self.cursor {
            Some(c) => c,
            None => {
                let oldest = oldest_watchable(node);
                if self.from_version < oldest {
                    return Err(compacted::message(self.from_version, oldest));
                }
                let start = version_position(self.from_version).max(1);
                match first_segment_for(node, start)? {
                    Some(loc) => Cursor { loc, next: start },
                    None => return Ok(Vec::new()),
                }
            }
        };
        let mut out: Vec<Change> = Vec::new();
        let mut bytes = 0;
        while bytes < max_bytes && cursor.next <= visible {
            let (rtype, position, payload) = match read_at(node, cursor.loc)? {
                At::Record(rtype, position, payload) => (rtype, position, payload),
                // The rest of this segment is unused: the log went on in
                // the next one.
                At::End => {
                    cursor.loc = next_segment(node, cursor.loc.segment())?
                        .ok_or_else(|| format!("log position {} is in no segment", cursor.next))?;
                    continue;
                }
                // Compacted meanwhile: what is still to read is in a later
                // segment, unless the compaction covered it too.
                At::Replaced => {
                    cursor.loc = first_segment_for(node, cursor.next)?.ok_or_else(|| {
                        compacted::message(tx_version(cursor.next, 0), oldest_watchable(node))
                    })?;
                    continue;
                }
            };
            cursor.loc = cursor.loc.forward((FRAME_OVERHEAD + payload.len()) as u64);
            if position < cursor.next {
                continue;
            }
            cursor.next = position + 1;
            if rtype != RecordType::Applied as u8 {
                continue;
            }
            let parsed =
                parse_applied(&payload).map_err(|e| format!("record at position {position}: {e}"))?;
            for op in &parsed.ops {
                let h = &op.header;
                if h.keyspace != keyspace || h.version < self.from_version {
                    continue;
                }
                let value = match h.kind {
                    OpKind::Delete => None,
                    OpKind::Put => {
                        let at = op.offset + OP_HEADER_LEN + op.key.len();
                        Some(payload[at..at + h.value_len as usize].to_vec())
                    }
                    OpKind::PutRef => {
                        let at = op.value_at.ok_or("a put_ref op without its value")?;
                        Some(payload[at..at + h.value_len as usize].to_vec())
                    }
                };
                let change = Change { version: h.version, key: op.key.to_vec(), value };
                bytes += change.key.len() + change.value.as_ref().map_or(0, Vec::len);
                // A record that writes a key twice in one version: the
                // later op is that version's value.
                match out.last_mut() {
                    Some(last) if last.version == change.version && last.key == change.key => *last = change,
                    _ => out.push(change),
                }
            }
        }
        self.cursor = Some(cursor);
        Ok(out)
    }
}

/// The keyspace holding `stream`'s data, once the stream exists.
fn stream_keyspace(node: &Node, stream: &StreamId) -> Result<Option<u32>, String> {
    let found =
        node.store().get_at_in(SYSTEM_KEYSPACE, &stream_key(stream), u64::MAX).map_err(|e| e.to_string())?;
    found
        .map(|v| {
            <[u8; 4]>::try_from(&v.data[..])
                .map(u32::from_be_bytes)
                .map_err(|_| "bad stream record".to_string())
        })
        .transpose()
}

/// The oldest version whose changes the log still holds (0 before any
/// compaction).
pub fn oldest_watchable(node: &Node) -> u64 {
    node.store().compacted().map_or(0, |head| tx_version(head.last_position + 1, 0))
}

/// The segment ids of the log, oldest first.
fn segment_ids(node: &Node) -> Vec<u32> {
    let mut ids: Vec<u32> = node
        .store()
        .log()
        .segments()
        .iter()
        .filter_map(|(path, _)| path.file_name()?.to_str()?.strip_suffix(".log")?.parse().ok())
        .collect();
    ids.sort_unstable();
    ids
}

/// The first frame of the newest segment starting at or before `position`.
fn first_segment_for(node: &Node, position: u64) -> Result<Option<Loc>, String> {
    let log = node.store().log();
    let mut found = None;
    for id in segment_ids(node) {
        let header = log
            .read(Loc::new(id, 0), SEGMENT_HEADER_LEN as usize, SegmentHeader::decode)
            .map_err(|e| e.to_string())?;
        match header {
            Ok(h) if h.first_position <= position => found = Some(Loc::new(id, SEGMENT_HEADER_LEN)),
            Ok(_) => break,
            Err(e) => return Err(format!("segment {id}: {e:?}")),
        }
    }
    Ok(found)
}

/// The first frame of the segment after `id`.
fn next_segment(node: &Node, id: u32) -> Result<Option<Loc>, String> {
    Ok(segment_ids(node).into_iter().find(|&s| s > id).map(|s| Loc::new(s, SEGMENT_HEADER_LEN)))
}

/// What the log holds at a location.
enum At {
    /// A record: its type, position and payload.
    Record(u8, u64, Vec<u8>),
    /// Nothing more in this segment.
    End,
    /// The segment was compacted away.
    Replaced,
}

/// What the log holds at `loc`.
fn read_at(node: &Node, loc: Loc) -> Result<At, String> {
    let log = node.store().log();
    let Some(capacity) = log
        .segments()
        .iter()
        .find(|(path, _)| {
            path.file_name().and_then(|n| n.to_str()) == Some(&format!("{:08}.log", loc.segment()))
        })
        .map(|(_, capacity)| *capacity)
    else {
        return Ok(At::Replaced);
    };
    if loc.offset() + FRAME_HEADER_LEN as u64 > capacity {
        return Ok(At::End);
    }
    let replaced_or = |e: logkv_log::LogError| {
        if log.is_retired(loc.segment()) {
            Ok(At::Replaced)
        } else {
            Err(e.to_string())
        }
    };
    let header = match log.read(loc, FRAME_HEADER_LEN, |b| b.to_vec()) {
        Ok(header) => header,
        Err(e) => return replaced_or(e),
    };
    if header.iter().all(|&b| b == 0) {
        return Ok(At::End);
    }
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let frame_len = FRAME_OVERHEAD + len;
    if loc.offset() + frame_len as u64 > capacity {
        return Err(format!(
            "frame at offset {} of segment {} runs past its end",
            loc.offset(),
            loc.segment()
        ));
    }
    let frame = log.read(loc, frame_len, |b| match read_frame(b) {
        FrameRead::Intact(f) => Ok(At::Record(f.rtype, f.position, f.payload.to_vec())),
        FrameRead::Unwritten => Ok(At::End),
        FrameRead::Damaged { .. } => {
            Err(format!("damaged frame at offset {} of segment {}", loc.offset(), loc.segment()))
        }
    });
    match frame {
        Ok(read) => read,
        Err(e) => replaced_or(e),
    }
}
