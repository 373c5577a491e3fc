//! How each type of setting is read from text and written back: one [`Value`] impl
//! per type, shared by every setting of that type, so two settings of one type can
//! never be parsed or shown differently.

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use guts_api::TrustedProxies;
use guts_ops::{LogFormat, LogLevel, Secret};

use super::Seed;

/// A type a setting can have. Both layers (file and environment) arrive as text, so
/// text is the only input; the rendering is what `config check`, error messages and
/// the README's default column show.
pub(super) trait Value: Sized {
    /// What a rule checks: the value itself, each entry of a list, or the value of an
    /// optional (an unset optional has nothing to check).
    type Item;

    /// Secrets are never echoed: not in errors, not by `config check`.
    const SECRET: bool = false;

    /// Parses an operator's text; the error is the rule, e.g. "must be a whole number".
    fn parse(raw: &str) -> Result<Self, String>;

    /// The value as text, `None` when unset; secrets as `<redacted>`.
    fn render(&self) -> Option<String>;

    /// The value as `config check` writes it: typed where TOML has the type, so the
    /// output loads back as a config file.
    fn to_toml(&self) -> Option<toml::Value> {
        self.render().map(toml::Value::String)
    }

    /// The values a rule checks (see [`Value::Item`]).
    fn items(&self) -> &[Self::Item];
}

/// A setting that is always set and checked as a whole.
macro_rules! scalar {
    ($ty:ty, parse: $parse:expr, render: $render:expr $(, toml: $toml:expr)?) => {
        impl Value for $ty {
            type Item = Self;

            fn parse(raw: &str) -> Result<Self, String> {
                $parse(raw)
            }

            fn render(&self) -> Option<String> {
                Some($render(self))
            }

            $(fn to_toml(&self) -> Option<toml::Value> {
                Some($toml(self))
            })?

            fn items(&self) -> &[Self] {
                std::slice::from_ref(self)
            }
        }
    };
}

scalar!(SocketAddr, parse: parse_addr, render: SocketAddr::to_string);
scalar!(
    PathBuf,
    parse: |raw: &str| Ok(PathBuf::from(raw.trim())),
    render: |path: &PathBuf| path.display().to_string()
);
scalar!(String, parse: |raw: &str| Ok(raw.trim().to_string()), render: String::clone);
scalar!(LogLevel, parse: from_str, render: LogLevel::to_string);
scalar!(
    LogFormat,
    parse: from_str,
    render: |format: &LogFormat| format.as_str().to_string()
);
scalar!(u32, parse: parse_number, render: u32::to_string, toml: integer);
scalar!(u64, parse: parse_number, render: u64::to_string, toml: integer);
scalar!(
    bool,
    parse: parse_bool,
    render: bool::to_string,
    toml: |b: &bool| toml::Value::Boolean(*b)
);
scalar!(Seed, parse: Seed::parse, render: Seed::to_string);

impl Value for Secret<String> {
    type Item = Self;
    const SECRET: bool = true;

    fn parse(raw: &str) -> Result<Self, String> {
        Ok(Secret::new(raw.trim().to_string()))
    }

    fn render(&self) -> Option<String> {
        Some(guts_ops::secret::REDACTED.to_string())
    }

    fn items(&self) -> &[Self] {
        std::slice::from_ref(self)
    }
}

/// Empty trusts nobody, which is also what an unset variable means.
impl Value for TrustedProxies {
    type Item = Self;

    fn parse(raw: &str) -> Result<Self, String> {
        TrustedProxies::parse(raw)
    }

    fn render(&self) -> Option<String> {
        (!self.is_empty()).then(|| self.to_string())
    }

    fn items(&self) -> &[Self] {
        std::slice::from_ref(self)
    }
}

/// Empty allows only public addresses, which is also what an unset variable means.
impl Value for guts_service::HookPolicy {
    type Item = Self;

    fn parse(raw: &str) -> Result<Self, String> {
        guts_service::HookPolicy::parse(raw)
    }

    fn render(&self) -> Option<String> {
        (!self.is_default()).then(|| self.to_string())
    }

    fn items(&self) -> &[Self] {
        std::slice::from_ref(self)
    }
}

/// A comma-separated list; blank entries are dropped, so an empty text is an empty
/// list, and a rule checks each entry.
impl Value for Vec<String> {
    type Item = String;

    fn parse(raw: &str) -> Result<Self, String> {
        Ok(raw
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(str::to_string)
            .collect())
    }

    fn render(&self) -> Option<String> {
        (!self.is_empty()).then(|| self.join(","))
    }

    fn items(&self) -> &[String] {
        self
    }
}

/// Empty (or blank) text means unset, which is what an operator means by
/// `GUTS_OTLP_ENDPOINT=` in a manifest.
impl<T: Value> Value for Option<T> {
    type Item = T::Item;
    const SECRET: bool = T::SECRET;

    fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        T::parse(raw).map(Some)
    }

    fn render(&self) -> Option<String> {
        self.as_ref().and_then(T::render)
    }

    fn to_toml(&self) -> Option<toml::Value> {
        self.as_ref().and_then(T::to_toml)
    }

    fn items(&self) -> &[T::Item] {
        self.as_ref().map_or(&[], T::items)
    }
}

fn parse_addr(raw: &str) -> Result<SocketAddr, String> {
    raw.trim()
        .parse()
        .map_err(|_| "must be an IP socket address such as 127.0.0.1:8080".to_string())
}

fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("must be true or false".to_string()),
    }
}

fn parse_number<T: FromStr>(raw: &str) -> Result<T, String> {
    raw.trim()
        .parse()
        .map_err(|_| "must be a whole number".to_string())
}

/// For types whose `FromStr` error already states the rule ("must be one of …").
fn from_str<T>(raw: &str) -> Result<T, String>
where
    T: FromStr,
    T::Err: Display,
{
    raw.parse().map_err(|e: T::Err| e.to_string())
}

/// TOML integers are i64; a larger number (never a valid setting) stays text rather
/// than wrapping.
fn integer<T: Copy + Display + TryInto<i64>>(n: &T) -> toml::Value {
    (*n).try_into()
        .map_or_else(|_| toml::Value::String(n.to_string()), toml::Value::Integer)
}
