//! The administrative methods (`admin_*`): they need the server's admin
//! token ([`crate::ClientBuilder::token`]). The jobs — checkpoint,
//! compaction, export — answer when done, which may take minutes, so they
//! wait without the call timeout (connecting is still bounded).

use std::path::{Path, PathBuf};

use logkv_store::{CheckpointReport, CompactionReport, ExportReport};
use serde_json::{json, Value};

use crate::answer::{seconds_field, str_field, u64_field};
use crate::error::{Error, Result};
use crate::Client;

impl Client {
    /// The node's `admin_nodeInfo` object, as docs/jsonrpc.md describes
    /// it (address, durability, applied position and version, shared log,
    /// checkpoint, ...).
    pub async fn node_info(&self) -> Result<Value> {
        self.call("admin_nodeInfo", json!([])).await
    }

    /// Syncs the node's log now (`admin_sync`); the version then visible.
    pub async fn sync(&self) -> Result<u64> {
        let method = "admin_sync";
        u64_field(method, &self.call(method, json!([])).await?, "appliedVersion")
    }

    /// Has the node write a checkpoint now (`admin_checkpoint`).
    pub async fn checkpoint(&self) -> Result<CheckpointReport> {
        let method = "admin_checkpoint";
        let answer = self.call_within(method, json!([]), None).await?;
        Ok(CheckpointReport {
            path: path_field(method, &answer)?,
            position: u64_field(method, &answer, "position")?,
            version: u64_field(method, &answer, "version")?,
            keys: u64_field(method, &answer, "keys")?,
            bytes: u64_field(method, &answer, "bytes")?,
            elapsed: seconds_field(method, &answer, "elapsedSeconds")?,
        })
    }

    /// Has the node compact its log now under its retention settings
    /// (`admin_compact`).
    pub async fn compact(&self) -> Result<CompactionReport> {
        let method = "admin_compact";
        let answer = self.call_within(method, json!([]), None).await?;
        let field = |name| u64_field(method, &answer, name);
        Ok(CompactionReport {
            compacted_through: field("compactedThrough")?,
            input_bytes: field("inputBytes")?,
            output_bytes: field("outputBytes")?,
            keys: field("keys")?,
            versions_kept: field("versionsKept")?,
            histories_cut: field("historiesCut")?,
            keys_dropped: field("keysDropped")?,
            horizon: field("horizon")?,
            elapsed: seconds_field(method, &answer, "elapsedSeconds")?,
        })
    }

    /// Has the node write an export to `path`, an absolute path on the
    /// node's machine that does not exist yet (`admin_export`).
    pub async fn export(&self, path: &Path) -> Result<ExportReport> {
        let method = "admin_export";
        let answer = self.call_within(method, json!([path.display().to_string()]), None).await?;
        Ok(ExportReport {
            path: path_field(method, &answer)?,
            position: u64_field(method, &answer, "position")?,
            version: u64_field(method, &answer, "version")?,
            keys: u64_field(method, &answer, "keys")?,
            bytes: u64_field(method, &answer, "bytes")?,
        })
    }
}

fn path_field(method: &str, answer: &Value) -> Result<PathBuf, Error> {
    str_field(method, answer, "path").map(PathBuf::from)
}
