//! Hash and set commands as typed commands, with Redis's arity and option
//! checks and error texts. What they do is in `session::collections`.

use logkv_runtime::collection::Kind;

use super::command::Bytes;
use super::command_error::CommandError;
use super::number::{parse_i64, parse_u64};

/// How `ZUNIONSTORE`/`ZINTERSTORE` combine a member's scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Sum,
    Min,
    Max,
}

/// How `SINTER`, `SUNION` and `SDIFF` (and their `STORE` forms) combine sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetAlgebra {
    Inter,
    Union,
    Diff,
}

/// One end of a score range: `1.5`, `(1.5` (exclusive), `-inf`, `+inf`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreBound {
    pub score: f64,
    pub exclusive: bool,
}

/// A bound's score is never NaN (`parse_score` refuses it), so equality is total.
impl Eq for ScoreBound {}

/// What a `ZRANGE` selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZRangeBy {
    /// Ranks (negative: from the end), both inclusive.
    Rank(i64, i64),
    /// Scores between two bounds, lowest first (`REV` reads them the other way).
    Score(ScoreBound, ScoreBound),
    /// Members between two bounds, in member order (Redis's lex ranges,
    /// meant for sets whose scores are all equal).
    Lex(LexBound, LexBound),
}

/// One end of a lex range: `-`, `+`, `[member` or `(member`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBound {
    Min,
    Max,
    Inclusive(Bytes),
    Exclusive(Bytes),
}

/// A `ZRANGE`-family query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZRangeQuery {
    pub key: Bytes,
    pub by: ZRangeBy,
    pub rev: bool,
    /// `LIMIT offset count` (count < 0: all).
    pub limit: Option<(i64, i64)>,
    pub with_scores: bool,
}

/// A hash or set command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CollCommand {
    /// `HSET` (`legacy`: `HMSET`, which answers `+OK`): field, value, field, value…
    HSet {
        key: Bytes,
        pairs: Vec<Bytes>,
        legacy: bool,
    },
    HSetNx {
        key: Bytes,
        field: Bytes,
        value: Bytes,
    },
    HDel {
        key: Bytes,
        fields: Vec<Bytes>,
    },
    HIncrBy {
        key: Bytes,
        field: Bytes,
        delta: i64,
    },
    /// `HINCRBYFLOAT`: the delta as given, checked to be a finite float.
    HIncrByFloat {
        key: Bytes,
        field: Bytes,
        delta: Bytes,
    },
    HGet {
        key: Bytes,
        field: Bytes,
    },
    HMGet {
        key: Bytes,
        fields: Vec<Bytes>,
    },
    HGetAll {
        key: Bytes,
    },
    HKeys {
        key: Bytes,
    },
    HVals {
        key: Bytes,
    },
    HLen {
        key: Bytes,
    },
    HExists {
        key: Bytes,
        field: Bytes,
    },
    HStrLen {
        key: Bytes,
        field: Bytes,
    },
    /// `HRANDFIELD key [count [WITHVALUES]]`, or (`zset`) `ZRANDMEMBER key
    /// [count [WITHSCORES]]`.
    HRandField {
        zset: bool,
        key: Bytes,
        count: Option<i64>,
        with_values: bool,
    },
    SAdd {
        key: Bytes,
        members: Vec<Bytes>,
    },
    SMove {
        source: Bytes,
        destination: Bytes,
        member: Bytes,
    },
    SRem {
        key: Bytes,
        members: Vec<Bytes>,
    },
    /// `SPOP key [count]`.
    SPop {
        key: Bytes,
        count: Option<u64>,
    },
    SMembers {
        key: Bytes,
    },
    SIsMember {
        key: Bytes,
        member: Bytes,
    },
    SMIsMember {
        key: Bytes,
        members: Vec<Bytes>,
    },
    SCard {
        key: Bytes,
    },
    /// `SRANDMEMBER key [count]`.
    SRandMember {
        key: Bytes,
        count: Option<i64>,
    },
    /// `SINTER`, `SUNION`, `SDIFF`.
    SAlgebra {
        op: SetAlgebra,
        keys: Vec<Bytes>,
    },
    /// `SINTERSTORE`, `SUNIONSTORE`, `SDIFFSTORE`.
    SAlgebraStore {
        op: SetAlgebra,
        destination: Bytes,
        keys: Vec<Bytes>,
    },
    /// `ZUNIONSTORE`/`ZINTERSTORE dest numkeys key... [WEIGHTS w...]
    /// [AGGREGATE SUM|MIN|MAX]` (weights checked to be floats, one per key).
    ZStore {
        union: bool,
        destination: Bytes,
        keys: Vec<Bytes>,
        weights: Vec<Bytes>,
        aggregate: Aggregate,
    },
    /// `SINTERCARD numkeys key... [LIMIT n]` (0: no limit).
    SInterCard {
        keys: Vec<Bytes>,
        limit: u64,
    },
    /// `ZADD` (options as `collection::zadd` bits; score, member pairs) and
    /// `ZINCRBY` (`INCR`, one pair).
    ZAdd {
        key: Bytes,
        options: u8,
        pairs: Vec<Bytes>,
        incrby: bool,
    },
    ZRem {
        key: Bytes,
        members: Vec<Bytes>,
    },
    ZScore {
        key: Bytes,
        member: Bytes,
    },
    ZMScore {
        key: Bytes,
        members: Vec<Bytes>,
    },
    ZCard {
        key: Bytes,
    },
    ZCount {
        key: Bytes,
        min: ScoreBound,
        max: ScoreBound,
    },
    ZLexCount {
        key: Bytes,
        min: LexBound,
        max: LexBound,
    },
    /// `ZRANGE`, `ZRANGEBYSCORE`, `ZREVRANGEBYSCORE`, `ZREVRANGE`.
    ZRange {
        range: Box<ZRangeQuery>,
        name: &'static str,
    },
    ZRank {
        key: Bytes,
        member: Bytes,
        rev: bool,
    },
    /// `ZREMRANGEBYSCORE` (a score range), `ZREMRANGEBYRANK` (a rank range).
    ZRemRange {
        key: Bytes,
        by: ZRangeBy,
    },
    /// `ZPOPMIN`, `ZPOPMAX`.
    ZPop {
        key: Bytes,
        max: bool,
        count: Option<u64>,
    },
    /// `LPUSH`, `RPUSH`, `LPUSHX`, `RPUSHX`.
    LPush {
        key: Bytes,
        left: bool,
        only_existing: bool,
        elements: Vec<Bytes>,
    },
    /// `LPOP`, `RPOP`.
    LPop {
        key: Bytes,
        left: bool,
        count: Option<u64>,
    },
    LLen {
        key: Bytes,
    },
    LIndex {
        key: Bytes,
        index: i64,
    },
    LRange {
        key: Bytes,
        start: i64,
        stop: i64,
    },
    LSet {
        key: Bytes,
        index: i64,
        element: Bytes,
    },
    LTrim {
        key: Bytes,
        start: i64,
        stop: i64,
    },
    /// `LPOS key element [RANK r] [COUNT n] [MAXLEN m]` (`count`: `Some`
    /// with `COUNT`, 0 for all).
    LPos {
        key: Bytes,
        element: Bytes,
        rank: i64,
        count: Option<u64>,
        max_len: u64,
    },
    LRem {
        key: Bytes,
        count: i64,
        element: Bytes,
    },
    LInsert {
        key: Bytes,
        after: bool,
        pivot: Bytes,
        element: Bytes,
    },
    /// `LMOVE` (`RPOPLPUSH`: from the right, to the left).
    LMove {
        source: Bytes,
        destination: Bytes,
        from_left: bool,
        to_left: bool,
        legacy: bool,
    },
    /// `HSCAN`, `SSCAN` or `ZSCAN`.
    Scan {
        kind: Kind,
        key: Bytes,
        cursor: u64,
        pattern: Option<Bytes>,
        count: Option<u64>,
    },
}

impl CollCommand {
    /// The command's name in lower case.
    pub fn name(&self) -> &'static str {
        use CollCommand::*;
        match self {
            HSet { legacy: false, .. } => "hset",
            HSet { legacy: true, .. } => "hmset",
            HSetNx { .. } => "hsetnx",
            HDel { .. } => "hdel",
            HIncrBy { .. } => "hincrby",
            HIncrByFloat { .. } => "hincrbyfloat",
            HGet { .. } => "hget",
            HMGet { .. } => "hmget",
            HGetAll { .. } => "hgetall",
            HKeys { .. } => "hkeys",
            HVals { .. } => "hvals",
            HLen { .. } => "hlen",
            HExists { .. } => "hexists",
            HStrLen { .. } => "hstrlen",
            HRandField { zset: false, .. } => "hrandfield",
            HRandField { zset: true, .. } => "zrandmember",
            SAdd { .. } => "sadd",
            SRem { .. } => "srem",
            SMove { .. } => "smove",
            SPop { .. } => "spop",
            SMembers { .. } => "smembers",
            SIsMember { .. } => "sismember",
            SMIsMember { .. } => "smismember",
            SCard { .. } => "scard",
            SRandMember { .. } => "srandmember",
            SAlgebra { op: SetAlgebra::Inter, .. } => "sinter",
            SAlgebra { op: SetAlgebra::Union, .. } => "sunion",
            SAlgebra { op: SetAlgebra::Diff, .. } => "sdiff",
            SAlgebraStore { op: SetAlgebra::Inter, .. } => "sinterstore",
            SAlgebraStore { op: SetAlgebra::Union, .. } => "sunionstore",
            SAlgebraStore { op: SetAlgebra::Diff, .. } => "sdiffstore",
            SInterCard { .. } => "sintercard",
            ZStore { union: true, .. } => "zunionstore",
            ZStore { union: false, .. } => "zinterstore",
            ZAdd { incrby: false, .. } => "zadd",
            ZAdd { incrby: true, .. } => "zincrby",
            ZRem { .. } => "zrem",
            ZScore { .. } => "zscore",
            ZMScore { .. } => "zmscore",
            ZCard { .. } => "zcard",
            ZCount { .. } => "zcount",
            ZRange { name, .. } => name,
            ZRank { rev: false, .. } => "zrank",
            ZRank { rev: true, .. } => "zrevrank",
            ZRemRange { by: ZRangeBy::Score(..), .. } => "zremrangebyscore",
            ZRemRange { by: ZRangeBy::Rank(..), .. } => "zremrangebyrank",
            ZRemRange { by: ZRangeBy::Lex(..), .. } => "zremrangebylex",
            ZLexCount { .. } => "zlexcount",
            ZPop { max: false, .. } => "zpopmin",
            ZPop { max: true, .. } => "zpopmax",
            LPush { left: true, only_existing: false, .. } => "lpush",
            LPush { left: false, only_existing: false, .. } => "rpush",
            LPush { left: true, only_existing: true, .. } => "lpushx",
            LPush { left: false, only_existing: true, .. } => "rpushx",
            LPop { left: true, .. } => "lpop",
            LPop { left: false, .. } => "rpop",
            LLen { .. } => "llen",
            LIndex { .. } => "lindex",
            LRange { .. } => "lrange",
            LSet { .. } => "lset",
            LTrim { .. } => "ltrim",
            LRem { .. } => "lrem",
            LPos { .. } => "lpos",
            LInsert { .. } => "linsert",
            LMove { legacy: false, .. } => "lmove",
            LMove { legacy: true, .. } => "rpoplpush",
            Scan { kind: Kind::Hash, .. } => "hscan",
            Scan { kind: Kind::ZSet, .. } => "zscan",
            Scan { .. } => "sscan",
        }
    }
}

/// Redis's arity check: exactly `n` arguments with the name when
/// positive, at least `-n` when negative.
fn arity(args: &[Bytes], n: i32, command: &'static str) -> Result<(), CommandError> {
    let fits = match usize::try_from(n) {
        Ok(exact) => args.len() == exact,
        Err(_) => args.len() >= n.unsigned_abs() as usize,
    };
    fits.then_some(()).ok_or(CommandError::WrongArity { command })
}

fn integer(arg: &[u8]) -> Result<i64, CommandError> {
    parse_i64(arg).ok_or(CommandError::NotInteger)
}

fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// The hash or set command a request names (`name` in lower case), or
/// `None` if it names none.
pub fn parse(name: &[u8], args: &[Bytes]) -> Option<Result<CollCommand, CommandError>> {
    use CollCommand::*;
    let one = |i: usize| args[i].clone();
    let rest = |from: usize| args[from..].to_vec();
    let checked = |n: i32, command: &'static str, make: &dyn Fn() -> Result<CollCommand, CommandError>| {
        arity(args, n, command).and_then(|()| make())
    };
    let algebra = |name: &[u8]| match name {
        b"sinter" | b"sinterstore" => SetAlgebra::Inter,
        b"sunion" | b"sunionstore" => SetAlgebra::Union,
        _ => SetAlgebra::Diff,
    };
    Some(match name {
        b"hset" | b"hmset" => {
            let legacy = name == b"hmset";
            let command = if legacy { "hmset" } else { "hset" };
            checked(-4, command, &|| {
                if !args.len().is_multiple_of(2) {
                    return Err(CommandError::WrongArity { command });
                }
                Ok(HSet { key: one(1), pairs: rest(2), legacy })
            })
        }
        b"hsetnx" => checked(4, "hsetnx", &|| Ok(HSetNx { key: one(1), field: one(2), value: one(3) })),
        b"hdel" => checked(-3, "hdel", &|| Ok(HDel { key: one(1), fields: rest(2) })),
        b"hincrby" => {
            checked(4, "hincrby", &|| Ok(HIncrBy { key: one(1), field: one(2), delta: integer(&args[3])? }))
        }
        b"hincrbyfloat" => checked(4, "hincrbyfloat", &|| {
            logkv_runtime::collection::parse_f64(&args[3]).ok_or(CommandError::NotFloat)?;
            Ok(HIncrByFloat { key: one(1), field: one(2), delta: one(3) })
        }),
        b"hget" => checked(3, "hget", &|| Ok(HGet { key: one(1), field: one(2) })),
        b"hmget" => checked(-3, "hmget", &|| Ok(HMGet { key: one(1), fields: rest(2) })),
        b"hgetall" => checked(2, "hgetall", &|| Ok(HGetAll { key: one(1) })),
        b"hkeys" => checked(2, "hkeys", &|| Ok(HKeys { key: one(1) })),
        b"hvals" => checked(2, "hvals", &|| Ok(HVals { key: one(1) })),
        b"hlen" => checked(2, "hlen", &|| Ok(HLen { key: one(1) })),
        b"hexists" => checked(3, "hexists", &|| Ok(HExists { key: one(1), field: one(2) })),
        b"hstrlen" => checked(3, "hstrlen", &|| Ok(HStrLen { key: one(1), field: one(2) })),
        b"hrandfield" | b"zrandmember" => {
            let zset = name == b"zrandmember";
            let (command, word) =
                if zset { ("zrandmember", "withscores") } else { ("hrandfield", "withvalues") };
            checked(-2, command, &|| {
                let count = args.get(2).map(|c| integer(c)).transpose()?;
                let with_values = match args.get(3) {
                    None => false,
                    Some(w) if is(w, word) && args.len() == 4 => true,
                    Some(_) => return Err(CommandError::Syntax),
                };
                Ok(HRandField { zset, key: one(1), count, with_values })
            })
        }
        b"sadd" => checked(-3, "sadd", &|| Ok(SAdd { key: one(1), members: rest(2) })),
        b"srem" => checked(-3, "srem", &|| Ok(SRem { key: one(1), members: rest(2) })),
        b"smove" => {
            checked(4, "smove", &|| Ok(SMove { source: one(1), destination: one(2), member: one(3) }))
        }
        b"spop" => checked(-2, "spop", &|| {
            if args.len() > 3 {
                return Err(CommandError::Syntax);
            }
            let count = match args.get(2) {
                None => None,
                Some(c) => Some(u64::try_from(integer(c)?).map_err(|_| CommandError::NotPositive)?),
            };
            Ok(SPop { key: one(1), count })
        }),
        b"smembers" => checked(2, "smembers", &|| Ok(SMembers { key: one(1) })),
        b"sismember" => checked(3, "sismember", &|| Ok(SIsMember { key: one(1), member: one(2) })),
        b"smismember" => checked(-3, "smismember", &|| Ok(SMIsMember { key: one(1), members: rest(2) })),
        b"scard" => checked(2, "scard", &|| Ok(SCard { key: one(1) })),
        b"srandmember" => checked(-2, "srandmember", &|| {
            if args.len() > 3 {
                return Err(CommandError::Syntax);
            }
            Ok(SRandMember { key: one(1), count: args.get(2).map(|c| integer(c)).transpose()? })
        }),
        b"sinter" | b"sunion" | b"sdiff" => {
            let command = match name {
                b"sinter" => "sinter",
                b"sunion" => "sunion",
                _ => "sdiff",
            };
            checked(-2, command, &|| Ok(SAlgebra { op: algebra(name), keys: rest(1) }))
        }
        b"sinterstore" | b"sunionstore" | b"sdiffstore" => {
            let command = match name {
                b"sinterstore" => "sinterstore",
                b"sunionstore" => "sunionstore",
                _ => "sdiffstore",
            };
            checked(-3, command, &|| {
                Ok(SAlgebraStore { op: algebra(name), destination: one(1), keys: rest(2) })
            })
        }
        b"zunionstore" | b"zinterstore" => {
            let union = name == b"zunionstore";
            let command = if union { "zunionstore" } else { "zinterstore" };
            checked(-4, command, &|| parse_zstore(args, union, command))
        }
        b"sintercard" => checked(-3, "sintercard", &|| parse_intercard(args)),
        b"zadd" => checked(-4, "zadd", &|| parse_zadd(args)),
        b"zincrby" => checked(4, "zincrby", &|| {
            score(&args[2])?;
            let options = logkv_runtime::collection::zadd::INCR;
            Ok(ZAdd { key: one(1), options, pairs: vec![one(2), one(3)], incrby: true })
        }),
        b"zrem" => checked(-3, "zrem", &|| Ok(ZRem { key: one(1), members: rest(2) })),
        b"zscore" => checked(3, "zscore", &|| Ok(ZScore { key: one(1), member: one(2) })),
        b"zmscore" => checked(-3, "zmscore", &|| Ok(ZMScore { key: one(1), members: rest(2) })),
        b"zcard" => checked(2, "zcard", &|| Ok(ZCard { key: one(1) })),
        b"zcount" => checked(4, "zcount", &|| {
            Ok(ZCount { key: one(1), min: score_bound(&args[2])?, max: score_bound(&args[3])? })
        }),
        b"zrange" => checked(-4, "zrange", &|| parse_zrange(args)),
        b"zrangebyscore" | b"zrevrangebyscore" => {
            let rev = name == b"zrevrangebyscore";
            let command = if rev { "zrevrangebyscore" } else { "zrangebyscore" };
            checked(-4, command, &|| {
                let (lo, hi) = if rev { (&args[3], &args[2]) } else { (&args[2], &args[3]) };
                let by = ZRangeBy::Score(score_bound(lo)?, score_bound(hi)?);
                let (limit, with_scores) = range_options(&args[4..], true)?;
                let range = ZRangeQuery { key: one(1), by, rev, limit, with_scores };
                Ok(ZRange { range: Box::new(range), name: command })
            })
        }
        b"zrevrange" => checked(-4, "zrevrange", &|| {
            let by = ZRangeBy::Rank(integer(&args[2])?, integer(&args[3])?);
            let (limit, with_scores) = range_options(&args[4..], false)?;
            let range = ZRangeQuery { key: one(1), by, rev: true, limit, with_scores };
            Ok(ZRange { range: Box::new(range), name: "zrevrange" })
        }),
        b"zrank" | b"zrevrank" => {
            let rev = name == b"zrevrank";
            checked(3, if rev { "zrevrank" } else { "zrank" }, &|| {
                Ok(ZRank { key: one(1), member: one(2), rev })
            })
        }
        b"zremrangebyscore" => checked(4, "zremrangebyscore", &|| {
            Ok(ZRemRange { key: one(1), by: ZRangeBy::Score(score_bound(&args[2])?, score_bound(&args[3])?) })
        }),
        b"zremrangebylex" => checked(4, "zremrangebylex", &|| {
            Ok(ZRemRange { key: one(1), by: ZRangeBy::Lex(lex_bound(&args[2])?, lex_bound(&args[3])?) })
        }),
        b"zlexcount" => checked(4, "zlexcount", &|| {
            Ok(ZLexCount { key: one(1), min: lex_bound(&args[2])?, max: lex_bound(&args[3])? })
        }),
        b"zrangebylex" | b"zrevrangebylex" => {
            let rev = name == b"zrevrangebylex";
            let command = if rev { "zrevrangebylex" } else { "zrangebylex" };
            checked(-4, command, &|| {
                let (lo, hi) = if rev { (&args[3], &args[2]) } else { (&args[2], &args[3]) };
                let by = ZRangeBy::Lex(lex_bound(lo)?, lex_bound(hi)?);
                let (limit, with_scores) = range_options(&args[4..], true)?;
                if with_scores {
                    return Err(CommandError::WithScoresByLex);
                }
                let range = ZRangeQuery { key: one(1), by, rev, limit, with_scores };
                Ok(ZRange { range: Box::new(range), name: command })
            })
        }
        b"zremrangebyrank" => checked(4, "zremrangebyrank", &|| {
            Ok(ZRemRange { key: one(1), by: ZRangeBy::Rank(integer(&args[2])?, integer(&args[3])?) })
        }),
        b"zpopmin" | b"zpopmax" => {
            let max = name == b"zpopmax";
            checked(-2, if max { "zpopmax" } else { "zpopmin" }, &|| {
                if args.len() > 3 {
                    return Err(CommandError::Syntax);
                }
                let count = match args.get(2) {
                    None => None,
                    Some(c) => Some(u64::try_from(integer(c)?).map_err(|_| CommandError::NotPositive)?),
                };
                Ok(ZPop { key: one(1), max, count })
            })
        }
        b"lpush" | b"rpush" | b"lpushx" | b"rpushx" => {
            let left = name[0] == b'l';
            let only_existing = name.len() == 6;
            let command = match name {
                b"lpush" => "lpush",
                b"rpush" => "rpush",
                b"lpushx" => "lpushx",
                _ => "rpushx",
            };
            checked(-3, command, &|| Ok(LPush { key: one(1), left, only_existing, elements: rest(2) }))
        }
        b"lpop" | b"rpop" => {
            let left = name == b"lpop";
            checked(-2, if left { "lpop" } else { "rpop" }, &|| {
                if args.len() > 3 {
                    return Err(CommandError::WrongArity { command: if left { "lpop" } else { "rpop" } });
                }
                let count = match args.get(2) {
                    None => None,
                    Some(c) => Some(u64::try_from(integer(c)?).map_err(|_| CommandError::NotPositive)?),
                };
                Ok(LPop { key: one(1), left, count })
            })
        }
        b"llen" => checked(2, "llen", &|| Ok(LLen { key: one(1) })),
        b"lindex" => checked(3, "lindex", &|| Ok(LIndex { key: one(1), index: integer(&args[2])? })),
        b"lrange" => checked(4, "lrange", &|| {
            Ok(LRange { key: one(1), start: integer(&args[2])?, stop: integer(&args[3])? })
        }),
        b"lset" => {
            checked(4, "lset", &|| Ok(LSet { key: one(1), index: integer(&args[2])?, element: one(3) }))
        }
        b"ltrim" => checked(4, "ltrim", &|| {
            Ok(LTrim { key: one(1), start: integer(&args[2])?, stop: integer(&args[3])? })
        }),
        b"lpos" => checked(-3, "lpos", &|| parse_lpos(args)),
        b"lrem" => {
            checked(4, "lrem", &|| Ok(LRem { key: one(1), count: integer(&args[2])?, element: one(3) }))
        }
        b"linsert" => checked(5, "linsert", &|| {
            let after = if is(&args[2], "after") {
                true
            } else if is(&args[2], "before") {
                false
            } else {
                return Err(CommandError::Syntax);
            };
            Ok(LInsert { key: one(1), after, pivot: one(3), element: one(4) })
        }),
        b"rpoplpush" => checked(3, "rpoplpush", &|| {
            Ok(LMove { source: one(1), destination: one(2), from_left: false, to_left: true, legacy: true })
        }),
        b"lmove" => checked(5, "lmove", &|| {
            let side = |w: &[u8]| {
                if is(w, "left") {
                    Ok(true)
                } else if is(w, "right") {
                    Ok(false)
                } else {
                    Err(CommandError::Syntax)
                }
            };
            let (from_left, to_left) = (side(&args[3])?, side(&args[4])?);
            Ok(LMove { source: one(1), destination: one(2), from_left, to_left, legacy: false })
        }),
        b"hscan" | b"sscan" | b"zscan" => {
            let (kind, command) = match name {
                b"hscan" => (Kind::Hash, "hscan"),
                b"zscan" => (Kind::ZSet, "zscan"),
                _ => (Kind::Set, "sscan"),
            };
            checked(-3, command, &|| parse_scan(args, kind))
        }
        _ => return None,
    })
}

fn score(arg: &[u8]) -> Result<f64, CommandError> {
    logkv_runtime::collection::parse_score(arg).ok_or(CommandError::NotFloat)
}

/// A lex range end: `-`, `+`, `[member`, `(member`.
fn lex_bound(arg: &Bytes) -> Result<LexBound, CommandError> {
    match arg.first() {
        Some(b'-') if arg.len() == 1 => Ok(LexBound::Min),
        Some(b'+') if arg.len() == 1 => Ok(LexBound::Max),
        Some(b'[') => Ok(LexBound::Inclusive(arg.slice(1..))),
        Some(b'(') => Ok(LexBound::Exclusive(arg.slice(1..))),
        _ => Err(CommandError::LexRange),
    }
}

/// A score range end as `ZCOUNT` and `ZRANGEBYSCORE` read it.
fn score_bound(arg: &[u8]) -> Result<ScoreBound, CommandError> {
    let (exclusive, rest) = match arg.strip_prefix(b"(") {
        Some(rest) => (true, rest),
        None => (false, arg),
    };
    let score = logkv_runtime::collection::parse_score(rest).ok_or(CommandError::MinMaxNotFloat)?;
    Ok(ScoreBound { score, exclusive })
}

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]`.
fn parse_zadd(args: &[Bytes]) -> Result<CollCommand, CommandError> {
    use logkv_runtime::collection::zadd;
    let mut options = 0;
    let mut i = 2;
    while let Some(word) = args.get(i) {
        let bit = [
            ("nx", zadd::NX),
            ("xx", zadd::XX),
            ("gt", zadd::GT),
            ("lt", zadd::LT),
            ("ch", zadd::CH),
            ("incr", zadd::INCR),
        ]
        .into_iter()
        .find(|(w, _)| is(word, w));
        match bit {
            Some((_, bit)) => options |= bit,
            None => break,
        }
        i += 1;
    }
    let pairs = &args[i..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(CommandError::Syntax);
    }
    let has = |bit| options & bit != 0;
    if has(zadd::NX) && has(zadd::XX) {
        return Err(CommandError::ZAddNxXx);
    }
    if [has(zadd::NX), has(zadd::GT), has(zadd::LT)].iter().filter(|b| **b).count() > 1 {
        return Err(CommandError::ZAddGtLtNx);
    }
    if has(zadd::INCR) && pairs.len() > 2 {
        return Err(CommandError::ZAddIncrPairs);
    }
    for pair in pairs.chunks(2) {
        score(&pair[0])?;
    }
    Ok(CollCommand::ZAdd { key: args[1].clone(), options, pairs: pairs.to_vec(), incrby: false })
}

/// `[LIMIT offset count]` (where allowed) and `[WITHSCORES]`, in any order.
fn range_options(args: &[Bytes], limit_allowed: bool) -> Result<(Option<(i64, i64)>, bool), CommandError> {
    let mut limit = None;
    let mut with_scores = false;
    let mut i = 0;
    while let Some(word) = args.get(i) {
        if is(word, "withscores") {
            with_scores = true;
            i += 1;
        } else if limit_allowed && is(word, "limit") && args.len() >= i + 3 {
            limit = Some((integer(&args[i + 1])?, integer(&args[i + 2])?));
            i += 3;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok((limit, with_scores))
}

/// `ZRANGE key start stop [BYSCORE] [REV] [LIMIT offset count] [WITHSCORES]`.
fn parse_zrange(args: &[Bytes]) -> Result<CollCommand, CommandError> {
    let mut by_score = false;
    let mut by_lex = false;
    let mut rev = false;
    let mut rest = Vec::new();
    for word in &args[4..] {
        if is(word, "byscore") {
            by_score = true;
        } else if is(word, "rev") {
            rev = true;
        } else if is(word, "bylex") {
            by_lex = true;
        } else {
            rest.push(word.clone());
        }
    }
    let (limit, with_scores) = range_options(&rest, true)?;
    if limit.is_some() && !by_score && !by_lex {
        return Err(CommandError::LimitWithoutBy);
    }
    if by_lex && with_scores {
        return Err(CommandError::WithScoresByLex);
    }
    let (lo, hi) = if rev { (&args[3], &args[2]) } else { (&args[2], &args[3]) };
    let by = if by_lex {
        ZRangeBy::Lex(lex_bound(lo)?, lex_bound(hi)?)
    } else if by_score {
        let (lo, hi) = if rev { (&args[3], &args[2]) } else { (&args[2], &args[3]) };
        ZRangeBy::Score(score_bound(lo)?, score_bound(hi)?)
    } else {
        ZRangeBy::Rank(integer(&args[2])?, integer(&args[3])?)
    };
    let range = ZRangeQuery { key: args[1].clone(), by, rev, limit, with_scores };
    Ok(CollCommand::ZRange { range: Box::new(range), name: "zrange" })
}

/// `ZUNIONSTORE|ZINTERSTORE destination numkeys key [key ...] [WEIGHTS
/// weight ...] [AGGREGATE SUM|MIN|MAX]`.
fn parse_zstore(args: &[Bytes], union: bool, command: &'static str) -> Result<CollCommand, CommandError> {
    let n = integer(&args[2])?;
    let n = usize::try_from(n).ok().filter(|n| *n > 0).ok_or(CommandError::NoInputKeys { command })?;
    let keys = args.get(3..3 + n).ok_or(CommandError::Syntax)?.to_vec();
    let mut weights = Vec::new();
    let mut aggregate = Aggregate::Sum;
    let mut i = 3 + n;
    while let Some(word) = args.get(i) {
        if is(word, "weights") && args.len() > i + n {
            weights = args[i + 1..i + 1 + n].to_vec();
            if weights.iter().any(|w| logkv_runtime::collection::parse_score(w).is_none()) {
                return Err(CommandError::WeightNotFloat);
            }
            i += 1 + n;
        } else if is(word, "aggregate") && args.len() > i + 1 {
            let w = &args[i + 1];
            aggregate = if is(w, "sum") {
                Aggregate::Sum
            } else if is(w, "min") {
                Aggregate::Min
            } else if is(w, "max") {
                Aggregate::Max
            } else {
                return Err(CommandError::Syntax);
            };
            i += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(CollCommand::ZStore { union, destination: args[1].clone(), keys, weights, aggregate })
}

/// `LPOS key element [RANK rank] [COUNT num] [MAXLEN len]`.
fn parse_lpos(args: &[Bytes]) -> Result<CollCommand, CommandError> {
    let (mut rank, mut count, mut max_len) = (1, None, 0);
    for option in args[3..].chunks(2) {
        let [name, value] = option else {
            return Err(CommandError::Syntax);
        };
        let n = integer(value)?;
        if is(name, "rank") {
            if n == 0 || n == i64::MIN {
                return Err(CommandError::LposRank);
            }
            rank = n;
        } else if is(name, "count") {
            count = Some(u64::try_from(n).map_err(|_| CommandError::LposNegative { what: "COUNT" })?);
        } else if is(name, "maxlen") {
            max_len = u64::try_from(n).map_err(|_| CommandError::LposNegative { what: "MAXLEN" })?;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(CollCommand::LPos { key: args[1].clone(), element: args[2].clone(), rank, count, max_len })
}

/// `SINTERCARD numkeys key [key ...] [LIMIT limit]`.
fn parse_intercard(args: &[Bytes]) -> Result<CollCommand, CommandError> {
    let n = integer(&args[1])?;
    let n = usize::try_from(n).ok().filter(|n| *n > 0).ok_or(CommandError::NumKeysNotPositive)?;
    let keys = args.get(2..2 + n).ok_or(CommandError::NumKeysTooMany)?.to_vec();
    let mut limit = 0;
    match &args[2 + n..] {
        [] => {}
        [word, value] if is(word, "limit") => {
            limit = u64::try_from(integer(value)?).map_err(|_| CommandError::LimitNegative)?;
        }
        _ => return Err(CommandError::Syntax),
    }
    Ok(CollCommand::SInterCard { keys, limit })
}

/// `HSCAN|SSCAN key cursor [MATCH pattern] [COUNT count]`.
fn parse_scan(args: &[Bytes], kind: Kind) -> Result<CollCommand, CommandError> {
    let cursor = parse_u64(&args[2]).ok_or(CommandError::InvalidCursor)?;
    let mut pattern = None;
    let mut count = None;
    for option in args[3..].chunks(2) {
        let [name, value] = option else {
            return Err(CommandError::Syntax);
        };
        if is(name, "match") {
            pattern = Some(value.clone());
        } else if is(name, "count") {
            let n = integer(value)?;
            count = Some(u64::try_from(n).ok().filter(|n| *n >= 1).ok_or(CommandError::Syntax)?);
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(CollCommand::Scan { kind, key: args[1].clone(), cursor, pattern, count })
}
