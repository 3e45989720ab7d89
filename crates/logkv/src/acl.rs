//! `logkv acl …`: one access-control op as one signed native transaction,
//! applied to the data directory's node or submitted to a server, exactly
//! like a write. The signer must hold the right the op asks for; the node
//! decides that when it applies the transaction, and a refusal is its
//! result string (e.g. `AccessControlPermissionDenied: …`).

use logkv_runtime::codec::native;

use crate::cli::{AclCommand, GlobalArgs};
use crate::commands::{self, Target};
use crate::exit::{CliError, Outcome};

/// Runs `logkv acl …`. The signing key must be named (`--key` or
/// `LOGKV_KEY`): who signs an access-control change decides what it may do,
/// so it is never a default.
pub fn run(global: &GlobalArgs, command: AclCommand) -> Result<Outcome, CliError> {
    let Some(key) = global.key_file.as_deref() else {
        return Err(CliError::BadInput(
            "acl needs the signing key: --key FILE (or LOGKV_KEY); the node's own key is DATA_DIR/node.key"
                .into(),
        ));
    };
    let body = native::Body {
        version: u64::MAX,
        check_reads_only: false,
        reads: Vec::new(),
        writes: Vec::new(),
        controls: vec![command.op.control(command.stream)],
    };
    body.check().map_err(|e| CliError::BadInput(format!("{e}: {}", parse_detail(&e))))?;
    let target = Target::open(global)?;
    let signer = target.signer(Some(key))?;
    let submitted = target.write(&signer, vec![body])?;
    target.close()?;
    commands::report(&submitted)
}

/// What exactly is wrong with a body that fails its check (an empty or
/// oversized key).
fn parse_detail(e: &logkv_runtime::codec::ParseError) -> &str {
    match e {
        logkv_runtime::codec::ParseError::Invalid { detail } => detail,
        logkv_runtime::codec::ParseError::ListTooLong => "too many items",
    }
}
