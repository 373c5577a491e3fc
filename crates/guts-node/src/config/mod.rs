//! The node's configuration: embedded defaults, overridden by an optional TOML file
//! (`--config` / `GUTS_CONFIG`), overridden by `GUTS_*` environment variables.
//!
//! Each setting is declared once, in `settings.rs` (name, type, default, rule, one-line
//! doc); the declaration yields the [`Config`] field and a [`Setting`] in [`SETTINGS`].
//! Both layers arrive as text and go through that setting's parser (`Config::apply`),
//! then every setting's rule is checked. Every failure names the variable, shows the
//! value (unless it is a secret) and states the rule, so a bad deployment fails at
//! start-up with one readable line instead of misbehaving later. The README table is
//! generated from [`SETTINGS`] and the example file is tested against it.

mod rules;
mod seed;
mod settings;
mod value;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use validator::ValidationError;

pub use seed::Seed;
pub use settings::{Config, SETTINGS};

/// One setting: TOML key `key`, environment variable `GUTS_<KEY>`. Built only by the
/// declarations in `settings.rs`; the functions reach the field the declaration made.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub key: &'static str,
    /// Secrets are never echoed: not in errors, not by `config check`.
    pub secret: bool,
    /// One line, as in the README table.
    pub doc: &'static str,
    /// Parses the text into the field; the error is the rule that was broken.
    parse: fn(&mut Config, &str) -> Result<(), String>,
    /// The field as text (`None` when unset); secrets as `<redacted>`.
    render: fn(&Config) -> Option<String>,
    /// The field as `config check` writes it.
    to_toml: fn(&Config) -> Option<toml::Value>,
    /// The field's rule.
    check: fn(&Config) -> Result<(), ValidationError>,
}

impl Setting {
    pub fn env_var(&self) -> String {
        format!("GUTS_{}", self.key.to_ascii_uppercase())
    }

    /// The default as text, as the README and the example file write it; empty when
    /// unset. Rendered from [`Config::default`], so it cannot disagree with the code.
    pub fn default_text(&self) -> String {
        (self.render)(&Config::default()).unwrap_or_default()
    }

    fn named(key: &str) -> Option<&'static Setting> {
        SETTINGS.iter().find(|s| s.key == key)
    }
}

/// Environment variables that are read, but are not settings.
const OTHER_VARS: &[&str] = &["GUTS_CONFIG"];

/// Why the configuration was refused. Exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting's value broke its rule. `value` is `None` for secrets.
    #[error("invalid configuration: {var}{}: {rule}", value.as_ref().map(|v| format!("={v:?}")).unwrap_or_else(|| " (value hidden)".to_string()))]
    Invalid {
        var: String,
        value: Option<String>,
        rule: String,
    },
    #[error("invalid configuration: cannot read config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("invalid configuration: unknown key {key:?} in config file {path}")]
    UnknownFileKey { path: PathBuf, key: String },
    #[error("invalid configuration: cannot read GUTS_* environment: {0}")]
    Env(String),
}

/// A loaded configuration and what was noticed on the way (unknown variables).
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

fn invalid(setting: &Setting, raw: &str, rule: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var: setting.env_var(),
        value: (!setting.secret).then(|| raw.to_string()),
        rule: rule.into(),
    }
}

impl Config {
    /// Loads defaults, then `file` (if any), then the `GUTS_*` variables among `env`.
    /// `env` is passed in rather than read, so tests need not touch the process
    /// environment.
    pub fn load<I>(file: Option<&Path>, env: I) -> Result<Loaded, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut config = Config::default();
        if let Some(path) = file {
            for (key, raw) in read_file(path)? {
                let setting = Setting::named(&key).ok_or_else(|| ConfigError::UnknownFileKey {
                    path: path.to_path_buf(),
                    key: key.clone(),
                })?;
                config.apply(setting, &raw)?;
            }
        }

        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("GUTS_") && !OTHER_VARS.contains(&k.as_str()))
            .collect();
        let vars: HashMap<String, String> = envy::prefixed("GUTS_")
            .from_iter(env)
            .map_err(|e| ConfigError::Env(e.to_string()))?;
        let mut warnings = Vec::new();
        let mut keys: Vec<_> = vars.keys().collect();
        keys.sort();
        for key in keys {
            let raw = &vars[key];
            match Setting::named(key) {
                Some(setting) => config.apply(setting, raw)?,
                None => warnings.push(format!(
                    "unknown environment variable GUTS_{} is ignored",
                    key.to_ascii_uppercase()
                )),
            }
        }

        config.check()?;
        Ok(Loaded { config, warnings })
    }

    /// Parses one setting's text into its field.
    fn apply(&mut self, setting: &Setting, raw: &str) -> Result<(), ConfigError> {
        (setting.parse)(self, raw).map_err(|rule| invalid(setting, raw, rule))
    }

    /// Checks every setting's rule and turns the first failure (in [`SETTINGS`] order,
    /// so the message is deterministic) into a [`ConfigError::Invalid`].
    fn check(&self) -> Result<(), ConfigError> {
        for setting in SETTINGS {
            if let Err(error) = (setting.check)(self) {
                let rule = error
                    .message
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "is invalid".to_string());
                let value = (setting.render)(self).unwrap_or_default();
                return Err(invalid(setting, &value, rule));
            }
        }
        Ok(())
    }

    /// Every setting as text, secrets as `<redacted>`, unset optionals absent.
    pub fn rendered(&self) -> BTreeMap<&'static str, String> {
        SETTINGS
            .iter()
            .filter_map(|s| Some((s.key, (s.render)(self)?)))
            .collect()
    }

    /// The effective configuration as TOML, secrets redacted: `config check`'s output.
    pub fn to_redacted_toml(&self) -> String {
        let table: toml::Table = SETTINGS
            .iter()
            .filter_map(|s| Some((s.key.to_string(), (s.to_toml)(self)?)))
            .collect();
        toml::to_string(&table).unwrap_or_default()
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout)
    }

    pub fn max_body_bytes(&self) -> usize {
        (self.max_request_size_mb as usize).saturating_mul(1024 * 1024)
    }

    pub fn git_min_rate_window(&self) -> Duration {
        Duration::from_secs(self.git_min_rate_window)
    }

    pub fn git_request_deadline(&self) -> Duration {
        Duration::from_secs(self.git_request_deadline)
    }

    pub fn p2p_timeout(&self) -> Duration {
        Duration::from_secs(self.p2p_timeout)
    }

    pub fn anti_entropy_interval(&self) -> Duration {
        Duration::from_secs(self.anti_entropy_interval)
    }

    /// `GUTS_CACHE_MB` in bytes.
    pub fn cache_bytes(&self) -> usize {
        (self.cache_mb as usize).saturating_mul(1024 * 1024)
    }

    pub fn max_push_bytes(&self) -> u64 {
        u64::from(self.max_push_size_mb).saturating_mul(1024 * 1024)
    }

    /// `GUTS_MAX_OBJECT_SIZE_MB` in bytes: what receive-pack and replication pass to
    /// gix as the largest allocation one object may cause.
    pub fn max_object_bytes(&self) -> usize {
        (self.max_object_size_mb as usize).saturating_mul(1024 * 1024)
    }
}

/// Reads a TOML file into `key -> text`, through the `config` crate (which also gives
/// us its file handling and error messages with line numbers).
fn read_file(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let file_error = |reason: String| ConfigError::File {
        path: path.to_path_buf(),
        reason,
    };
    let source = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .build()
        .map_err(|e| file_error(e.to_string()))?;
    let table: HashMap<String, config::Value> = source
        .try_deserialize()
        .map_err(|e| file_error(e.to_string()))?;
    let mut out = Vec::with_capacity(table.len());
    for (key, value) in table {
        let text = value
            .into_string()
            .map_err(|e| file_error(format!("{key}: {e}")))?;
        out.push((key, text));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests;
