//! `logkv migrate`: a data directory of on-disk format 2 written again in
//! this logkv's format, into a new directory.
//!
//! Nothing is converted byte by byte. A node's directory holds the signed
//! entries it applied, verbatim; they are applied again, in order, at the
//! positions and log times they had, and apply is deterministic, so the
//! new directory holds the same values, versions, results and access
//! control, with the record formats (value checksums, results beside
//! their entry, the digest per record) of today. A plain store's batches
//! are written again in order. The old directory is only read.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use logkv_fs::StdFs;
use logkv_runtime::apply::Watched;
use logkv_runtime::node::{Node, NodeOptions};
use logkv_runtime::quota::Quotas;
use logkv_runtime::types::version_position;
use logkv_store::legacy::{LegacyContent, LegacyLog};
use logkv_store::{Op, Store, WriteBatch};

use crate::cli::GlobalArgs;
use crate::exit::{CliError, Outcome};
use crate::maintenance_cmds::MaintenanceError;

/// Files a node's directory holds besides its log, copied as they are:
/// the node's signing key and the shared-log marker.
const NODE_FILES: [&str; 2] = ["node.key", "shared-log.toml"];

/// `logkv migrate` flags.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The new data directory (absent or empty); `--data-dir` is the old one.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// What the old directory held.
enum Target {
    Node(Box<Node>),
    Store(Box<Store>),
}

/// `logkv migrate --data-dir OLD --out NEW`.
pub fn migrate(global: &GlobalArgs, args: MigrateArgs) -> Result<Outcome, CliError> {
    crate::backup_cmds::refuse_non_empty(&args.out, "migrate")?;
    let created = !args.out.exists();
    let migrated = write_again(global, &args.out);
    if migrated.is_err() && created {
        // Nothing in it is anyone's but this command's.
        let _ = std::fs::remove_dir_all(&args.out);
    }
    let (records, position, kind) = migrated?;
    writeln!(
        io::stdout().lock(),
        "migrated records={records} position={position} kind={kind} out={}",
        args.out.display()
    )
    .map_err(CliError::Output)?;
    Ok(Outcome::Ok)
}

/// Writes every record of the old directory again into `out`; how many,
/// the last position and what kind of directory it was.
fn write_again(global: &GlobalArgs, out: &Path) -> Result<(u64, u64, &'static str), CliError> {
    let fs = StdFs;
    let mut target: Option<Target> = None;
    let (mut records, mut position) = (0, 0);
    for record in LegacyLog::open(&fs, &global.store.data_dir)? {
        let record = record?;
        match (&record.content, &target) {
            (LegacyContent::Applied { .. }, None) => {
                std::fs::create_dir_all(out).map_err(|e| MaintenanceError::Io(out.to_path_buf(), e))?;
                copy_node_files(&global.store.data_dir, out)?;
                // Format 2 had no version-check horizon and no quotas:
                // judging its entries again without them gives exactly the
                // outcomes they had.
                let options = NodeOptions {
                    store: global.store.store_options(),
                    watched: Watched::All,
                    version_check_horizon: u64::MAX,
                    quotas: Quotas::UNLIMITED,
                };
                target = Some(Target::Node(Box::new(Node::open(out, options)?)));
            }
            (LegacyContent::Batch(_), None) => {
                target = Some(Target::Store(Box::new(Store::open(out, global.store.store_options())?)))
            }
            _ => {}
        }
        match (record.content, target.as_ref().expect("set above")) {
            (LegacyContent::Applied { version, entry }, Target::Node(node)) => {
                position = version_position(version);
                node.apply_replicated(position, record.time_ms, &entry, None)?;
            }
            (LegacyContent::Batch(ops), Target::Store(store)) => {
                let mut batch = WriteBatch::new();
                for op in ops {
                    match op {
                        Op::Put { key, value } => batch.put(key, value),
                        Op::Delete { key } => batch.delete(key),
                    };
                }
                position = store.write(&batch)?;
                if position != record.position {
                    return Err(MaintenanceError::Migration(format!(
                        "batch at position {} was written again at position {position}",
                        record.position
                    ))
                    .into());
                }
            }
            _ => {
                return Err(MaintenanceError::Migration(format!(
                    "record at position {} mixes a node's entries with a plain store's batches",
                    record.position
                ))
                .into())
            }
        }
        records += 1;
    }
    let kind = match target {
        Some(Target::Node(node)) => {
            node.close()?;
            "node"
        }
        Some(Target::Store(store)) => {
            store.close()?;
            "store"
        }
        None => return Err(MaintenanceError::Migration("the old directory holds no record".into()).into()),
    };
    Ok((records, position, kind))
}

/// Copies the node's files other than its log; the signing key's copy is
/// readable by its owner only, as a node requires, whatever the original's
/// mode (a directory restored from elsewhere may have lost it).
fn copy_node_files(from: &Path, to: &Path) -> Result<(), CliError> {
    use std::os::unix::fs::PermissionsExt;
    for name in NODE_FILES {
        let (source, target) = (from.join(name), to.join(name));
        if source.exists() {
            std::fs::copy(&source, &target).map_err(|e| MaintenanceError::Io(source.clone(), e))?;
        }
    }
    let key = to.join(NODE_FILES[0]);
    if key.exists() {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| MaintenanceError::Io(key.clone(), e))?;
    }
    Ok(())
}
