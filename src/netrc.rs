//! `.netrc` (`$NETRC`, else `~/.netrc`): login and password per machine, read as curl reads
//! it, for `http(s)://` sources and registries. Entries are per host (a port is not part of
//! a machine name), matched case-insensitively; `default` matches every host. The first
//! entry in the file that matches and has a login or password is the one (as curl: a
//! `default` before a `machine` wins); protoreg sends it only when it has both.
//!
//! Tokens, as curl's `lib/netrc.c` splits them: separated by blanks and line ends; a token
//! that starts with `#` starts a comment to the end of its line; `"…"` is one token (with
//! `\n`, `\r`, `\t` and `\<char>` escapes inside), never a keyword; the value after
//! `machine`, `login`, `password` and `account` is whatever token comes next. `macdef`
//! starts a macro: the rest of its line and the lines up to the next empty line are not
//! credentials.
//!
//! A netrc is a few lines: a file larger than [`MAX_BYTES`], or a quote left open, is
//! refused (an error naming the file, and the line), never half read. Something other than
//! a regular file (`NETRC=/dev/null`, a FIFO) gives no credentials and is not read.

use std::path::{Path, PathBuf};

/// The largest netrc read (curl reads at most 128 KiB).
pub const MAX_BYTES: u64 = 1 << 20;

/// (login, password) for `host` (a port, if any, is ignored), if the netrc has them; the
/// error (one line) names a netrc that cannot be used.
pub fn lookup(host: &str) -> Result<Option<(String, String)>, String> {
    let Some(path) = std::env::var_os("NETRC")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| crate::sys::home_dir().map(|h| h.join(crate::sys::NETRC)))
    else {
        return Ok(None);
    };
    let Some(text) = read(&path)? else {
        return Ok(None);
    };
    find(&text, host).map_err(|(line, why)| {
        format!(
            "the netrc file `{}` line {line}: {why}; fix it, or point NETRC elsewhere",
            path.display()
        )
    })
}

/// The text of the netrc at `path`: None when there is none (missing, unreadable, not a
/// regular file).
fn read(path: &Path) -> Result<Option<String>, String> {
    match crate::textfile::read(path, MAX_BYTES) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        // `NETRC=/dev/null`, a FIFO, a directory: no credentials, as for curl.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => Err(format!(
            "the netrc file `{}` {e}, not a netrc: point NETRC at the right file",
            path.display()
        )),
        Err(_) => Ok(None),
    }
}

/// A line number and what is wrong there.
type Malformed = (usize, &'static str);

/// The entry for `host` in netrc `text` (see the module's rules).
pub fn find(text: &str, host: &str) -> Result<Option<(String, String)>, Malformed> {
    let name = strip_port(host);
    for entry in parse(text)? {
        let matches = match &entry.machine {
            Machine::Default => true,
            Machine::Named(m) => m.eq_ignore_ascii_case(name),
            Machine::Unnamed => false,
        };
        if !matches || (entry.login.is_none() && entry.password.is_none()) {
            continue;
        }
        return Ok(entry.login.zip(entry.password));
    }
    Ok(None)
}

enum Machine {
    Named(String),
    Default,
    /// `machine` as the file's last token.
    Unnamed,
}

/// One `machine` or `default` entry.
struct Entry {
    machine: Machine,
    login: Option<String>,
    password: Option<String>,
}

/// One token: its text, and whether it was quoted (a quoted token is never a keyword).
struct Token {
    text: String,
    quoted: bool,
}

/// Tokens and macros of a netrc, line by line, as curl splits them.
struct Lexer<'a> {
    lines: std::iter::Enumerate<std::str::Split<'a, char>>,
    /// The rest of the current line and its number.
    rest: &'a str,
    line: usize,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Lexer<'a> {
        Lexer {
            lines: text.split('\n').enumerate(),
            rest: "",
            line: 0,
        }
    }

    fn next_token(&mut self) -> Result<Option<Token>, Malformed> {
        loop {
            // Blanks and carriage returns separate tokens.
            let rest = self
                .rest
                .trim_start_matches(|c: char| c.is_ascii_whitespace());
            if rest.is_empty() || rest.starts_with('#') {
                let Some((i, line)) = self.lines.next() else {
                    return Ok(None);
                };
                self.line = i + 1;
                self.rest = line;
                continue;
            }
            if let Some(quoted) = rest.strip_prefix('"') {
                let mut text = String::new();
                let mut chars = quoted.char_indices();
                loop {
                    match chars.next() {
                        None => return Err((self.line, "a quoted token is not closed")),
                        Some((i, '"')) => {
                            self.rest = &quoted[i + 1..];
                            return Ok(Some(Token { text, quoted: true }));
                        }
                        Some((_, '\\')) => match chars.next() {
                            None => return Err((self.line, "a quoted token is not closed")),
                            Some((_, 'n')) => text.push('\n'),
                            Some((_, 'r')) => text.push('\r'),
                            Some((_, 't')) => text.push('\t'),
                            Some((_, c)) => text.push(c),
                        },
                        Some((_, c)) => text.push(c),
                    }
                }
            }
            let end = rest
                .find(|c: char| c.is_ascii_whitespace())
                .unwrap_or(rest.len());
            self.rest = &rest[end..];
            return Ok(Some(Token {
                text: rest[..end].to_string(),
                quoted: false,
            }));
        }
    }

    /// Skip a macro: the rest of this line and every line up to the next empty one.
    fn skip_macro(&mut self) {
        self.rest = "";
        for (i, line) in self.lines.by_ref() {
            self.line = i + 1;
            // curl: a line that starts with its line end (or a carriage return) is empty.
            if line.is_empty() || line.starts_with('\r') {
                return;
            }
        }
    }
}

fn parse(text: &str) -> Result<Vec<Entry>, Malformed> {
    let mut lexer = Lexer::new(text);
    let mut entries: Vec<Entry> = Vec::new();
    while let Some(token) = lexer.next_token()? {
        let keyword = if token.quoted {
            ""
        } else {
            token.text.as_str()
        };
        match keyword.to_ascii_lowercase().as_str() {
            "machine" => entries.push(Entry {
                machine: match lexer.next_token()? {
                    Some(name) => Machine::Named(name.text),
                    None => Machine::Unnamed,
                },
                login: None,
                password: None,
            }),
            "default" => entries.push(Entry {
                machine: Machine::Default,
                login: None,
                password: None,
            }),
            "macdef" => {
                // A macro ends the entry before it (curl).
                entries.push(Entry {
                    machine: Machine::Unnamed,
                    login: None,
                    password: None,
                });
                lexer.skip_macro();
            }
            field @ ("login" | "password" | "account") => {
                let value = lexer.next_token()?.map(|t| t.text);
                if let Some(e) = entries.last_mut() {
                    match field {
                        "login" => e.login = value,
                        "password" => e.password = value,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(entries)
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map(|(h, _)| &h[1..]).unwrap_or(host);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map(|(h, _)| h)
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(login: &str, password: &str) -> Option<(String, String)> {
        Some((login.into(), password.into()))
    }

    #[test]
    fn machines_match_by_host_and_default_matches_every_host() {
        let text = "machine a.example login alice password one\n\
                    machine b.example\n  login bob\n  password two\n\
                    default login anon password none\n";
        assert_eq!(find(text, "B.example:8443").unwrap(), creds("bob", "two"));
        assert_eq!(find(text, "a.example").unwrap(), creds("alice", "one"));
        assert_eq!(find(text, "c.example").unwrap(), creds("anon", "none"));
        assert_eq!(find("machine a login x password y\n", "b").unwrap(), None);
        let with_macro = "machine m login u password p macdef init\nlogin evil password bad\n\n";
        assert_eq!(find(with_macro, "m").unwrap(), creds("u", "p"));
        // The macro runs to the first empty line; a line of blanks is not one (curl).
        let body = "macdef init\nmachine m login evil password bad\n \n\
                    machine m login evil2 password bad2\n\nmachine m login u password p\n";
        assert_eq!(find(body, "m").unwrap(), creds("u", "p"));
    }

    #[test]
    fn comments_and_quotes_are_read_as_curl_reads_them() {
        // The issue's four cases: none of these gives 127.0.0.1 anything.
        for text in [
            "machine other.example # default for other.example\n login u password p\n",
            "machine other.example login a password b\n# default login u password p\n",
            "machine other.example # was: machine 127.0.0.1\n login u password p\n",
            "  # machine 127.0.0.1 login u password p\n",
        ] {
            assert_eq!(find(text, "127.0.0.1").unwrap(), None, "{text}");
        }
        assert_eq!(
            find("machine h login ci password \"two words\"\n", "h").unwrap(),
            creds("ci", "two words")
        );
        assert_eq!(
            find(r#"machine h login "a b" password "q\"\\\tx\y#""#, "h").unwrap(),
            creds("a b", "q\"\\\txy#")
        );
        // `#` inside a token is part of it; a quoted keyword is just a word.
        assert_eq!(
            find("machine h login u password pa#ss # note\n", "h").unwrap(),
            creds("u", "pa#ss")
        );
        assert_eq!(find("\"default\" login u password p\n", "h").unwrap(), None);
        // A value may be a keyword's spelling, and CRLF files read the same.
        assert_eq!(
            find("machine h\r\nlogin default\r\npassword machine\r\n", "h").unwrap(),
            creds("default", "machine")
        );
        assert_eq!(
            find("machine h login u password \"open\n", "h").unwrap_err(),
            (1, "a quoted token is not closed")
        );
        // The first matching entry with a login or password is the one, as curl.
        let text = "machine h\nmachine h login only\ndefault login d password x\n";
        assert_eq!(find(text, "h").unwrap(), None);
        assert_eq!(find(text, "g").unwrap(), creds("d", "x"));
    }
}
