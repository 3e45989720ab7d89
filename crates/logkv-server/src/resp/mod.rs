//! The Redis protocol (RESP2 and RESP3) as a pure byte layer, no networking:
//! [`frame`] cuts requests out of a byte buffer, [`command`] turns a request's
//! arguments into a typed [`command::Command`], and [`reply`] writes answers
//! byte for byte as Redis does.

pub mod collection;
pub mod command;
mod command_error;
pub mod frame;
mod inline;
pub(crate) mod number;
pub mod reply;
pub mod string_args;

pub use command_error::CommandError;
