//! Proxies from the environment, resolved once, by curl's rules, for both HTTP stacks (ureq
//! for `http(s)://` sources and upstream downloads, reqwest inside oci-client for registries):
//! left to themselves the two disagree (ureq takes the first of `ALL_PROXY`, `HTTPS_PROXY`,
//! `HTTP_PROXY` for every scheme; reqwest reads upper case first and does not bypass IP
//! addresses for `NO_PROXY=*`), so neither reads the environment and both ask [`Proxies`].
//!
//! - an `https://` URL uses `https_proxy` / `HTTPS_PROXY`, an `http://` URL `http_proxy` /
//!   `HTTP_PROXY`; `all_proxy` / `ALL_PROXY` is the fallback for both. Lower case first, as
//!   curl; an empty value is unset.
//! - a proxy is `http://[USER:PASSWORD@]HOST[:PORT]` (no scheme means `http://`, no port
//!   1080, as curl). `https://` destinations are tunnelled with `CONNECT`.
//! - `no_proxy` / `NO_PROXY`: comma-separated host names (a name matches itself and its
//!   subdomains; a leading `.` or `*.` is the same), IP addresses, CIDR ranges, or `*` for
//!   every host. A `:PORT` on an entry is ignored: the host goes direct on every port. A
//!   trailing dot on an entry or a host is dropped (curl's rule), for both clients.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::error::{Error, Result};

/// The variables read for each destination scheme, in precedence order.
const HTTPS_VARS: [&str; 4] = ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"];
const HTTP_VARS: [&str; 4] = ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];
const NO_PROXY_VARS: [&str; 2] = ["no_proxy", "NO_PROXY"];

/// curl's port for a proxy given without one.
const DEFAULT_PORT: u16 = 1080;

/// What the environment says about proxies; [`Default`] is none (every host direct).
#[derive(Clone, Default)]
pub struct Proxies {
    https: Option<Arc<Proxy>>,
    http: Option<Arc<Proxy>>,
    no_proxy: Vec<Bypass>,
}

/// One proxy: the URL the clients are given (credentials included), the same without
/// credentials for messages, and the variable it came from.
pub struct Proxy {
    url: String,
    shown: String,
    var: &'static str,
    ureq: ureq::Proxy,
}

/// One `NO_PROXY` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bypass {
    All,
    Ip(IpAddr),
    Net(IpAddr, u8),
    /// Lower case, without a leading or trailing dot.
    Domain(String),
}

impl fmt::Debug for Proxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxies")
            .field("https", &self.https.as_ref().map(|p| p.to_string()))
            .field("http", &self.http.as_ref().map(|p| p.to_string()))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// `the proxy http://***@HOST:PORT (from VAR)`: never the credentials.
impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the proxy {} (from {})", self.shown, self.var)
    }
}

/// `reason` for a request that got no answer of the server's own, naming the proxy it went
/// through, if any (never its credentials), so a dead proxy is not taken for a dead server;
/// when the proxy refused its credentials (407), saying where they go.
pub fn via_proxy(proxy: Option<&Proxy>, reason: String, auth_refused: bool) -> String {
    match proxy {
        Some(p) if auth_refused => format!(
            "{reason} ({p} wants other credentials: give them in {} as USER:PASSWORD@ before its host)",
            p.var
        ),
        Some(p) => format!("{reason} (through {p}: check that proxy, or list the host in NO_PROXY)"),
        None => reason,
    }
}

impl Proxies {
    /// Read the process environment (an unusable proxy value is an input error, exit 2).
    pub fn from_env() -> Result<Proxies> {
        Proxies::from_lookup(|name| std::env::var(name).ok())
    }

    /// Resolve from any lookup of variables by name (the environment, or a test's table).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Proxies> {
        let first = |names: &[&'static str]| {
            names.iter().find_map(|&name| {
                lookup(name)
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .map(|v| (name, v))
            })
        };
        let proxy = |names: &[&'static str]| -> Result<Option<Arc<Proxy>>> {
            first(names)
                .map(|(var, value)| Proxy::parse(var, &value).map(Arc::new))
                .transpose()
        };
        Ok(Proxies {
            https: proxy(&HTTPS_VARS)?,
            http: proxy(&HTTP_VARS)?,
            no_proxy: first(&NO_PROXY_VARS)
                .map(|(_, list)| list.split(',').filter_map(Bypass::parse).collect())
                .unwrap_or_default(),
        })
    }

    /// The proxy `url` goes through, or None for a direct connection.
    pub fn for_url(&self, url: &str) -> Option<&Proxy> {
        let (scheme, rest) = url.split_once("://")?;
        let proxy = match scheme.to_ascii_lowercase().as_str() {
            "https" => self.https.as_deref(),
            "http" => self.http.as_deref(),
            _ => None,
        }?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let host_port = authority.rsplit('@').next().unwrap_or(authority);
        let host = strip_port(host_port);
        (!self.bypassed(host)).then_some(proxy)
    }

    /// The ureq proxy for `url`: None means direct (ureq's own environment lookup is off).
    pub fn ureq_for(&self, url: &str) -> Option<ureq::Proxy> {
        self.for_url(url).map(|p| p.ureq.clone())
    }

    /// oci-client's `(https_proxy, http_proxy, no_proxy)`. reqwest reads the environment by
    /// its own rules unless it is given a proxy, and oci-client cannot tell it not to: with no
    /// proxy at all it gets one that every host bypasses, so the environment is never read.
    pub fn for_oci(&self) -> (Option<String>, Option<String>, Option<String>) {
        if self.https.is_none() && self.http.is_none() {
            return (
                Some(format!("http://127.0.0.1:{DEFAULT_PORT}")),
                None,
                Some(Bypass::All.reqwest()),
            );
        }
        let list: Vec<String> = self.no_proxy.iter().map(Bypass::reqwest).collect();
        (
            self.https.as_ref().map(|p| p.url.clone()),
            self.http.as_ref().map(|p| p.url.clone()),
            (!list.is_empty()).then(|| list.join(",")),
        )
    }

    fn bypassed(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        self.no_proxy.iter().any(|b| match (b, ip) {
            (Bypass::All, _) => true,
            (Bypass::Ip(want), Some(ip)) => *want == ip,
            (Bypass::Net(net, len), Some(ip)) => in_net(ip, *net, *len),
            (Bypass::Domain(d), None) => {
                host == *d
                    || host
                        .strip_suffix(d.as_str())
                        .is_some_and(|head| head.ends_with('.'))
            }
            _ => false,
        })
    }
}

impl Proxy {
    fn parse(var: &'static str, value: &str) -> Result<Proxy> {
        let bad = |why: &str| {
            Error::input(
                format!(
                    "{var}=`{}` is not a usable proxy: {why}",
                    crate::pipeline::source::redact_url(value)
                ),
                format!(
                    "set {var} to `http://HOST:PORT` (with `USER:PASSWORD@` before HOST if the proxy wants credentials), or unset it"
                ),
            )
        };
        let (scheme, rest) = match value.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("http".to_string(), value),
        };
        if scheme != "http" {
            return Err(bad(&format!(
                "the `{scheme}://` proxy scheme is not supported (only http://; https:// destinations are tunnelled through it with CONNECT)"
            )));
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = match host_port.rfind(':') {
            Some(i) if !host_port[..i].contains(':') || host_port[..i].ends_with(']') => {
                (&host_port[..i], Some(&host_port[i + 1..]))
            }
            _ => (host_port, None),
        };
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?,
        };
        let hostname = host.trim_start_matches('[').trim_end_matches(']');
        let host_ok = !hostname.is_empty()
            && (hostname.parse::<IpAddr>().is_ok()
                || hostname
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)));
        if !host_ok {
            return Err(bad("no host name or IP address"));
        }
        let shown = format!(
            "http://{}{host}:{port}",
            if userinfo.is_some() { "***@" } else { "" }
        );
        let url = match userinfo {
            Some(u) => format!("http://{u}@{host}:{port}"),
            None => format!("http://{host}:{port}"),
        };
        let ureq = ureq::Proxy::new(&url).map_err(|e| bad(&e.to_string()))?;
        Ok(Proxy {
            url,
            shown,
            var,
            ureq,
        })
    }
}

impl Bypass {
    fn parse(entry: &str) -> Option<Bypass> {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty() {
            return None;
        }
        if entry == "*" {
            return Some(Bypass::All);
        }
        if let Ok(ip) = entry.parse::<IpAddr>() {
            return Some(Bypass::Ip(ip));
        }
        if let Some((net, len)) = entry.split_once('/') {
            let net = net.parse::<IpAddr>().ok()?;
            let max = if net.is_ipv4() { 32 } else { 128 };
            let len = len.parse::<u8>().ok().filter(|l| *l <= max)?;
            return Some(Bypass::Net(mask(net, len), len));
        }
        let host = strip_port(&entry);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Some(Bypass::Ip(ip));
        }
        let domain = host
            .trim_start_matches("*.")
            .trim_start_matches('.')
            .trim_end_matches('.');
        (!domain.is_empty()).then(|| Bypass::Domain(domain.to_string()))
    }

    /// The same entry in reqwest's `NO_PROXY` syntax, which matches what [`Proxies::bypassed`]
    /// matches (its `*` alone leaves IP addresses proxied, hence the two ranges; it compares
    /// a host's trailing dot literally, where curl and `bypassed` drop it, hence both
    /// spellings of a name).
    fn reqwest(&self) -> String {
        match self {
            Bypass::All => "*,0.0.0.0/0,::/0".into(),
            Bypass::Ip(ip) => ip.to_string(),
            Bypass::Net(net, len) => format!("{net}/{len}"),
            Bypass::Domain(d) => format!("{d},{d}."),
        }
    }
}

/// `HOST` of `HOST[:PORT]` (`[V6]` keeps its brackets; a bare IPv6 address has no port).
fn strip_port(host_port: &str) -> &str {
    if host_port.starts_with('[') {
        return host_port.find(']').map_or(host_port, |i| &host_port[..=i]);
    }
    match host_port.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => host_port,
    }
}

fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6((bits & m).into())
        }
    }
}

fn in_net(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    net.is_ipv4() == ip.is_ipv4() && mask(ip, len) == net
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(vars: &[(&str, &str)]) -> Proxies {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Proxies::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
            .unwrap()
    }

    fn via(p: &Proxies, url: &str) -> Option<String> {
        p.for_url(url).map(|p| p.to_string())
    }

    #[test]
    fn each_scheme_has_its_variable_and_all_proxy_is_the_fallback() {
        let p = resolve(&[("HTTPS_PROXY", "127.0.0.1:3128")]);
        assert_eq!(
            via(&p, "https://h/x").as_deref(),
            Some("the proxy http://127.0.0.1:3128 (from HTTPS_PROXY)")
        );
        assert_eq!(via(&p, "http://h/x"), None);
        let p = resolve(&[("http_proxy", "http://p:8"), ("ALL_PROXY", "http://a:9/")]);
        assert_eq!(
            via(&p, "http://h/x").as_deref(),
            Some("the proxy http://p:8 (from http_proxy)")
        );
        assert_eq!(
            via(&p, "https://h/x").as_deref(),
            Some("the proxy http://a:9 (from ALL_PROXY)")
        );
        // Lower case first; empty is unset; no port is curl's 1080.
        let p = resolve(&[
            ("https_proxy", ""),
            ("HTTPS_PROXY", "http://up"),
            ("all_proxy", "low"),
        ]);
        assert_eq!(
            via(&p, "https://h").as_deref(),
            Some("the proxy http://up:1080 (from HTTPS_PROXY)")
        );
        assert_eq!(p.for_oci().1.as_deref(), Some("http://low:1080"));
    }

    #[test]
    fn no_proxy_names_suffixes_addresses_ranges_and_star() {
        let p = resolve(&[
            ("ALL_PROXY", "http://p:1"),
            (
                "NO_PROXY",
                " example.com, .corp.test,*.wild.test, 10.0.0.0/8, ::1, 192.168.1.7:5000,[fe80::2]:80 ",
            ),
        ]);
        for direct in [
            "https://example.com/x",
            "https://a.EXAMPLE.com:443/x",
            "http://corp.test",
            "http://x.corp.test",
            "http://a.wild.test",
            "http://10.2.3.4:5000/v2/",
            "http://[::1]:5000/v2/",
            "http://192.168.1.7:80/",
            "http://[fe80::2]/",
            "https://user:pw@example.com/x",
        ] {
            assert_eq!(via(&p, direct), None, "{direct}");
        }
        for proxied in [
            "https://notexample.com/x",
            "https://example.com.evil/x",
            "http://11.0.0.1/",
            "http://192.168.1.8/",
            "http://[::2]/",
        ] {
            assert!(via(&p, proxied).is_some(), "{proxied}");
        }
        // A trailing dot on the host or the entry is the same name, for both clients.
        let dotted = resolve(&[("ALL_PROXY", "http://p:1"), ("NO_PROXY", "reg.example.")]);
        assert_eq!(via(&dotted, "https://reg.example.:5000/v2/"), None);
        assert_eq!(via(&dotted, "https://a.REG.example/"), None);
        assert_eq!(
            dotted.for_oci().2.as_deref(),
            Some("reg.example,reg.example."),
            "reqwest compares the trailing dot literally"
        );
        let star = resolve(&[("https_proxy", "http://p:1"), ("no_proxy", "*")]);
        assert_eq!(via(&star, "https://127.0.0.1:5000/"), None);
        assert_eq!(via(&star, "https://any.where/"), None);
        assert_eq!(
            star.for_oci().2.as_deref(),
            Some("*,0.0.0.0/0,::/0"),
            "reqwest's `*` alone would proxy IP addresses"
        );
    }

    #[test]
    fn credentials_stay_out_of_messages_and_bad_values_name_the_variable() {
        let p = resolve(&[("HTTPS_PROXY", "http://u:s3cret@127.0.0.1:8/")]);
        let shown = via(&p, "https://h").unwrap();
        assert!(
            !shown.contains("s3cret") && shown.contains("***@"),
            "{shown}"
        );
        assert!(!format!("{p:?}").contains("s3cret"));
        assert_eq!(
            p.for_oci().0.as_deref(),
            Some("http://u:s3cret@127.0.0.1:8")
        );
        for bad in [
            "socks5://u:s3cret@h:1",
            "http://u:s3cret@h:port",
            "http://u:s3cret@/",
        ] {
            let e = Proxies::from_lookup(|n| (n == "HTTPS_PROXY").then(|| bad.to_string()))
                .unwrap_err()
                .to_string();
            assert!(e.contains("HTTPS_PROXY") && !e.contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn no_proxy_at_all_keeps_reqwest_off_the_environment() {
        let (https, http, no) = Proxies::default().for_oci();
        assert!(https.is_some() && http.is_none());
        assert_eq!(no.as_deref(), Some("*,0.0.0.0/0,::/0"));
    }
}
