//! What the registry commands share: the configuration (flags, environment, file), the cache
//! directory, the audit log, and connections to the configured registries.

use std::path::PathBuf;

use crate::auth::Credentials;
use crate::cli::Global;
use crate::config::{Config, RegistryConfig};
use crate::error::Result;
use crate::operate::audit::Audit;
use crate::pipeline::store::Store;
use crate::registry::Registry;

pub struct Context {
    pub config: Config,
    pub cache_dir: PathBuf,
    pub audit: Audit,
}

impl Context {
    pub fn load(global: &Global) -> Result<Context> {
        let config = Config::load(global.config.as_deref(), global.plain_http)?;
        let cache_dir = config.cache_dir(global.cache_dir.as_deref())?;
        let audit =
            crate::operate::telemetry::audit_for(&cache_dir, config.security.audit_log.as_deref());
        Ok(Context {
            config,
            cache_dir,
            audit,
        })
    }

    pub fn store(&self) -> Store {
        Store::new(self.cache_dir.clone())
    }

    /// A connection to `reg` with its own credentials.
    pub fn connect(&mut self, reg: &RegistryConfig) -> Result<Registry> {
        let creds = reg.credentials()?;
        self.scrub(&creds);
        Registry::connect(&reg.host, &reg.net()?, Some(creds))
    }

    /// From here on, these credentials' values are scrubbed from the audit log.
    pub fn scrub(&mut self, creds: &Credentials) {
        let secrets: Vec<String> = creds.secrets();
        let audit = std::mem::replace(&mut self.audit, Audit::new(PathBuf::new()));
        self.audit = audit.with_secrets(secrets);
    }
}
