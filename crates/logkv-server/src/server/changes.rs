//! A stream's changes in version order, read from the log itself: every
//! `Applied` record holds the version records the node derived from its
//! entry, so the writes of one stream from any version on are the ops of
//! those records in the stream's keyspace — deletes included, which no
//! scan of the index can list once a key is gone. `kv_watch` reads its
//! history and then its live changes this way, one bounded step at a time,
//! never past the newest acknowledged position.

use logkv_log::format::{
    read_frame, FrameRead, SegmentHeader, FRAME_HEADER_LEN, FRAME_OVERHEAD, SEGMENT_HEADER_LEN,
};
use logkv_log::{Loc, RecordType};
use logkv_runtime::node::Node;
use logkv_runtime::system::{stream_key, SYSTEM_KEYSPACE};
use logkv_runtime::types::{version_position, StreamId};
use logkv_store::applied::parse_applied;
use logkv_store::record::{OpKind, OP_HEADER_LEN};

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

    /// The changes after the previous call, in version order, up to about
    /// `max` of them (a record's changes are never split) and never past
    /// the newest acknowledged record. Empty once caught up.
    pub fn step(&mut self, node: &Node, max: usize) -> Result<Vec<Change>, String> {
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
                let start = version_position(self.from_version).max(1);
                match first_segment_for(node, start)? {
                    Some(loc) => Cursor { loc, next: start },
                    None => return Ok(Vec::new()),
                }
            }
        };
        let mut out: Vec<Change> = Vec::new();
        while out.len() < max && cursor.next <= visible {
            let Some((rtype, position, payload)) = read_at(node, cursor.loc)? else {
                // The rest of this segment is unused: the log went on in
                // the next one.
                cursor.loc = next_segment(node, cursor.loc.segment())?
                    .ok_or_else(|| format!("log position {} is in no segment", cursor.next))?;
                continue;
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

/// The record at `loc`: its type, position and payload; `None` where the
/// segment holds no more records.
fn read_at(node: &Node, loc: Loc) -> Result<Option<(u8, u64, Vec<u8>)>, String> {
    let log = node.store().log();
    let capacity = log
        .segments()
        .iter()
        .find(|(path, _)| {
            path.file_name().and_then(|n| n.to_str()) == Some(&format!("{:08}.log", loc.segment()))
        })
        .map(|(_, capacity)| *capacity)
        .ok_or_else(|| format!("segment {} is gone", loc.segment()))?;
    if loc.offset() + FRAME_HEADER_LEN as u64 > capacity {
        return Ok(None);
    }
    let header = log.read(loc, FRAME_HEADER_LEN, |b| b.to_vec()).map_err(|e| e.to_string())?;
    if header.iter().all(|&b| b == 0) {
        return Ok(None);
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
    log.read(loc, frame_len, |b| match read_frame(b) {
        FrameRead::Intact(f) => Ok(Some((f.rtype, f.position, f.payload.to_vec()))),
        FrameRead::Unwritten => Ok(None),
        FrameRead::Damaged { .. } => {
            Err(format!("damaged frame at offset {} of segment {}", loc.offset(), loc.segment()))
        }
    })
    .map_err(|e| e.to_string())?
}
