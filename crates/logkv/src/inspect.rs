//! `logkv inspect`: a read-only check of the compacted file, every
//! checkpoint and every segment, printed as one line each and a total,
//! without opening (and so without repairing) the store.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use logkv_fs::StdFs;
use logkv_log::inspect::{inspect_from, Damage, SegmentInfo};
use logkv_store::{inspect_checkpoints, inspect_compacted};

use crate::exit::{CliError, Outcome};

/// Prints the report; fails with [`CliError::Damaged`] if any damage is
/// corruption rather than a torn tail.
pub fn run(dir: &Path) -> Result<Outcome, CliError> {
    let mut out = BufWriter::new(io::stdout().lock());
    let compacted = inspect_compacted(&StdFs, dir)?;
    if let Some((info, keys)) = &compacted {
        writeln!(
            out,
            "{} compacted through={} version={} horizon={} keys={keys} bytes={} ok",
            dir.join(format!("{:08}.head", info.id)).display(),
            info.last_position,
            info.last_version,
            info.horizon,
            info.table_end,
        )
        .map_err(CliError::Output)?;
    }
    for (path, checked) in inspect_checkpoints(&StdFs, dir)? {
        let status = match checked {
            Ok(c) => format!("position={} version={} ok", c.position, c.version),
            // A damaged checkpoint is skipped at open, never loaded.
            Err(why) => format!("damaged ({why}); an open skips it"),
        };
        writeln!(out, "{} {status}", path.display()).map_err(CliError::Output)?;
    }
    let first_position = compacted.map_or(1, |(info, _)| info.last_position + 1);
    let infos = inspect_from(&StdFs, dir, first_position)?;
    for info in &infos {
        writeln!(out, "{}", segment_line(info)).map_err(CliError::Output)?;
    }
    let corrupt: Vec<(&SegmentInfo, &Damage)> = infos
        .iter()
        .filter_map(|i| Some((i, i.damage.as_ref()?)))
        .filter(|(_, d)| !d.is_torn_tail())
        .collect();
    let torn = infos.iter().filter(|i| i.damage.is_some()).count() - corrupt.len();
    writeln!(
        out,
        "total segments={} capacity={} records={} data_bytes={} torn_tails={torn} corrupt={}",
        infos.len(),
        infos.iter().map(|i| i.capacity).sum::<u64>(),
        infos.iter().map(|i| i.records).sum::<u64>(),
        infos.iter().map(|i| i.data_bytes).sum::<u64>(),
        corrupt.len(),
    )
    .map_err(CliError::Output)?;
    out.flush().map_err(CliError::Output)?;
    match corrupt.first() {
        None => Ok(Outcome::Ok),
        Some((info, d)) => Err(CliError::Damaged {
            damaged: corrupt.len(),
            file: info.file.clone(),
            offset: d.offset,
            detail: d.detail.clone(),
        }),
    }
}

/// `FILE capacity=N records=N first=P last=P data_bytes=N STATUS`, where
/// STATUS is `ok` or the first damage, its offset and what it means.
fn segment_line(info: &SegmentInfo) -> String {
    let position = |p: Option<u64>| p.map_or("-".to_string(), |p| p.to_string());
    let status = match &info.damage {
        None => "ok".to_string(),
        Some(d) => {
            let verdict = match (d.is_torn_tail(), d.intact_follows) {
                (true, false) => "torn tail",
                // Recovery cuts here too, dropping what follows.
                (true, true) => "torn tail, but intact records follow and recovery would drop them",
                (false, _) => "corruption, intact records follow",
            };
            let looks = if d.looks_torn { "looks torn" } else { "does not look torn" };
            format!("damage at offset {}: {} ({looks}; {verdict})", d.offset, d.detail)
        }
    };
    format!(
        "{} capacity={} records={} first={} last={} data_bytes={} {status}",
        info.file.display(),
        info.capacity,
        info.records,
        position(info.first_position),
        position(info.last_position),
        info.data_bytes,
    )
}
