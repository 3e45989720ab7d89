//! Errors in a request's command and arguments, with Redis's exact texts.

/// Why a request is not a valid command. `Display` is the error text sent
/// to the client (after `-`), the same as Redis sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// A request with no arguments at all (the server skips these).
    #[error("ERR empty command")]
    Empty,
    /// The command name is not one logkv knows.
    #[error("ERR unknown command '{name}', with args beginning with: {args_preview}")]
    UnknownCommand {
        /// The name as sent, at most 128 bytes.
        name: String,
        /// The first arguments quoted, at most about 128 bytes.
        args_preview: String,
    },
    /// A container command (`CLIENT`, `CONFIG`, `COMMAND`) with an unknown
    /// subcommand.
    #[error("ERR unknown subcommand '{subcommand}'. Try {command} HELP.")]
    UnknownSubcommand { command: &'static str, subcommand: String },
    /// A subcommand given more arguments than any of its forms takes.
    #[error("ERR unknown subcommand or wrong number of arguments for '{subcommand}'. Try {command} HELP.")]
    SubcommandArguments { command: &'static str, subcommand: &'static str },
    /// A `CLIENT PAUSE` timeout that is not an integer.
    #[error("ERR timeout is not an integer or out of range")]
    PauseTimeoutNotInteger,
    /// A negative `CLIENT PAUSE` timeout.
    #[error("ERR timeout is negative")]
    PauseTimeoutNegative,
    /// A `CLIENT PAUSE` mode other than `WRITE` and `ALL`.
    #[error("ERR CLIENT PAUSE mode must be WRITE or ALL")]
    PauseMode,
    /// A `CLIENT UNBLOCK` reason other than `TIMEOUT` and `ERROR`.
    #[error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")]
    UnblockReason,
    /// Too few or too many arguments; `command` is Redis's lowercase full
    /// name, such as `get` or `client|setname`.
    #[error("ERR wrong number of arguments for '{command}' command")]
    WrongArity { command: &'static str },
    /// An unknown or misplaced option.
    #[error("ERR syntax error")]
    Syntax,
    /// An argument that must be an integer is not one.
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// An argument that must be a float (an `INCRBYFLOAT` or `ZADD`
    /// increment, a score) is not one.
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR value is out of range, must be positive")]
    NotPositive,
    #[error("ERR numkeys should be greater than 0")]
    NumKeysNotPositive,
    #[error("ERR Number of keys can't be greater than number of args")]
    NumKeysTooMany,
    #[error("ERR LIMIT can't be negative")]
    LimitNegative,
    #[error("ERR min or max is not a float")]
    MinMaxNotFloat,
    #[error("ERR at least 1 input key is needed for '{command}' command")]
    NoInputKeys { command: &'static str },
    #[error("ERR weight value is not a float")]
    WeightNotFloat,
    #[error("ERR min or max not valid string range item")]
    LexRange,
    #[error("ERR syntax error, WITHSCORES not supported in combination with BYLEX")]
    WithScoresByLex,
    #[error("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list")]
    LposRank,
    #[error("ERR {what} can't be negative")]
    LposNegative { what: &'static str },
    #[error("ERR XX and NX options at the same time are not compatible")]
    ZAddNxXx,
    #[error("ERR GT, LT, and/or NX options at the same time are not compatible")]
    ZAddGtLtNx,
    #[error("ERR INCR option supports a single increment-element pair")]
    ZAddIncrPairs,
    #[error("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")]
    LimitWithoutBy,
    /// `DECRBY` by `i64::MIN`, whose negation does not fit.
    #[error("ERR decrement would overflow")]
    DecrementOverflow,
    /// A `SCAN` cursor that is not an unsigned integer.
    #[error("ERR invalid cursor")]
    InvalidCursor,
    /// A `HELLO` protocol version that is not an integer.
    #[error("ERR Protocol version is not an integer or out of range")]
    ProtocolVersionNotInteger,
    /// A `HELLO` protocol version other than 2 or 3.
    #[error("NOPROTO unsupported protocol version")]
    UnsupportedProtocol,
    /// An unknown `HELLO` option, or one missing its arguments.
    #[error("ERR Syntax error in HELLO option '{option}'")]
    HelloOption { option: String },
    /// A client name with spaces, line breaks or non-printable bytes.
    #[error("ERR Client names cannot contain spaces, newlines or special characters.")]
    InvalidClientName,
    /// A `CLIENT KILL ID` that is not a positive integer.
    #[error("ERR client-id should be greater than 0")]
    ClientIdNotPositive,
    /// A `CLIENT LIST ID` that is not a positive integer.
    #[error("ERR Invalid client ID")]
    InvalidClientId,
    /// A `TYPE` filter of `CLIENT LIST` or `CLIENT KILL` Redis does not know.
    #[error("ERR Unknown client type '{name}'")]
    UnknownClientType { name: String },
    /// A `CLIENT SETINFO` attribute other than `LIB-NAME` and `LIB-VER`.
    #[error("ERR Unrecognized option '{option}'")]
    UnknownClientAttribute { option: String },
    /// A `CLIENT SETINFO` value with spaces, line breaks or non-printable bytes.
    #[error("ERR {attribute} cannot contain spaces, newlines or special characters.")]
    InvalidClientAttribute { attribute: String },
    /// An expiry of zero, a negative one where only positive ones are
    /// allowed, or one that overflows.
    #[error("ERR invalid expire time in '{command}' command")]
    InvalidExpireTime { command: &'static str },
    /// An `EXPIRE` option other than `NX`, `XX`, `GT`, `LT`.
    #[error("ERR Unsupported option {option}")]
    UnsupportedOption { option: String },
    /// `EXPIRE … NX` with another option.
    #[error("ERR NX and XX, GT or LT options at the same time are not compatible")]
    ExpireNxWithOthers,
    /// `EXPIRE … GT LT`.
    #[error("ERR GT and LT options at the same time are not compatible")]
    ExpireGtWithLt,
    /// A bit offset that is not an integer, negative, or past Redis's
    /// largest string (512 MiB).
    #[error("ERR bit offset is not an integer or out of range")]
    BitOffset,
    /// A `SETBIT` bit other than 0 and 1.
    #[error("ERR bit is not an integer or out of range")]
    BitValue,
    /// A `BITPOS` bit other than 0 and 1.
    #[error("ERR The bit argument must be 1 or 0.")]
    BitArgument,
    /// `BITOP NOT` with more than one source.
    #[error("ERR BITOP NOT must be called with a single source key.")]
    BitOpNot,
    /// A `BITFIELD` type other than `i1..i64`, `u1..u63`.
    #[error(
        "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
    )]
    BitFieldType,
    /// A `BITFIELD ... OVERFLOW` other than `WRAP`, `SAT`, `FAIL`.
    #[error("ERR Invalid OVERFLOW type specified")]
    OverflowType,
    /// `BITFIELD_RO` with a `SET` or `INCRBY`.
    #[error("ERR BITFIELD_RO only supports the GET subcommand")]
    BitFieldReadOnly,
    /// A negative `RESTORE ... IDLETIME`.
    #[error("ERR Invalid IDLETIME value, must be >= 0")]
    InvalidIdleTime,
    /// A `RESTORE ... FREQ` outside 0..=255.
    #[error("ERR Invalid FREQ value, must be >= 0 and <= 255")]
    InvalidFreq,
    /// A negative `SETRANGE` offset.
    #[error("ERR offset is out of range")]
    OffsetOutOfRange,
    /// `COPY` of a key onto itself.
    #[error("ERR source and destination objects are the same")]
    SameObject,
}

/// Redis's text for an unknown command: the name cut at 128 bytes, then
/// each argument in single quotes followed by a space, while the list is
/// shorter than 128 bytes, cutting the last argument to fit. Line breaks
/// become spaces.
pub(crate) fn unknown_command(args: &[bytes::Bytes]) -> CommandError {
    const MAX_BYTES: usize = 128;
    let name = args.first().map_or(&[][..], |name| &name[..]);
    let name = &name[..name.len().min(MAX_BYTES)];
    let mut preview = Vec::new();
    for arg in args.iter().skip(1) {
        if preview.len() >= MAX_BYTES {
            break;
        }
        let room = MAX_BYTES - preview.len();
        preview.push(b'\'');
        preview.extend_from_slice(&arg[..arg.len().min(room)]);
        preview.extend_from_slice(b"' ");
    }
    CommandError::UnknownCommand { name: printable(name), args_preview: printable(&preview) }
}

/// Text for an error message: lossy UTF-8 with CR and LF as spaces.
pub(crate) fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace(['\r', '\n'], " ")
}
