//! `.netrc` (`$NETRC`, else `~/.netrc`): login and password per machine, as curl and Git read
//! it, for `http(s)://` sources and registries. Entries are per host (a port is not part of
//! a machine name); `default` applies to hosts no `machine` names.

use std::path::PathBuf;

/// (login, password) for `host` (a port, if any, is ignored), if the file has them.
pub fn lookup(host: &str) -> Option<(String, String)> {
    let path = std::env::var_os("NETRC")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| crate::sys::home_dir().map(|h| h.join(crate::sys::NETRC)))?;
    // A .netrc is a few lines; anything larger is not one.
    let meta = std::fs::metadata(&path).ok()?;
    if meta.len() > 1 << 20 {
        return None;
    }
    find(&std::fs::read_to_string(path).ok()?, host)
}

/// The entry for `host` in netrc `text`: its `machine`, else `default`.
pub fn find(text: &str, host: &str) -> Option<(String, String)> {
    let name = strip_port(host);
    let entries = parse(text);
    let usable = |e: &&Entry| e.login.is_some() && e.password.is_some();
    let entry = entries
        .iter()
        .filter(usable)
        .find(|e| e.machine.as_deref() == Some(name))
        .or_else(|| entries.iter().filter(usable).find(|e| e.machine.is_none()))?;
    Some((entry.login.clone()?, entry.password.clone()?))
}

/// One `machine` (or, with no machine, the `default`) entry.
struct Entry {
    machine: Option<String>,
    login: Option<String>,
    password: Option<String>,
}

fn parse(text: &str) -> Vec<Entry> {
    // A `macdef` runs to the next blank line; its words are not credentials.
    let mut kept = String::new();
    let mut in_macro = false;
    for line in text.lines() {
        if in_macro {
            in_macro = !line.trim().is_empty();
            continue;
        }
        let mut words = line.split_whitespace();
        if let Some(at) = words.position(|w| w == "macdef") {
            in_macro = true;
            let before: Vec<&str> = line.split_whitespace().take(at).collect();
            kept.push_str(&before.join(" "));
        } else {
            kept.push_str(line);
        }
        kept.push('\n');
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut tokens = kept.split_whitespace();
    while let Some(t) = tokens.next() {
        match t {
            "machine" | "default" => entries.push(Entry {
                machine: if t == "machine" {
                    tokens.next().map(str::to_string)
                } else {
                    None
                },
                login: None,
                password: None,
            }),
            "login" | "password" | "account" => {
                let value = tokens.next().map(str::to_string);
                if let Some(e) = entries.last_mut() {
                    match t {
                        "login" => e.login = value,
                        "password" => e.password = value,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    entries
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

    #[test]
    fn machines_match_by_host_and_default_is_the_fallback() {
        let text = "machine a.example login alice password one\n\
                    machine b.example\n  login bob\n  password two\n\
                    default login anon password none\n";
        assert_eq!(
            find(text, "b.example:8443"),
            Some(("bob".into(), "two".into()))
        );
        assert_eq!(
            find(text, "a.example"),
            Some(("alice".into(), "one".into()))
        );
        assert_eq!(
            find(text, "c.example"),
            Some(("anon".into(), "none".into()))
        );
        assert_eq!(find("machine a login x password y\n", "b"), None);
        let with_macro = "machine m login u password p macdef init\nlogin evil password bad\n\n";
        assert_eq!(find(with_macro, "m"), Some(("u".into(), "p".into())));
    }
}
