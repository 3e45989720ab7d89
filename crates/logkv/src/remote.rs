//! The CLI's connection to a running server — `--server`, `--remote` and
//! `log trim --nodes`: a [`logkv_client::Client`] and a current-thread
//! runtime that runs its calls to completion one at a time, in the order
//! a command makes them. `--server-ca` adds the CA an `https://` server's
//! certificate is signed by.

use std::future::Future;
use std::path::Path;

use logkv_client::Client;

use crate::exit::CliError;

/// A client of one server, with the runtime its calls run on.
pub struct Remote {
    pub client: Client,
    runtime: tokio::runtime::Runtime,
}

impl Remote {
    /// A client of the server at `url`, trusting `ca_cert` too and
    /// presenting `token` (a user's or the admin token, if any); nothing is
    /// sent yet.
    pub fn connect(url: &str, ca_cert: Option<&Path>, token: Option<&str>) -> Result<Remote, CliError> {
        let mut builder = Client::builder(url);
        if let Some(path) = ca_cert {
            builder = builder.ca_cert(path);
        }
        if let Some(token) = token {
            builder = builder.token(token);
        }
        let client = builder.build()?;
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(CliError::Runtime)?;
        Ok(Remote { client, runtime })
    }

    /// Runs `call` (one of the client's calls, or several in order) to
    /// completion.
    pub fn block_on<F: Future>(&self, call: F) -> F::Output {
        self.runtime.block_on(call)
    }
}
