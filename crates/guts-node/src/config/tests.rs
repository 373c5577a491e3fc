//! Unit tests of the configuration: layering, every rule, secrets, and the README table
//! and example file kept true to the declarations.

use std::collections::BTreeMap;

use guts_ops::LogLevel;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load_env(pairs: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    Config::load(None, env(pairs))
}

#[test]
fn defaults_need_nothing() {
    let loaded = load_env(&[("PATH", "/bin")]).unwrap();
    assert_eq!(loaded.config, Config::default());
    assert!(loaded.warnings.is_empty());
}

#[test]
fn every_setting_default_matches_the_code() {
    let rendered = Config::default().rendered();
    for s in SETTINGS {
        let actual = rendered.get(s.key).map(String::as_str).unwrap_or("");
        assert_eq!(actual, s.default_text(), "{}", s.key);
        // Every listed setting is handled by apply(), and its default as written in
        // the docs parses back to the default in the code.
        let mut c = Config::default();
        if !s.default_text().is_empty() {
            c.apply(s, &s.default_text()).unwrap();
        }
        assert_eq!(c, Config::default(), "{}: default round-trips", s.key);
    }
    assert_eq!(
        rendered.len(),
        SETTINGS
            .iter()
            .filter(|s| !s.default_text().is_empty())
            .count()
    );
}

#[test]
fn env_overrides_file_overrides_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("guts.toml");
    std::fs::write(
        &path,
        "request_timeout = 7\nlog_level = \"debug\"\napi_addr = \"127.0.0.1:7000\"\n",
    )
    .unwrap();
    let loaded = Config::load(Some(&path), env(&[("GUTS_REQUEST_TIMEOUT", "9")])).unwrap();
    assert_eq!(loaded.config.request_timeout, 9);
    assert_eq!(loaded.config.log_level, LogLevel::Debug);
    assert_eq!(loaded.config.api_addr.port(), 7000);
    assert_eq!(loaded.config.shutdown_timeout, 20);
}

#[test]
fn unknown_file_key_is_an_error_and_unknown_env_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("guts.toml");
    std::fs::write(&path, "request_timeot = 7\n").unwrap();
    let err = Config::load(Some(&path), Vec::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("request_timeot"), "{err}");

    let loaded = load_env(&[("GUTS_LOG_LEVL", "debug"), ("GUTS_CONFIG", "x")]).unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert!(loaded.warnings[0].contains("GUTS_LOG_LEVL"));
}

#[test]
fn invalid_values_name_the_variable_value_and_rule() {
    let cases = [
        ("GUTS_API_ADDR", "localhost:80:80", "socket address"),
        ("GUTS_API_ADDR", "127.0.0.1:0", "port must not be 0"),
        ("GUTS_METRICS_ADDR", "0.0.0.0:0", "port must not be 0"),
        ("GUTS_LOG_LEVEL", "loud", "must be one of"),
        ("GUTS_LOG_FORMAT", "xml", "must be one of"),
        ("GUTS_REQUEST_TIMEOUT", "0", "from 1 to 3600"),
        ("GUTS_SHUTDOWN_TIMEOUT", "-3", "whole number"),
        ("GUTS_MAX_CONNECTIONS", "0", "from 1 to"),
        ("GUTS_MAX_REQUEST_SIZE_MB", "lots", "whole number"),
        ("GUTS_MAX_OBJECT_SIZE_MB", "0", "from 1 to 4096"),
        ("GUTS_MAX_OBJECT_SIZE_MB", "5000", "from 1 to 4096"),
        ("GUTS_MAX_OBJECT_SIZE_MB", "big", "whole number"),
        ("GUTS_RATE_LIMIT_ANONYMOUS_PER_HOUR", "0", "from 1 to"),
        (
            "GUTS_RATE_LIMIT_AUTHENTICATED_PER_HOUR",
            "many",
            "whole number",
        ),
        ("GUTS_RATE_LIMIT_GIT_ANONYMOUS_PER_HOUR", "0", "from 1 to"),
        (
            "GUTS_RATE_LIMIT_GIT_AUTHENTICATED_PER_HOUR",
            "lots",
            "whole number",
        ),
        ("GUTS_GIT_MAX_PER_IP", "0", "from 1 to 1000000"),
        ("GUTS_GIT_MIN_TRANSFER_RATE", "0", "bytes per second"),
        ("GUTS_GIT_MIN_RATE_WINDOW", "0", "from 1 to 3600"),
        ("GUTS_GIT_REQUEST_DEADLINE", "100000", "from 1 to 86400"),
        ("GUTS_OTLP_ENDPOINT", "collector:4317", "http://"),
        (
            "GUTS_TRUSTED_PROXIES",
            "127.0.0.1,10.0.0.0/33",
            "not an IP address or CIDR network",
        ),
        ("GUTS_TRUSTED_PROXIES", "ingress.local", "not an IP address"),
        ("GUTS_OPEN_REGISTRATION", "maybe", "true or false"),
        ("GUTS_P2P_ADDR", "0.0.0.0:9000", "multiaddr"),
        (
            "GUTS_BOOTSTRAP_PEERS",
            "/ip4/10.0.0.1/tcp/9000,guts-1:9000",
            "multiaddr",
        ),
        ("GUTS_MDNS", "sometimes", "true or false"),
        ("GUTS_SEED", "alice", "owner/name"),
        ("GUTS_SEED", "alice/bad name", "repository name"),
        ("GUTS_P2P_TIMEOUT", "0", "from 1 to 600"),
        ("GUTS_RETRY_MAX_ATTEMPTS", "50", "from 1 to 20"),
        ("GUTS_CIRCUIT_BREAKER_THRESHOLD", "0", "from 1 to 1000"),
        ("GUTS_ANTI_ENTROPY_INTERVAL", "soon", "whole number"),
    ];
    for (var, value, rule) in cases {
        let err = load_env(&[(var, value)]).unwrap_err().to_string();
        assert!(err.contains(var), "{var}: {err}");
        assert!(err.contains(&format!("{value:?}")), "{var}: {err}");
        assert!(err.contains(rule), "{var}: {err}");
    }
}

#[test]
fn trusted_proxies_parse_and_show_in_config_check() {
    let config = load_env(&[("GUTS_TRUSTED_PROXIES", " 127.0.0.1, 10.0.0.0/8 ,fd00::/8")])
        .unwrap()
        .config;
    assert!(config.trusted_proxies.contains("10.9.8.7".parse().unwrap()));
    assert!(
        !config
            .trusted_proxies
            .contains("192.168.0.1".parse().unwrap())
    );
    let dump = config.to_redacted_toml();
    assert!(
        dump.contains(r#"trusted_proxies = "127.0.0.1,10.0.0.0/8,fd00::/8""#),
        "{dump}"
    );
    // Empty, as the ConfigMap spells "unset", trusts nobody.
    let none = load_env(&[("GUTS_TRUSTED_PROXIES", "")]).unwrap().config;
    assert!(none.trusted_proxies.is_empty());
    assert!(!none.to_redacted_toml().contains("trusted_proxies"));
}

#[test]
fn replication_settings_parse() {
    let loaded = load_env(&[
        (
            "GUTS_BOOTSTRAP_PEERS",
            " /dns4/guts-0.guts-headless/tcp/9000 ,, /ip4/10.0.0.2/tcp/9000/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
        ),
        ("GUTS_SEED", "Alice/*, bob/tools"),
        ("GUTS_MDNS", "yes"),
    ])
    .unwrap()
    .config;
    assert_eq!(loaded.bootstrap_peers.len(), 2);
    assert_eq!(
        loaded.bootstrap_peers[0],
        "/dns4/guts-0.guts-headless/tcp/9000"
    );
    assert!(loaded.mdns);
    assert!(loaded.seed.covers("alice", "anything"));
    assert!(loaded.seed.covers("BOB", "Tools"));
    assert!(!loaded.seed.covers("bob", "other"));
    assert!(!loaded.seed.covers("carol", "tools"));
    assert!(Seed::All.covers("anyone", "anything"));
    assert_eq!(loaded.seed.to_string(), "alice/*,bob/tools");
}

#[test]
fn secrets_are_never_echoed() {
    let key = "a".repeat(63);
    let err = load_env(&[("GUTS_PRIVATE_KEY", &key)])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("GUTS_PRIVATE_KEY") && err.contains("64 hex"),
        "{err}"
    );
    assert!(!err.contains(&key), "{err}");

    let err = load_env(&[("GUTS_ADMIN_TOKEN", "short-secret")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("GUTS_ADMIN_TOKEN") && !err.contains("short-secret"),
        "{err}"
    );

    let good_key = "b".repeat(64);
    let loaded = load_env(&[
        ("GUTS_PRIVATE_KEY", &good_key),
        ("GUTS_ADMIN_TOKEN", "a-long-enough-admin-token"),
    ])
    .unwrap();
    let dump = loaded.config.to_redacted_toml();
    assert!(
        !dump.contains(&good_key) && !dump.contains("a-long-enough"),
        "{dump}"
    );
    assert!(dump.contains("private_key = \"<redacted>\""), "{dump}");
    assert!(!format!("{:?}", loaded.config).contains(&good_key));
}

#[test]
fn empty_optional_means_unset() {
    let loaded = load_env(&[("GUTS_OTLP_ENDPOINT", ""), ("GUTS_PRIVATE_KEY", " ")]).unwrap();
    assert_eq!(loaded.config.otlp_endpoint, None);
    assert!(loaded.config.private_key.is_none());
}

#[test]
fn redacted_dump_is_loadable_toml() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("effective.toml");
    let config = load_env(&[("GUTS_REQUEST_TIMEOUT", "12")]).unwrap().config;
    std::fs::write(&path, config.to_redacted_toml()).unwrap();
    let again = Config::load(Some(&path), Vec::new()).unwrap().config;
    assert_eq!(again, config);
}

/// The README table, the example file and SETTINGS must agree: a setting is
/// documented once, everywhere, with the same default.
#[test]
fn readme_and_example_file_match_settings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut table: BTreeMap<String, String> = BTreeMap::new();
    for line in readme.lines().filter(|l| l.starts_with("| `GUTS_")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let var = cells[1].trim_matches('`').to_string();
        let default = cells[2].trim_matches('`').to_string();
        table.insert(
            var,
            if default == "unset" {
                String::new()
            } else {
                default
            },
        );
    }
    let expected: BTreeMap<String, String> = SETTINGS
        .iter()
        .map(|s| (s.env_var(), s.default_text()))
        .collect();
    assert_eq!(table, expected, "README.md configuration table");

    let example_path = root.join("config/guts.example.toml");
    let example = std::fs::read_to_string(&example_path).unwrap();
    for s in SETTINGS {
        let set = example
            .lines()
            .any(|l| l.starts_with(&format!("{} = ", s.key)));
        let commented = example
            .lines()
            .any(|l| l.starts_with(&format!("# {} = ", s.key)));
        assert!(
            set ^ commented,
            "{} must appear exactly once, set or commented",
            s.key
        );
        assert_eq!(
            set,
            !s.default_text().is_empty(),
            "{}: set iff it has a default",
            s.key
        );
    }
    let loaded = Config::load(Some(&example_path), Vec::new()).unwrap();
    assert_eq!(
        loaded.config,
        Config::default(),
        "the example file sets the defaults"
    );
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The README's settings table, as the declarations say it: variable, default
/// (`unset` when there is none) and the one-line doc.
fn readme_table() -> String {
    let mut table = String::from("| Variable | Default | Meaning |\n|---|---|---|");
    for s in SETTINGS {
        let default = match s.default_text() {
            d if d.is_empty() => "unset".to_string(),
            d => format!("`{d}`"),
        };
        table.push_str(&format!("\n| `{}` | {default} | {} |", s.env_var(), s.doc));
    }
    table
}

/// The README table is generated from the declarations. When it is out of date this
/// test writes the new table into README.md and fails, so the fix is to run the test
/// once and commit the file (as rust-analyzer's generated-docs tests do); nobody
/// edits the table by hand.
#[test]
fn readme_table_is_generated_from_the_declarations() {
    let path = workspace_root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme
        .find("| Variable | Default | Meaning |")
        .expect("README.md has a settings table");
    let len = readme[start..].find("\n\n").unwrap_or(readme.len() - start);
    let expected = readme_table();
    if readme[start..start + len] != expected {
        let updated = format!("{}{expected}{}", &readme[..start], &readme[start + len..]);
        std::fs::write(&path, updated).unwrap();
        panic!("README.md's settings table was out of date: regenerated, review and commit it");
    }
}

/// The example file documents the settings in the order they are declared, so a
/// reader can follow it next to the README table.
#[test]
fn example_file_follows_the_declarations() {
    let example =
        std::fs::read_to_string(workspace_root().join("config/guts.example.toml")).unwrap();
    let keys: Vec<&str> = example
        .lines()
        .filter_map(|l| l.strip_prefix("# ").or(Some(l)))
        .filter_map(|l| l.split_once(" = ").map(|(key, _)| key))
        .filter(|key| SETTINGS.iter().any(|s| s.key == *key))
        .collect();
    let declared: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
    assert_eq!(keys, declared);
}

/// A commented-out line in the example file shows how to set an optional setting;
/// uncommented it must be accepted (secrets show a placeholder instead).
#[test]
fn example_file_samples_are_valid() {
    let example =
        std::fs::read_to_string(workspace_root().join("config/guts.example.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for s in SETTINGS.iter().filter(|s| !s.secret) {
        let Some(sample) = example
            .lines()
            .find_map(|l| l.strip_prefix(&format!("# {} = ", s.key)))
        else {
            continue;
        };
        let path = dir.path().join(format!("{}.toml", s.key));
        std::fs::write(&path, format!("{} = {sample}\n", s.key)).unwrap();
        let loaded = Config::load(Some(&path), Vec::new());
        assert!(loaded.is_ok(), "{} = {sample}: {loaded:?}", s.key);
    }
}
