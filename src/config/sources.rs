//! The configured registries as fetch sources. Every registry keeps its own settings: plain
//! HTTP only for a registry that says so (one cleartext backup does not downgrade a TLS
//! primary), and its own `auth:` credentials. `--plain-http` is the only switch that turns
//! plain HTTP on for every host, and the caller passes it as `NetOptions::plain_http`.

use super::{Config, RegistryConfig};
use crate::error::Result;
use crate::maintain::tools::Tool;
use crate::pipeline::fetch::HostAccess;
use crate::pipeline::source::Source;

/// `tool`'s repository on every configured registry (primary, then backups, in that order),
/// with the per-host access settings that go into `NetOptions::hosts`.
pub fn registry_sources(config: &Config, tool: &Tool) -> Result<(Vec<Source>, Vec<HostAccess>)> {
    let sources = oci_sources(config, |reg| config.tool_repository(reg, tool));
    Ok((sources, host_access(config)?))
}

/// The repository `repository(reg)` names on every configured registry (primary, then
/// backups). Pair with [`host_access`] for the `NetOptions::hosts` these sources need.
pub fn oci_sources(config: &Config, repository: impl Fn(&RegistryConfig) -> String) -> Vec<Source> {
    config
        .registries()
        .map(|reg| Source::Oci {
            registry: reg.host.clone(),
            repository: repository(reg),
        })
        .collect()
}

/// How to reach each configured registry host: its plain-HTTP switch and its credentials.
/// A host configured twice (two namespaces on one registry) is listed once, as the first
/// registry that names it (the fetcher looks hosts up by name).
pub fn host_access(config: &Config) -> Result<Vec<HostAccess>> {
    // Missing credentials are kept per host and reported only if that host is tried.
    let mut hosts: Vec<HostAccess> = Vec::new();
    for reg in config.registries() {
        if hosts.iter().any(|h| h.host == reg.host) {
            continue;
        }
        hosts.push(HostAccess {
            host: reg.host.clone(),
            plain_http: reg.plain_http,
            plain_http_token_realm: reg.plain_http_token_realm,
            credentials: {
                let reg = reg.clone();
                crate::pipeline::fetch::LazyCredentials::new(move || {
                    reg.credentials().map_err(|e| e.to_string())
                })
            },
        });
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn each_registry_keeps_its_own_transport() {
        let c = Config::parse(
            Path::new("registry.yaml"),
            "primary_registry:\n  url: tls.example\n  namespace: ns\n\
             backup_registries:\n  - name: local\n    url: 127.0.0.1:5000\n    plain_http: true\n    namespace: mirror\n",
        )
        .unwrap();
        let tool = crate::maintain::tools::by_name("protoc").unwrap();
        let (sources, hosts) = registry_sources(&c, tool).unwrap();
        assert_eq!(
            sources,
            vec![
                Source::Oci {
                    registry: "tls.example".into(),
                    repository: "ns/tools/protoc".into(),
                },
                Source::Oci {
                    registry: "127.0.0.1:5000".into(),
                    repository: "mirror/tools/protoc".into(),
                },
            ]
        );
        let plain: Vec<(&str, bool)> = hosts
            .iter()
            .map(|h| (h.host.as_str(), h.plain_http))
            .collect();
        assert_eq!(plain, [("tls.example", false), ("127.0.0.1:5000", true)]);
    }
}
