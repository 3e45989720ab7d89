//! Splitting an inline request line into arguments the way Redis's
//! `sdssplitargs` does: words separated by whitespace, `"double quoted"`
//! words with `\n \r \t \b \a \\ \" \xHH` escapes, and `'single quoted'`
//! words with only `\'` escaped. A closing quote must be followed by
//! whitespace or the end of the line.

/// Returns the arguments of `line`, or `None` if its quotes are unbalanced.
pub(crate) fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut pos = 0;
    loop {
        while line.get(pos).is_some_and(|b| is_space(*b)) {
            pos += 1;
        }
        if pos >= line.len() {
            return Some(args);
        }
        let (arg, next) = match line[pos] {
            b'"' => double_quoted(line, pos + 1)?,
            b'\'' => single_quoted(line, pos + 1)?,
            _ => bare(line, pos),
        };
        args.push(arg);
        pos = next;
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn bare(line: &[u8], start: usize) -> (Vec<u8>, usize) {
    let end = line[start..].iter().position(|b| is_space(*b)).map_or(line.len(), |n| start + n);
    (line[start..end].to_vec(), end)
}

/// After a closing quote at `pos - 1`, the word must end.
fn closed_at(line: &[u8], pos: usize) -> Option<usize> {
    match line.get(pos) {
        None => Some(pos),
        Some(b) if is_space(*b) => Some(pos),
        Some(_) => None,
    }
}

fn double_quoted(line: &[u8], mut pos: usize) -> Option<(Vec<u8>, usize)> {
    let mut arg = Vec::new();
    loop {
        match *line.get(pos)? {
            b'"' => return Some((arg, closed_at(line, pos + 1)?)),
            b'\\' => {
                let escaped = *line.get(pos + 1)?;
                if escaped == b'x' {
                    if let Some(byte) = hex_byte(line.get(pos + 2..pos + 4)) {
                        arg.push(byte);
                        pos += 4;
                        continue;
                    }
                }
                arg.push(match escaped {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 0x08,
                    b'a' => 0x07,
                    other => other,
                });
                pos += 2;
            }
            other => {
                arg.push(other);
                pos += 1;
            }
        }
    }
}

fn single_quoted(line: &[u8], mut pos: usize) -> Option<(Vec<u8>, usize)> {
    let mut arg = Vec::new();
    loop {
        match *line.get(pos)? {
            b'\'' => return Some((arg, closed_at(line, pos + 1)?)),
            b'\\' if line.get(pos + 1) == Some(&b'\'') => {
                arg.push(b'\'');
                pos += 2;
            }
            other => {
                arg.push(other);
                pos += 1;
            }
        }
    }
}

fn hex_byte(digits: Option<&[u8]>) -> Option<u8> {
    let digits = std::str::from_utf8(digits?).ok()?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(digits, 16).ok()
}
