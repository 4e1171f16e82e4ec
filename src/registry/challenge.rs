//! The pieces of the OCI token protocol protoreg speaks itself (every token request goes
//! through [`super::token`]): the bearer challenge and query escaping.

/// A registry's `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` challenge.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct BearerChallenge {
    pub realm: String,
    pub service: Option<String>,
    pub scope: Option<String>,
}

impl BearerChallenge {
    /// The challenge in a `WWW-Authenticate` value, or None when it is not a bearer one
    /// with a realm. Values are quoted strings (with `\` escapes) or tokens.
    /// The first Bearer challenge among a response's `WWW-Authenticate` headers.
    pub fn of_response<B>(resp: &ureq::http::Response<B>) -> Option<BearerChallenge> {
        resp.headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(BearerChallenge::parse)
    }

    pub fn parse(header: &str) -> Option<BearerChallenge> {
        let (scheme, mut rest) = header.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let (mut realm, mut service, mut scope) = (None, None, None);
        loop {
            rest = rest.trim_start_matches([' ', ',', '\t']);
            if rest.is_empty() {
                break;
            }
            let (name, after) = rest.split_once('=')?;
            let after = after.trim_start();
            let (value, after) = match after.strip_prefix('"') {
                Some(quoted) => {
                    let mut value = String::new();
                    let mut chars = quoted.char_indices();
                    let mut end = None;
                    while let Some((i, c)) = chars.next() {
                        match c {
                            '\\' => value.extend(chars.next().map(|(_, c)| c)),
                            '"' => {
                                end = Some(i + 1);
                                break;
                            }
                            c => value.push(c),
                        }
                    }
                    (value, &quoted[end?..])
                }
                None => {
                    let end = after.find(',').unwrap_or(after.len());
                    (after[..end].trim().to_string(), &after[end..])
                }
            };
            match name.trim().to_ascii_lowercase().as_str() {
                "realm" => realm = Some(value),
                "service" => service = Some(value),
                "scope" => scope = Some(value),
                _ => {}
            }
            rest = after;
        }
        Some(BearerChallenge {
            realm: realm?,
            service,
            scope,
        })
    }
}

/// `value` percent-encoded for a URL's query (unreserved characters kept).
pub(crate) fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_are_parsed_with_quoted_commas() {
        let c = BearerChallenge::parse(
            r#"Bearer realm="http://127.0.0.1:5001/token",service="reg",scope="repository:ns/x:pull,push",error="insufficient_scope""#,
        )
        .unwrap();
        assert_eq!(
            c,
            BearerChallenge {
                realm: "http://127.0.0.1:5001/token".into(),
                service: Some("reg".into()),
                scope: Some("repository:ns/x:pull,push".into()),
            }
        );
        let c =
            BearerChallenge::parse(r#"bearer realm=https://auth.example/t, scope="a\"b""#).unwrap();
        assert_eq!(c.realm, "https://auth.example/t");
        assert_eq!(c.scope.as_deref(), Some("a\"b"));
        assert_eq!(c.service, None);
        assert!(BearerChallenge::parse(r#"Basic realm="x""#).is_none());
        assert!(BearerChallenge::parse(r#"Bearer service="x""#).is_none());
        assert!(BearerChallenge::parse(r#"Bearer realm="unterminated"#).is_none());
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            query_escape("repository:ns/x:pull,push"),
            "repository%3Ans%2Fx%3Apull%2Cpush"
        );
        assert_eq!(query_escape("a b~._-"), "a%20b~._-");
    }
}
