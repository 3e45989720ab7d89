//! The `logkv` binary as a user runs it: output formats, exit codes and how
//! it reports damage, torn tails and a locked data directory. The data
//! directory holds a node: writes are transactions signed by its own key,
//! versions are transaction versions `(position << 16) | index`.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Segment size for tests that edit segment bytes: small files to read whole.
const SMALL_SEGMENT: &str = "4096";

/// Bytes of the segment header, and of a frame around its payload (see docs/format.md).
const SEGMENT_HEADER_LEN: usize = 32;
const FRAME_OVERHEAD: usize = 26;

/// A data directory in a temporary directory, and how to run logkv on it.
struct Fixture {
    tmp: tempfile::TempDir,
}

/// What a run of logkv produced.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn out(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("utf-8 stdout")
    }
}

impl Fixture {
    fn new() -> Self {
        Self { tmp: tempfile::tempdir().expect("temp dir") }
    }

    fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    fn segment(&self, id: u32) -> PathBuf {
        self.data_dir().join(format!("{id:08}.log"))
    }

    fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_logkv"));
        // `--data-dir` goes last: the lock file names its holder by its
        // first arguments, which should be the subcommand.
        c.env_remove("LOGKV_DATA_DIR").args(args).arg("--data-dir").arg(self.data_dir());
        c
    }

    fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Run {
        self.run_with_stdin(args, b"")
    }

    fn run_with_stdin<S: AsRef<OsStr>>(&self, args: &[S], stdin: &[u8]) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn logkv");
        child.stdin.take().expect("piped stdin").write_all(stdin).expect("write stdin");
        let out = child.wait_with_output().expect("wait for logkv");
        Run {
            code: out.status.code().expect("logkv exited, not killed"),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs a command that must succeed and returns its stdout.
    fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let run = self.run(args);
        assert_eq!(
            run.code,
            0,
            "{args:?}: {run:?}",
            args = args.iter().map(AsRef::as_ref).collect::<Vec<_>>()
        );
        run.out()
    }
}

/// The version of the only transaction of the entry at `position`, as printed.
fn v(position: u64) -> String {
    (position << 16).to_string()
}

/// The version of the only transaction of the entry at `position`, as a `put` prints it.
fn printed(position: u64) -> String {
    format!("{}\n", v(position))
}

/// Offsets of the frames in a segment's bytes, in order.
fn frame_offsets(segment: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut off = SEGMENT_HEADER_LEN;
    while off + FRAME_OVERHEAD <= segment.len() && segment[off..off + 21].iter().any(|&b| b != 0) {
        offsets.push(off);
        let len = u32::from_le_bytes(segment[off..off + 4].try_into().expect("4 bytes")) as usize;
        off += FRAME_OVERHEAD + len;
    }
    offsets
}

#[test]
fn put_and_get_round_trip_values_from_the_argument_a_file_and_stdin() {
    let f = Fixture::new();
    assert_eq!(f.ok(&["put", "arg", "from the argument"]), printed(1));
    let file = f.tmp.path().join("value.bin");
    let binary = b"\x00\x01line\nnext\ttab\xff".to_vec();
    std::fs::write(&file, &binary).unwrap();
    assert_eq!(
        f.ok(&[OsStr::new("put"), OsStr::new("file"), OsStr::new("--file"), file.as_os_str()]),
        printed(2)
    );
    let run = f.run_with_stdin(&["put", "stdin"], b"from\nstdin\n");
    assert_eq!((run.code, run.out()), (0, printed(3)), "{run:?}");

    assert_eq!(f.ok(&["get", "arg"]), "from the argument", "no newline is added");
    assert_eq!(f.run(&["get", "file"]).stdout, binary);
    assert_eq!(f.ok(&["get", "stdin"]), "from\nstdin\n");
}

#[test]
fn an_empty_value_is_a_value_and_a_missing_key_exits_1() {
    let f = Fixture::new();
    f.ok(&["put", "empty", ""]);
    let run = f.run(&["get", "empty"]);
    assert_eq!((run.code, run.stdout.len()), (0, 0), "{run:?}");
    let run = f.run(&["get", "missing"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.starts_with("logkv: key not found: missing"), "{run:?}");
}

#[test]
fn get_at_an_old_version_returns_the_value_written_then() {
    let f = Fixture::new();
    let v1 = f.ok(&["put", "k", "old"]);
    f.ok(&["put", "k", "new"]);
    assert_eq!(f.ok(&["get", "k", "--at", v1.trim()]), "old");
    assert_eq!(f.ok(&["get", "k"]), "new");
    assert_eq!(f.run(&["get", "k", "--at", "0"]).code, 1, "nothing existed before the first version");
}

#[test]
fn del_prints_its_version_and_exits_1_when_the_key_is_absent() {
    let f = Fixture::new();
    f.ok(&["put", "k", "v"]);
    assert_eq!(f.ok(&["del", "k"]), printed(2));
    assert_eq!(f.run(&["get", "k"]).code, 1);
    let run = f.run(&["del", "k"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(f.run(&["del", "never-written"]).code, 1);
    assert_eq!(f.ok(&["get", "k", "--at", &v(1)]), "v", "the old version is still readable");
    assert_eq!(
        f.ok(&["history", "k"]),
        format!("{}\tdelete\n{}\tput 1 bytes\n", v(2), v(1)),
        "no write for a missing key"
    );
}

#[test]
fn scan_prints_one_escaped_pair_per_line_within_prefix_range_direction_and_limit() {
    let f = Fixture::new();
    for (k, v) in [("a1", "x"), ("a2", "two words"), ("b1", "y"), ("c1", "z")] {
        f.ok(&[OsStr::new("put"), OsStr::new(k), OsStr::new(v)]);
    }
    // A NUL cannot be an argument, so this value comes from stdin.
    let run = f.run_with_stdin(&[OsStr::new("put"), OsStr::from_bytes(b"a\tkey")], b"line1\nline2\x00\xff\\");
    assert_eq!(run.code, 0, "{run:?}");
    let tab_key = "a\\tkey\tline1\\nline2\\x00\\xff\\\\\n";
    assert_eq!(
        f.ok(&["scan"]),
        format!("{tab_key}a1\tx\na2\ttwo words\nb1\ty\nc1\tz\n"),
        "tabs, newlines, backslashes and non-printable bytes are escaped"
    );
    assert_eq!(f.ok(&["scan", "--prefix", "a"]), format!("{tab_key}a1\tx\na2\ttwo words\n"));
    assert_eq!(f.ok(&["scan", "--start", "a1", "--end", "c1"]), "a1\tx\na2\ttwo words\nb1\ty\n");
    assert_eq!(f.ok(&["scan", "--reverse", "--limit", "2"]), "c1\tz\nb1\ty\n");
    assert_eq!(f.ok(&["scan", "--start", "b", "--reverse"]), "c1\tz\nb1\ty\n");
    assert_eq!(f.ok(&["scan", "--prefix", "b", "--at", &v(2)]), "", "b1 was written at position 3");
    assert_eq!(f.ok(&["scan", "--prefix", "b", "--at", &v(3)]), "b1\ty\n");
    assert_eq!(
        f.run(&["scan", "--prefix", "a", "--start", "a"]).code,
        2,
        "--prefix excludes --start and --end"
    );
}

#[test]
fn history_lists_puts_and_deletes_newest_first() {
    let f = Fixture::new();
    f.ok(&["put", "k", "1"]);
    f.ok(&["put", "other", "x"]);
    f.ok(&["put", "k", "333"]);
    f.ok(&["del", "k"]);
    f.ok(&["put", "k", ""]);
    assert_eq!(
        f.ok(&["history", "k"]),
        format!("{}\tput 0 bytes\n{}\tdelete\n{}\tput 3 bytes\n{}\tput 1 bytes\n", v(5), v(4), v(3), v(1))
    );
    assert_eq!(f.ok(&["history", "never-written"]), "");
}

#[test]
fn limit_and_usage_errors_exit_2_naming_the_limit() {
    let f = Fixture::new();
    let long_key = "k".repeat(1025);
    let run = f.run(&["put", &long_key, "v"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.starts_with("logkv: ") && run.stderr.contains("max_key_bytes"), "{run:?}");
    f.ok(&["--max-key-bytes", "2000", "put", &long_key, "v"]);

    let run = f.run_with_stdin(&["--max-value-bytes", "4", "put", "k"], b"12345");
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("max_value_bytes"), "{run:?}");
    assert_eq!(f.run(&["put", "", "v"]).code, 2, "empty key");
    assert_eq!(f.run(&["--durability", "sometimes", "get", "k"]).code, 2, "clap's usage error");
    assert_eq!(f.run(&["--segment-size-bytes", "3", "get", "k"]).code, 2);
    assert_eq!(f.run(&["get", "k"]).code, 1, "no write above went through");
    let run = f.run(&["inspect", "--server", "http://127.0.0.1:1"]);
    assert!(run.code == 2 && run.stderr.contains("does not talk to a server"), "{run:?}");
}

#[test]
fn every_durability_mode_acknowledges_readable_writes() {
    let f = Fixture::new();
    f.ok(&["--durability", "periodic", "--flush-interval-ms", "5", "put", "p", "1"]);
    f.ok(&["--durability", "none", "put", "n", "2"]);
    assert_eq!(f.ok(&["scan"]), "n\t2\np\t1\n");
}

#[test]
fn inspect_of_a_clean_directory_exits_0_with_segment_statistics() {
    let f = Fixture::new();
    for i in 0..3 {
        f.ok(&["--segment-size-bytes", "100", "put", &format!("key{i}"), "value"]);
    }
    let out = f.ok(&["inspect"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with(&format!("{} capacity=", f.segment(1).display())), "{out}");
    assert!(lines[1].contains("records=1 first=2 last=2") && lines[1].ends_with(" ok"), "{out}");
    assert!(lines[3].starts_with("total segments=3 ") && lines[3].contains("records=3 "), "{out}");
    assert!(lines[3].ends_with("torn_tails=0 corrupt=0"), "{out}");
}

#[test]
fn a_flipped_byte_mid_log_is_corruption_for_inspect_and_for_get() {
    let f = Fixture::new();
    for i in 0..5 {
        f.ok(&["--segment-size-bytes", SMALL_SEGMENT, "put", &format!("key{i}"), "value"]);
    }
    let path = f.segment(1);
    let mut bytes = std::fs::read(&path).unwrap();
    let second = frame_offsets(&bytes)[1];
    bytes[second + 20] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    let run = f.run(&["inspect"]);
    assert_eq!(run.code, 3, "{run:?}");
    let offset = format!("offset {second}");
    assert!(run.out().contains(&offset) && run.out().contains("corrupt=1"), "{run:?}");
    let named = format!("{} at {offset}", path.display());
    assert!(run.stderr.starts_with("logkv: corruption") && run.stderr.contains(&named), "{run:?}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "inspect changes nothing");

    let run = f.run(&["get", "key0"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.starts_with("logkv: corruption") && run.stderr.contains(&named), "{run:?}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "a strict open changes nothing either");
}

#[test]
fn recovery_truncate_opens_a_corrupt_log_at_its_first_damage() {
    let f = Fixture::new();
    for i in 0..3 {
        f.ok(&["--segment-size-bytes", SMALL_SEGMENT, "put", &format!("key{i}"), "value"]);
    }
    let path = f.segment(1);
    let mut bytes = std::fs::read(&path).unwrap();
    let second = frame_offsets(&bytes)[1];
    bytes[second + 20] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    let run = f.run(&["--recovery", "truncate", "get", "key0"]);
    assert_eq!((run.code, run.out()), (0, "value".to_string()), "{run:?}");
    assert!(run.stderr.contains(&format!("{} at offset {second}", path.display())), "{run:?}");
    assert_eq!(f.run(&["get", "key2"]).code, 1, "what followed the damage is gone");
    f.ok(&["inspect"]);
}

#[test]
fn a_torn_tail_is_cut_with_a_warning_and_earlier_keys_still_read() {
    let f = Fixture::new();
    for i in 0..3 {
        f.ok(&["--segment-size-bytes", SMALL_SEGMENT, "put", &format!("key{i}"), "value"]);
    }
    let path = f.segment(1);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = *frame_offsets(&bytes).last().unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    // Segments are preallocated with zeros, so a write cut short leaves zeros.
    bytes[end - 3..end].fill(0);
    std::fs::write(&path, &bytes).unwrap();

    let run = f.run(&["inspect"]);
    assert_eq!(run.code, 0, "a torn tail is not corruption: {run:?}");
    assert!(
        run.out().contains(&format!("damage at offset {last}")) && run.out().contains("torn_tails=1"),
        "{run:?}"
    );

    let run = f.run(&["get", "key1"]);
    assert_eq!((run.code, run.out()), (0, "value".to_string()), "{run:?}");
    let warning = format!("logkv: warning: recovery cut {} at offset {last}, dropping ", path.display());
    assert!(run.stderr.starts_with(&warning), "{run:?}");
    assert_eq!(f.run(&["get", "key2"]).code, 1, "the torn record is gone");
    let run = f.run(&["get", "key0"]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "the cut is reported once: {run:?}");
}

#[test]
fn a_second_process_on_a_locked_directory_exits_3_naming_the_holder() {
    let f = Fixture::new();
    // The holder opens the store, then waits for its value on stdin.
    let mut holder = f
        .command(&["put", "held"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn holder");
    let pid = format!("pid {} ", holder.id());
    let lock = f.data_dir().join("LOCK");
    let mut waits = 0;
    while !std::fs::read_to_string(&lock).unwrap_or_default().starts_with(&pid) {
        waits += 1;
        assert!(waits < 3000, "the holder never took the lock");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    let run = f.run(&["get", "held"]);
    assert_eq!(run.code, 3, "{run:?}");
    let expected = format!("logkv: data directory {} is in use: {pid}(", f.data_dir().display());
    assert!(run.stderr.starts_with(&expected) && run.stderr.contains("put held"), "{run:?}");

    holder.stdin.take().expect("piped stdin").write_all(b"value").unwrap();
    let out = holder.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(f.ok(&["get", "held"]), "value");
}

#[test]
fn inspect_of_a_missing_directory_is_an_io_error() {
    let f = Fixture::new();
    let run = f.run(&["inspect"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.starts_with("logkv: I/O error on "), "{run:?}");
    assert!(!Path::new(&f.data_dir()).exists(), "inspect creates nothing");
}

const STREAM_A: &str = "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const DEFAULT_STREAM: &str = "0x0000000000000000000000000000000000000000000000000000000000000000";

#[test]
fn streams_are_separate_key_spaces_and_the_default_is_the_zero_stream() {
    let f = Fixture::new();
    f.ok(&["put", "k", "default"]);
    f.ok(&["put", "--stream", STREAM_A, "k", "in a"]);
    f.ok(&["put", "--stream", STREAM_A, "only-a", "1"]);
    assert_eq!(f.ok(&["get", "k"]), "default");
    assert_eq!(f.ok(&["get", "--stream", DEFAULT_STREAM, "k"]), "default");
    assert_eq!(f.ok(&["get", "--stream", STREAM_A, "k"]), "in a");
    assert_eq!(f.ok(&["scan"]), "k\tdefault\n");
    assert_eq!(f.ok(&["scan", "--stream", STREAM_A]), "k\tin a\nonly-a\t1\n");
    assert_eq!(f.run(&["get", "only-a"]).code, 1);
    assert_eq!(f.run(&["del", "only-a"]).code, 1, "absent from the default stream");
    assert_eq!(f.ok(&["del", "--stream", STREAM_A, "only-a"]), printed(4));
    assert_eq!(f.ok(&["history", "--stream", STREAM_A, "k"]), format!("{}\tput 4 bytes\n", v(2)));
    assert_eq!(f.ok(&["history", "k"]), format!("{}\tput 7 bytes\n", v(1)));
    let run = f.run(&["get", "--stream", "0x12", "k"]);
    assert_eq!(run.code, 2, "a stream ID is 32 bytes: {run:?}");
}

#[test]
fn the_node_key_is_created_once_owner_only_inside_the_data_directory_and_never_printed() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    let key = f.data_dir().join("node.key");
    assert_eq!(f.run(&["get", "k"]).code, 1);
    assert!(!key.exists(), "reads need no key");
    let run = f.run(&["put", "k", "v"]);
    assert_eq!(run.code, 0, "{run:?}");
    let secret = std::fs::read_to_string(&key).expect("the key was created");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let digits = secret.trim().trim_start_matches("0x");
    assert!(!run.out().contains(digits) && !run.stderr.contains(digits));
    f.ok(&["put", "k", "w"]);
    assert_eq!(std::fs::read_to_string(&key).unwrap(), secret, "the same key signs every write");
    assert_eq!(f.ok(&["get", "k"]), "w");
}
