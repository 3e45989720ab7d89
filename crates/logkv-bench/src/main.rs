//! logkv-bench: the storage engine's figures, each printed next to a
//! baseline measured in the same run, on fixed data sets (1M keys of 16 B
//! with 100 B values; 2,000 values of 1 MiB).
//!
//! ```text
//! cargo run --release -p logkv-bench                  # full run, a few minutes
//! cargo run --release -p logkv-bench -- --quick       # smoke run, seconds
//! cargo run --release -p logkv-bench -- --only reads  # one section (and what it needs)
//! ```

mod alloc;
mod ctx;
mod data;
mod report;
mod sections;
mod serve;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Parser, ValueEnum};

use crate::ctx::{fresh, Ctx, Sizes};
use crate::report::{dur, progress, Table};
use crate::sections::{
    always, footprint, fsync, large, maintenance, memory, nats, periodic, reads, replay, runtime,
};
use logkv_eval::machine;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// The sections, in the order a full run takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Section {
    /// 1. fdatasync latency on a segment-like file, and the group-commit bound.
    Fsync,
    /// 2. `always` mode puts with 1, 4 and 32 writers against the bound.
    Always,
    /// 3. `periodic` mode: one writer loads the 100 B data set.
    Periodic,
    /// 4. random gets on the loaded store.
    Reads,
    /// 5. full recovery (`Store::open`) of both data sets.
    Replay,
    /// 6. index memory per key, from the allocator.
    Memory,
    /// 7. write throughput of 1 MiB values (`periodic`).
    LargeWrite,
    /// 8. the runtime node: trusted and verified replay, batched local writes.
    Runtime,
    /// 9. NATS JetStream shared log: writes and catch-up against raw JetStream.
    Nats,
    /// 10. checkpoints and compaction: restart time, space, writes meanwhile.
    Maintenance,
    /// 11. memory and log per key and per write, and checksummed reads, through `logkv serve`.
    Footprint,
}

const ALL: [Section; 11] = [
    Section::Fsync,
    Section::Always,
    Section::Periodic,
    Section::Reads,
    Section::Replay,
    Section::Memory,
    Section::LargeWrite,
    Section::Runtime,
    Section::Nats,
    Section::Maintenance,
    Section::Footprint,
];

impl Section {
    fn title(self) -> &'static str {
        match self {
            Section::Fsync => "1. fsync bound",
            Section::Always => "2. always mode: concurrent puts",
            Section::Periodic => "3. periodic mode: one writer, 100 B values",
            Section::Reads => "4. random reads",
            Section::Replay => "5. replay (full recovery)",
            Section::Memory => "6. index memory",
            Section::LargeWrite => "7. 1 MiB values: write throughput",
            Section::Runtime => "8. runtime: node replay, verification, batched local writes",
            Section::Nats => "9. NATS JetStream shared log: writes and catch-up",
            Section::Maintenance => "10. maintenance: checkpoints, compaction, retention",
            Section::Footprint => "11. footprint per key and per write, through logkv serve",
        }
    }

    /// Sections whose results this one needs.
    fn needs(self) -> &'static [Section] {
        match self {
            Section::Reads | Section::Replay | Section::Memory => &[Section::Periodic],
            _ => &[],
        }
    }

    fn run(self, ctx: &mut Ctx) -> Result<Table, Box<dyn Error>> {
        match self {
            Section::Fsync => Ok(fsync::run(ctx)?),
            Section::Always => always::run(ctx).map_err(|e| e as Box<dyn Error>),
            Section::Periodic => periodic::run(ctx),
            Section::Reads => reads::run(ctx),
            Section::Replay => replay::run(ctx),
            Section::Memory => memory::run(ctx),
            Section::LargeWrite => large::run(ctx),
            Section::Runtime => runtime::run(ctx),
            Section::Nats => nats::run(ctx),
            Section::Maintenance => maintenance::run(ctx),
            Section::Footprint => footprint::run(ctx),
        }
    }
}

/// Benchmarks of the logkv storage engine, each figure next to a baseline
/// measured in the same run.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Directory for the data (a fresh subdirectory is made in it and removed
    /// at the end). Default: the system temp dir, or ./bench-data if that is
    /// in memory (tmpfs).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keys of the 100 B-value data set (default 1,000,000; 20,000 with --quick).
    #[arg(long)]
    keys: Option<usize>,
    /// Values of the 1 MiB data set (default 2,000; 50 with --quick).
    #[arg(long)]
    large_values: Option<usize>,
    /// Small data sets and short runs, for a smoke test in a few seconds.
    #[arg(long)]
    quick: bool,
    /// Run one section (plus the sections it needs).
    #[arg(long, value_enum)]
    only: Option<Section>,
    /// Timed fdatasync calls of the fsync section (default 300; 40 with --quick).
    #[arg(long)]
    syncs: Option<usize>,
    /// Keys of the maintenance section's restart store (default 10,000,000;
    /// 50,000 with --quick).
    #[arg(long)]
    restart_keys: Option<usize>,
    /// Log sizes the restart part measures, in records per key (default 3:
    /// the keys written once, then overwritten once and twice).
    #[arg(long)]
    restart_passes: Option<usize>,
    /// Keys of the maintenance section's space and write-during-upkeep stores
    /// (default 2,000,000; 50,000 with --quick).
    #[arg(long)]
    upkeep_keys: Option<usize>,
    /// Keep the data directory instead of removing it.
    #[arg(long)]
    keep: bool,
}

/// Removes the run's data directory when dropped (unless asked to keep it).
struct Cleanup {
    root: PathBuf,
    keep: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.keep {
            progress(format!("data kept in {}", self.root.display()));
        } else if let Err(e) = fresh(&self.root) {
            progress(format!("could not remove {}: {e}", self.root.display()));
        }
    }
}

/// The directory the run's subdirectory goes in.
fn base_dir(cli_dir: Option<PathBuf>) -> std::io::Result<PathBuf> {
    let base = match cli_dir {
        Some(d) => d,
        None => {
            let tmp = std::env::temp_dir();
            if machine::in_memory(&tmp) {
                progress(format!("{} is in memory; using ./bench-data so data hits the disk", tmp.display()));
                PathBuf::from("bench-data")
            } else {
                tmp
            }
        }
    };
    std::fs::create_dir_all(&base)?;
    if machine::in_memory(&base) {
        progress(format!(
            "WARNING: {} is in memory ({}): sync figures mean nothing",
            base.display(),
            machine::fs_type(&base)
        ));
    }
    Ok(base)
}

fn plan(only: Option<Section>) -> Vec<Section> {
    match only {
        None => ALL.to_vec(),
        Some(s) => s.needs().iter().copied().chain([s]).collect(),
    }
}

fn print_header(root: &Path, sizes: &Sizes, quick: bool) {
    println!("# logkv-bench{}\n", if quick { " (quick)" } else { "" });
    for (k, v) in machine::describe(root) {
        println!("  {k:<22} {v}");
    }
    println!(
        "  {:<22} {} keys x (16 B key + 100 B value); {} values of 1 MiB",
        "data sets",
        report::thousands(sizes.keys as f64),
        report::thousands(sizes.large_values as f64)
    );
}

fn main() -> Result<(), Box<dyn Error>> {
    let cli = Cli::parse();
    let mut sizes = if cli.quick { Sizes::quick() } else { Sizes::full() };
    sizes.keys = cli.keys.unwrap_or(sizes.keys).max(1);
    sizes.large_values = cli.large_values.unwrap_or(sizes.large_values).max(1);
    sizes.syncs = cli.syncs.unwrap_or(sizes.syncs).max(1);
    sizes.restart_keys = cli.restart_keys.unwrap_or(sizes.restart_keys).max(1);
    sizes.restart_passes = cli.restart_passes.unwrap_or(sizes.restart_passes).max(1);
    sizes.upkeep_keys = cli.upkeep_keys.unwrap_or(sizes.upkeep_keys).max(1);
    let base = base_dir(cli.dir)?;
    let root = base.join(format!("logkv-bench-{}", std::process::id()));
    fresh(&root)?;
    std::fs::create_dir_all(&root)?;
    let root = root.canonicalize()?;
    let _cleanup = Cleanup { root: root.clone(), keep: cli.keep };
    print_header(&root, &sizes, cli.quick);

    let started = Instant::now();
    let keys = data::keys(sizes.keys);
    let mut ctx = Ctx { root, sizes, keys, store: None, map: None, large: None, summary: Vec::new() };
    let steps = plan(cli.only);
    for (i, section) in steps.iter().enumerate() {
        let needed = cli.only.is_some_and(|o| o != *section);
        let title = section.title();
        progress(format!(
            "[{}/{}] {title}{} ...",
            i + 1,
            steps.len(),
            if needed { " (needed by the section asked for)" } else { "" }
        ));
        let began = Instant::now();
        let table = section.run(&mut ctx)?;
        table.print(title, &mut ctx.summary);
        progress(format!("[{}/{}] {title}: done in {}", i + 1, steps.len(), dur(began.elapsed())));
    }
    ctx.close_loaded()?;
    report::print_summary(&ctx.summary);
    println!("\n  total time {}", dur(started.elapsed()));
    Ok(())
}
