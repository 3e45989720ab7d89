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
/// corruption rather than a torn tail, or if the log ends before a position
/// the newest checkpoint or the compacted file covers: those were durable,
/// so what cut them is a truncation, not a crash's torn tail.
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
    let checkpoints = inspect_checkpoints(&StdFs, dir)?;
    // Written only once the log was durable through their position (a
    // damaged one too: its name says where).
    let newest_checkpoint = checkpoints.first().and_then(|(path, _)| {
        let name = path.file_name()?.to_str()?;
        Some((name.strip_prefix("checkpoint-")?.strip_suffix(".ckpt")?.parse::<u64>().ok()?, path.clone()))
    });
    let durable = newest_checkpoint
        .into_iter()
        .chain(
            compacted
                .as_ref()
                .map(|(info, _)| (info.last_position, dir.join(format!("{:08}.head", info.id)))),
        )
        .max_by_key(|(position, _)| *position);
    for (path, checked) in checkpoints {
        let status = match checked {
            Ok(c) => format!("position={} version={} ok", c.position, c.version),
            // A damaged checkpoint is skipped at open, never loaded.
            Err(why) => format!("damaged ({why}); an open skips it"),
        };
        writeln!(out, "{} {status}", path.display()).map_err(CliError::Output)?;
    }
    let first_position = compacted.map_or(1, |(info, _)| info.last_position + 1);
    let infos = inspect_from(&StdFs, dir, first_position)?;
    // Where a strict open's log ends: the last intact record before the
    // first damage.
    let mut log_end =
        (first_position - 1, infos.last().map(|i| i.file.clone()).unwrap_or(dir.to_path_buf()), 0);
    for info in &infos {
        if let Some(p) = info.last_position {
            log_end.0 = p;
        }
        if let Some(d) = &info.damage {
            log_end = (log_end.0, info.file.clone(), d.offset);
            break;
        }
    }
    let below_durable = durable.filter(|(through, _)| log_end.0 < *through);
    for info in &infos {
        let cut_below_durable = below_durable.is_some() && info.file == log_end.1 && info.damage.is_some();
        writeln!(out, "{}", segment_line(info, cut_below_durable)).map_err(CliError::Output)?;
    }
    if let Some((through, source)) = &below_durable {
        writeln!(
            out,
            "truncation below durable positions: positions {}..={through} are covered by {} but the log ends at {}",
            log_end.0 + 1,
            source.display(),
            log_end.0,
        )
        .map_err(CliError::Output)?;
    }
    let corrupt: Vec<(&SegmentInfo, &Damage)> = infos
        .iter()
        .filter_map(|i| Some((i, i.damage.as_ref()?)))
        .filter(|(_, d)| !d.is_torn_tail())
        .collect();
    // A cut that would pass for a torn tail but drops durable positions.
    let below = usize::from(
        below_durable.is_some()
            && infos
                .iter()
                .any(|i| i.file == log_end.1 && i.damage.as_ref().is_some_and(Damage::is_torn_tail)),
    );
    let torn = infos.iter().filter(|i| i.damage.is_some()).count() - corrupt.len() - below;
    writeln!(
        out,
        "total segments={} capacity={} records={} data_bytes={} torn_tails={torn} corrupt={}",
        infos.len(),
        infos.iter().map(|i| i.capacity).sum::<u64>(),
        infos.iter().map(|i| i.records).sum::<u64>(),
        infos.iter().map(|i| i.data_bytes).sum::<u64>(),
        corrupt.len() + below,
    )
    .map_err(CliError::Output)?;
    out.flush().map_err(CliError::Output)?;
    if let Some((through, source)) = below_durable {
        let (end, file, offset) = log_end;
        return Err(CliError::Damaged {
            damaged: corrupt.len().max(1),
            file,
            offset,
            detail: format!(
                "truncation below durable positions: positions {}..={through} are covered by {} but the log \
                 ends at {end}",
                end + 1,
                source.display()
            ),
        });
    }
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
/// STATUS is `ok` or the first damage, its offset and what it means
/// (`below_durable`: the log ends there, before durable positions).
fn segment_line(info: &SegmentInfo, below_durable: bool) -> String {
    let position = |p: Option<u64>| p.map_or("-".to_string(), |p| p.to_string());
    let status = match &info.damage {
        None => "ok".to_string(),
        Some(d) => {
            let verdict = match (d.is_torn_tail(), d.intact_follows) {
                _ if below_durable => "truncation below durable positions",
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
