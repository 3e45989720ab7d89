//! One segment file: a header, frames, then preallocated zeros.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use logkv_fs::{File, FileSystem};

use crate::error::{LogError, Result};
use crate::format::{SegmentHeader, FORMAT_VERSION, SEGMENT_HEADER_LEN};
use crate::locate::Marks;
use crate::recovery::SegmentExtent;

/// An open segment. Every read is a positional read ([`logkv_fs::read_with`]),
/// never a memory map: the file may be cut short or fail under the
/// process, and that must be an error naming it, not a SIGBUS.
#[derive(Debug)]
pub struct Segment {
    /// The segment number.
    pub id: u32,
    /// Where the file lives.
    pub path: PathBuf,
    /// The open file.
    pub file: Arc<dyn File>,
    /// Bytes reserved for this segment (its file length).
    pub capacity: u64,
    /// Position of its first record (0 if its header is unreadable).
    pub first_position: u64,
    /// Where its records are, sparsely, for lookups by position and time.
    pub(crate) marks: parking_lot::Mutex<Marks>,
    /// Its records, once it is sealed (no longer appended to).
    pub(crate) sealed: std::sync::OnceLock<SegmentExtent>,
}

impl Segment {
    /// The file name of segment `id`.
    pub fn file_name(id: u32) -> String {
        format!("{id:08}.log")
    }

    /// The segment number of a file name written by [`Segment::file_name`].
    pub fn parse_name(name: &str) -> Option<u32> {
        let digits = name.strip_suffix(".log")?;
        if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    /// The numbers of the segment files in `dir`, in order.
    pub fn list(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<u32>> {
        let mut ids: Vec<u32> = fs
            .list_dir(dir)
            .map_err(|e| LogError::io(dir, e))?
            .iter()
            .filter_map(|n| Self::parse_name(n))
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// Creates segment `id`: allocates `capacity` bytes, writes the header and
    /// syncs the file. The caller syncs the directory.
    pub fn create(
        fs: &dyn FileSystem,
        dir: &Path,
        id: u32,
        first_position: u64,
        capacity: u64,
    ) -> Result<Self> {
        let path = dir.join(Self::file_name(id));
        let io = |e| LogError::io(&path, e);
        let file = fs.create(&path).map_err(io)?;
        file.allocate(capacity).map_err(io)?;
        let header = SegmentHeader { version: FORMAT_VERSION, segment: id, first_position };
        file.write_at(&header.encode(), 0).map_err(io)?;
        file.sync_data().map_err(io)?;
        Self::with_file(id, path, file, capacity)
    }

    /// Opens an existing segment file.
    pub fn open(fs: &dyn FileSystem, path: &Path, id: u32) -> Result<Self> {
        let io = |e| LogError::io(path, e);
        let file = fs.open(path).map_err(io)?;
        let capacity = file.len().map_err(io)?;
        Self::with_file(id, path.to_path_buf(), file, capacity)
    }

    fn with_file(id: u32, path: PathBuf, file: Arc<dyn File>, capacity: u64) -> Result<Self> {
        let mut seg = Self {
            id,
            path,
            file,
            capacity,
            first_position: 0,
            marks: Default::default(),
            sealed: Default::default(),
        };
        if capacity >= SEGMENT_HEADER_LEN {
            let header = seg.with_bytes(0, SEGMENT_HEADER_LEN as usize, |b| SegmentHeader::decode(b).ok())?;
            seg.first_position = header.map_or(0, |h| h.first_position);
        }
        Ok(seg)
    }

    /// Calls `f` with `len` bytes at `offset`.
    pub fn with_bytes<R>(&self, offset: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        if offset.checked_add(len as u64).is_none_or(|end| end > self.capacity) {
            return Err(LogError::Corruption {
                file: self.path.clone(),
                offset,
                detail: format!("read of {len} bytes runs past the segment end {}", self.capacity),
            });
        }
        logkv_fs::read_with(self.file.as_ref(), offset, len, f).map_err(|e| self.read_error(offset, len, e))
    }

    /// The whole file as it was opened, for recovery's judgements and
    /// `inspect`.
    pub fn contents(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; self.capacity as usize];
        self.file.read_exact_at(&mut buf, 0).map_err(|e| self.read_error(0, buf.len(), e))?;
        Ok(buf)
    }

    /// A failed read: a file that now ends before the bytes asked for was
    /// cut short under the process, which is damage, not an I/O fault.
    fn read_error(&self, offset: u64, len: usize, e: std::io::Error) -> LogError {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            return LogError::Corruption {
                file: self.path.clone(),
                offset,
                detail: format!(
                    "the file ends before the {len} bytes read here (it was {} bytes at open)",
                    self.capacity
                ),
            };
        }
        LogError::io(&self.path, e)
    }

    /// Offset of the first frame.
    pub const fn data_start() -> u64 {
        SEGMENT_HEADER_LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_reject_strangers() {
        assert_eq!(Segment::file_name(42), "00000042.log");
        assert_eq!(Segment::parse_name("00000042.log"), Some(42));
        for bad in ["42.log", "0000004x.log", "00000042.tmp", "LOCK"] {
            assert_eq!(Segment::parse_name(bad), None, "{bad}");
        }
    }
}
