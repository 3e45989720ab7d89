//! Bytes on disk: the segment header and the record frame (see `docs/format.md`).
//!
//! A segment file is a fixed header followed by frames, then zeros up to the
//! preallocated capacity. A frame carries one record:
//!
//! ```text
//! len u32 | type u8 | position u64 | time_ms u64 | payload (len bytes) | crc32c u32 | end u8 = 0x4C
//! ```
//!
//! `time_ms` is the record's *log time* (Unix milliseconds, never
//! decreasing along the log: the appending node's clock, or the time a
//! shared log gave the record), so point-in-time restore and time-based
//! retention can map a time to a position.
//!
//! All integers are little-endian. The CRC covers header and payload. The
//! frame ends with a fixed non-zero byte: a write cut short leaves a zero (or
//! the end of the file) where that byte should be, while bit rot leaves it in
//! place. That is how recovery tells a torn write from corruption.

/// First bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"LOGKVSEG";
/// The segment format this code writes and the only one it reads (format 1
/// had no append times; format 2's records are converted by migration).
pub const FORMAT_VERSION: u16 = 3;
/// The older format `logkv migrate` converts: its frames are this format's,
/// its payloads are not.
pub const MIGRATABLE_VERSION: u16 = 2;
/// Bytes reserved for the segment header; the first frame starts here.
pub const SEGMENT_HEADER_LEN: u64 = 32;
/// Bytes of a frame before its payload.
pub const FRAME_HEADER_LEN: usize = 21;
/// Bytes of a frame after its payload (CRC and end marker).
pub const FRAME_TRAILER_LEN: usize = 5;
/// The last byte of every frame.
pub const FRAME_END: u8 = 0x4C;
/// Bytes a frame adds to its payload.
pub const FRAME_OVERHEAD: usize = FRAME_HEADER_LEN + FRAME_TRAILER_LEN;
/// Largest payload the format allows; a length above it is damage, not data.
pub const MAX_PAYLOAD_LEN: usize = 1 << 30;
/// Largest segment number a [`Loc`] can address.
pub const MAX_SEGMENT_ID: u32 = (1 << 23) - 1;
/// Largest number of a log segment: the numbers above it name the store's
/// compacted files, so a location says which kind of file it is in.
pub const MAX_LOG_SEGMENT_ID: u32 = (1 << 22) - 1;
/// Largest segment capacity a [`Loc`] can address.
pub const MAX_SEGMENT_BYTES: u64 = 1 << 40;

/// Record types. Unknown types are refused as "written by a newer logkv".
/// Type 4 is reserved for the entries of a log of signed entries (the
/// shared-log seam); this version neither writes nor reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordType {
    /// A committed write batch of the store (see `logkv-store`).
    Batch = 1,
    /// A signed entry as a node applied it, with the version records it
    /// derived (see `logkv-store`).
    Applied = 2,
    /// A block of a compacted file (see `logkv-store`): never in a log
    /// segment, but framed the same way.
    Compacted = 3,
    /// An entry of a shared log kept in files (the runtime's
    /// `FileEntryLog`): the payload is the entry's bytes, verbatim.
    Entry = 4,
}

impl RecordType {
    /// The type for a byte, if this version knows it.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Batch),
            2 => Some(Self::Applied),
            3 => Some(Self::Compacted),
            4 => Some(Self::Entry),
            _ => None,
        }
    }

    /// The newest type this version knows (for "upgrade logkv" messages).
    pub const NEWEST: Self = Self::Entry;
}

/// Where bytes live: a segment and a byte offset inside it, packed in 63 bits
/// so an index entry spends 8 bytes on it (the top bit is left to the index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Loc(u64);

impl Loc {
    const OFFSET_BITS: u32 = 40;

    /// A location; `segment <= MAX_SEGMENT_ID`, `offset < MAX_SEGMENT_BYTES`.
    pub fn new(segment: u32, offset: u64) -> Self {
        debug_assert!(segment <= MAX_SEGMENT_ID && offset < MAX_SEGMENT_BYTES);
        Self(((segment as u64) << Self::OFFSET_BITS) | offset)
    }
    /// The segment number.
    pub fn segment(self) -> u32 {
        (self.0 >> Self::OFFSET_BITS) as u32
    }
    /// The byte offset inside the segment.
    pub fn offset(self) -> u64 {
        self.0 & ((1 << Self::OFFSET_BITS) - 1)
    }
    /// The packed form (63 bits used).
    pub fn to_u64(self) -> u64 {
        self.0
    }
    /// Unpacks [`Loc::to_u64`].
    pub fn from_u64(v: u64) -> Self {
        Self(v & !(1 << 63))
    }
    /// The location `n` bytes further in the same segment.
    pub fn forward(self, n: u64) -> Self {
        Self::new(self.segment(), self.offset() + n)
    }
}

/// The header at the start of every segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Format version the segment was written with.
    pub version: u16,
    /// The segment number (also in the file name).
    pub segment: u32,
    /// Position of the first record in this segment.
    pub first_position: u64,
}

/// Why a segment header could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// All zeros or shorter than a header: the file was being created.
    Unwritten,
    /// Wrong magic or checksum.
    Damaged,
    /// Written by a newer format version.
    TooNew(u16),
    /// Written by an older format version this code no longer reads.
    TooOld(u16),
}

impl SegmentHeader {
    /// Encodes into [`SEGMENT_HEADER_LEN`] bytes:
    /// `magic 8 | version u16 | reserved u16 | segment u32 | first_position u64 | reserved 4 | crc32c u32`.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN as usize] {
        let mut b = [0u8; SEGMENT_HEADER_LEN as usize];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8..10].copy_from_slice(&self.version.to_le_bytes());
        b[12..16].copy_from_slice(&self.segment.to_le_bytes());
        b[16..24].copy_from_slice(&self.first_position.to_le_bytes());
        let crc = crc32c::crc32c(&b[..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks a header.
    pub fn decode(b: &[u8]) -> Result<Self, HeaderError> {
        if b.len() < SEGMENT_HEADER_LEN as usize {
            return Err(HeaderError::Unwritten);
        }
        let b = &b[..SEGMENT_HEADER_LEN as usize];
        if b.iter().all(|&x| x == 0) {
            return Err(HeaderError::Unwritten);
        }
        if b[0..8] != SEGMENT_MAGIC || crc32c::crc32c(&b[..28]) != u32_at(b, 28) {
            return Err(HeaderError::Damaged);
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version > FORMAT_VERSION {
            return Err(HeaderError::TooNew(version));
        }
        if version < FORMAT_VERSION {
            return Err(HeaderError::TooOld(version));
        }
        Ok(Self { version, segment: u32_at(b, 12), first_position: u64_at(b, 16) })
    }
}

/// Writes a frame around a payload that the caller fills in place:
/// appends the header and `payload_len` zero bytes to `buf` and returns the
/// range of the payload; call [`seal_frame`] once the payload is written.
pub fn begin_frame(
    buf: &mut Vec<u8>,
    rtype: RecordType,
    position: u64,
    time_ms: u64,
    payload_len: usize,
) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&(payload_len as u32).to_le_bytes());
    buf.push(rtype as u8);
    buf.extend_from_slice(&position.to_le_bytes());
    buf.extend_from_slice(&time_ms.to_le_bytes());
    buf.resize(start + FRAME_HEADER_LEN + payload_len, 0);
    start
}

/// Appends the trailer (CRC and end marker) to the frame that starts at
/// `start` in `buf`.
pub fn seal_frame(buf: &mut Vec<u8>, start: usize) {
    let crc = crc32c::crc32c(&buf[start..]);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf.push(FRAME_END);
}

/// A frame read from disk whose checksum matched.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The record type byte (not yet checked against known types).
    pub rtype: u8,
    /// The record's position.
    pub position: u64,
    /// When it was appended (Unix milliseconds).
    pub time_ms: u64,
    /// The payload bytes.
    pub payload: &'a [u8],
}

impl Frame<'_> {
    /// Total bytes the frame occupies.
    pub fn len(&self) -> usize {
        FRAME_OVERHEAD + self.payload.len()
    }
    /// Frames are never empty; present for symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// What was found at an offset where a frame should start.
#[derive(Debug, Clone, Copy)]
pub enum FrameRead<'a> {
    /// An intact frame.
    Intact(Frame<'a>),
    /// Zeros: nothing was ever written here.
    Unwritten,
    /// Not an intact frame. `torn` says the damage looks like a write that
    /// was cut short (its end byte is zero).
    Damaged { torn: bool },
}

/// Reads the frame at the start of `b` (`b` runs to the end of the segment).
pub fn read_frame(b: &[u8]) -> FrameRead<'_> {
    if b.len() < FRAME_HEADER_LEN {
        return if b.iter().all(|&x| x == 0) {
            FrameRead::Unwritten
        } else {
            FrameRead::Damaged { torn: false }
        };
    }
    if b[..FRAME_HEADER_LEN].iter().all(|&x| x == 0) {
        return FrameRead::Unwritten;
    }
    let len = u32_at(b, 0) as usize;
    if len > MAX_PAYLOAD_LEN || FRAME_OVERHEAD + len > b.len() {
        // Segments are preallocated, so no write runs past the end: this is
        // a damaged length (or a file cut short), judged by what follows.
        return FrameRead::Damaged { torn: false };
    }
    let body_end = FRAME_HEADER_LEN + len;
    let end = b[body_end + 4];
    if end != FRAME_END || crc32c::crc32c(&b[..body_end]) != u32_at(b, body_end) {
        return FrameRead::Damaged { torn: end == 0 };
    }
    FrameRead::Intact(Frame {
        rtype: b[4],
        position: u64_at(b, 5),
        time_ms: u64_at(b, 13),
        payload: &b[FRAME_HEADER_LEN..body_end],
    })
}

/// Whether an intact frame with a plausible position (at or past
/// `min_position`) starts at any byte offset from `from`: the test recovery
/// uses to tell damage in the middle of the log from a torn tail. The
/// position test keeps the checksum work to a few candidates.
pub(crate) fn intact_frame_from(bytes: &[u8], from: usize, min_position: u64) -> bool {
    find_intact_frame(bytes, from, min_position..min_position.saturating_add(1 << 32)).is_some()
}

/// The first offset from `from` where an intact frame with a position in
/// `positions` starts: where the log resumes after damage (recovery's test,
/// and repair's anchor for reproducing what lies between).
pub fn find_intact_frame(bytes: &[u8], from: usize, positions: std::ops::Range<u64>) -> Option<usize> {
    let last = bytes.len().checked_sub(FRAME_OVERHEAD)?;
    (from..=last).find(|&off| {
        positions.contains(&u64_at(bytes, off + 5))
            && matches!(read_frame(&bytes[off..]), FrameRead::Intact(_))
    })
}

/// Reads the frame at `off` in a whole segment, where it should carry
/// `position`. Unlike [`read_frame`], a frame that looks torn is checked
/// against what follows: a write cut short leaves the next record (if any
/// survived) exactly where the declared length ends, so finding it anywhere
/// else means the length itself is damaged, which is corruption.
pub(crate) fn read_frame_in_segment(bytes: &[u8], off: usize, position: u64) -> FrameRead<'_> {
    let read = read_frame(&bytes[off..]);
    if let FrameRead::Damaged { torn: true } = read {
        let declared_end = off + FRAME_OVERHEAD + u32_at(bytes, off) as usize;
        let next = position.saturating_add(1);
        if find_intact_frame(bytes, off + 1, next..next.saturating_add(1)).is_some_and(|q| q != declared_end)
        {
            return FrameRead::Damaged { torn: false };
        }
    }
    read
}

/// Reads a little-endian u32 at `at`.
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4-byte slice"))
}

/// Reads a little-endian u64 at `at`.
pub fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8-byte slice"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(position: u64, payload: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        let start = begin_frame(&mut buf, RecordType::Batch, position, 1_700_000_000_000, payload.len());
        buf[start + FRAME_HEADER_LEN..].copy_from_slice(payload);
        seal_frame(&mut buf, start);
        buf
    }

    #[test]
    fn frame_round_trips() {
        let buf = frame(7, b"hello");
        match read_frame(&buf) {
            FrameRead::Intact(f) => {
                assert_eq!(
                    (f.rtype, f.position, f.time_ms, f.payload),
                    (1, 7, 1_700_000_000_000, &b"hello"[..])
                );
                assert_eq!(f.len(), buf.len());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_cut_short_frame_reads_as_torn() {
        let buf = frame(1, b"hello world");
        for cut in 1..buf.len() {
            let mut b = buf[..cut].to_vec();
            b.resize(buf.len() + 8, 0);
            assert!(matches!(read_frame(&b), FrameRead::Damaged { torn: true }), "cut {cut}");
        }
    }

    #[test]
    fn a_frame_running_past_the_segment_is_damage_not_a_torn_write() {
        let buf = frame(1, b"hello world");
        for cut in 1..buf.len() {
            assert!(matches!(read_frame(&buf[..cut]), FrameRead::Damaged { torn: false }), "cut {cut}");
        }
    }

    #[test]
    fn intact_frames_are_found_at_any_offset_and_only_with_later_positions() {
        let mut bytes = vec![7u8; 5];
        bytes.extend(frame(9, b"x"));
        assert!(intact_frame_from(&bytes, 0, 9));
        assert!(intact_frame_from(&bytes, 5, 3));
        assert!(!intact_frame_from(&bytes, 0, 10));
        assert!(!intact_frame_from(&bytes, 6, 9));
    }

    #[test]
    fn a_flipped_bit_reads_as_damage_not_torn() {
        let buf = frame(1, b"hello world");
        for i in FRAME_HEADER_LEN..buf.len() - 1 {
            let mut b = buf.clone();
            b[i] ^= 0x10;
            assert!(matches!(read_frame(&b), FrameRead::Damaged { torn: false }), "byte {i}");
        }
    }

    #[test]
    fn a_damaged_length_is_not_mistaken_for_a_torn_write() {
        let mut seg = frame(1, &[5u8; 40]);
        let second = seg.len();
        seg.extend(frame(2, b"next"));
        seg.resize(seg.len() + 256, 0);
        // Longer: the end byte falls on zeros past the data.
        let mut longer = seg.clone();
        longer[0] = 120;
        assert!(matches!(read_frame(&longer), FrameRead::Damaged { torn: true }));
        assert!(matches!(read_frame_in_segment(&longer, 0, 1), FrameRead::Damaged { torn: false }));
        // A genuinely torn first record whose successor survived stays torn.
        let mut torn = seg.clone();
        torn[second - 1] = 0;
        assert!(matches!(read_frame_in_segment(&torn, 0, 1), FrameRead::Damaged { torn: true }));
    }

    #[test]
    fn zeros_read_as_unwritten() {
        assert!(matches!(read_frame(&[0u8; 64]), FrameRead::Unwritten));
        assert!(matches!(read_frame(&[0u8; 3]), FrameRead::Unwritten));
    }

    #[test]
    fn segment_header_round_trips_and_refuses_newer_versions() {
        let h = SegmentHeader { version: FORMAT_VERSION, segment: 3, first_position: 99 };
        assert_eq!(SegmentHeader::decode(&h.encode()), Ok(h));
        let newer = SegmentHeader { version: FORMAT_VERSION + 1, ..h }.encode();
        assert_eq!(SegmentHeader::decode(&newer), Err(HeaderError::TooNew(FORMAT_VERSION + 1)));
        let older = SegmentHeader { version: 1, ..h }.encode();
        assert_eq!(SegmentHeader::decode(&older), Err(HeaderError::TooOld(1)));
        let mut bad = h.encode();
        bad[20] ^= 1;
        assert_eq!(SegmentHeader::decode(&bad), Err(HeaderError::Damaged));
        assert_eq!(SegmentHeader::decode(&[0; 32]), Err(HeaderError::Unwritten));
    }

    #[test]
    fn loc_packs_segment_and_offset() {
        let l = Loc::new(MAX_SEGMENT_ID, MAX_SEGMENT_BYTES - 1);
        assert_eq!((l.segment(), l.offset()), (MAX_SEGMENT_ID, MAX_SEGMENT_BYTES - 1));
        assert_eq!(Loc::from_u64(l.to_u64() | 1 << 63), l);
    }
}
