//! `logkv serve`: runs the server on the loaded configuration, or prints
//! that configuration with `--print-config`.

use clap::Args;
use logkv_server::config::Loaded;
use logkv_server::ServeConfig;

use crate::exit::{CliError, Outcome};

/// `logkv serve`'s flags: every server setting ([`ServeConfig`]), and
/// what to do with them.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The server's settings; `main` layers them over the file and the
    /// environment.
    #[command(flatten)]
    pub settings: ServeConfig,
    /// Print the effective configuration, each value with where it came
    /// from (default, config file, environment variable or flag), and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// Runs `logkv serve` on `loaded`.
pub fn run(loaded: Loaded, args: &ServeArgs) -> Result<Outcome, CliError> {
    if args.print_config {
        print!("{}", loaded.describe());
        return Ok(Outcome::Ok);
    }
    let config = loaded.config;
    logkv_server::logging::init(config.log_format, &config.log_filter).map_err(CliError::BadInput)?;
    logkv_server::run(config).map_err(CliError::Serve)?;
    Ok(Outcome::Ok)
}
