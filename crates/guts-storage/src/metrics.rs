//! Storage metrics: `guts_storage_*` families.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// A static name of the storage operation (`create_repo`, `create_user`, …).
    pub operation: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabels {
    /// `operation`, `repository`, `user`, `token`, `git_object`.
    pub r#type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// `open`, `closed` or (pull requests) `merged`.
    pub state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// `Rejection::reason()` of guts-core: a fixed set of snake_case names.
    pub reason: &'static str,
}

#[derive(Debug)]
pub struct StorageMetrics {
    pub operation_duration: Family<OperationLabels, Histogram>,
    pub objects: Family<TypeLabels, Gauge>,
    pub size_bytes: Gauge,
    pub batch_size: Histogram,
    /// `guts_users_total`: accounts known to this node.
    pub users: Gauge,
    /// `guts_organizations_total`: organizations known to this node.
    pub organizations: Gauge,
    /// `guts_repositories_total`: live (not deleted) repositories.
    pub repositories: Gauge,
    /// `guts_operations_rejected_total{reason}`.
    pub rejected: Family<ReasonLabels, Counter>,
    /// `guts_issues_total{state}`: issues of live repositories.
    pub issues: Family<StateLabels, Gauge>,
    /// `guts_pull_requests_total{state}`: pull requests of live repositories.
    pub pulls: Family<StateLabels, Gauge>,
    /// `guts_repo_cache_hits_total`: reads and writes that found the repository's
    /// state in memory.
    pub cache_hits: Counter,
    /// `guts_repo_cache_misses_total`: ... that had to load it from the store.
    pub cache_misses: Counter,
    /// `guts_repo_cache_evictions_total`: states dropped to stay under the budget.
    pub cache_evictions: Counter,
    /// `guts_repo_cache_bytes`: estimated bytes of repository state in memory.
    pub cache_bytes: Gauge,
    /// `guts_repo_open_duration_seconds`: time to load one repository's state.
    pub open_duration: Histogram,
}

impl StorageMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let this = Self {
            operation_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 2.0, 18))
            }),
            objects: Family::default(),
            size_bytes: Gauge::default(),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            users: Gauge::default(),
            organizations: Gauge::default(),
            repositories: Gauge::default(),
            rejected: Family::default(),
            issues: Family::default(),
            pulls: Family::default(),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            cache_evictions: Counter::default(),
            cache_bytes: Gauge::default(),
            open_duration: Histogram::new(exponential_buckets(0.0001, 2.0, 18)),
        };
        // Domain totals sit at the top level (`guts_users_total`), as DESIGN names them.
        registry.register(
            "users_total",
            "User accounts known to this node",
            this.users.clone(),
        );
        registry.register(
            "organizations_total",
            "Organizations known to this node",
            this.organizations.clone(),
        );
        registry.register(
            "repositories_total",
            "Repositories (not deleted) known to this node",
            this.repositories.clone(),
        );
        registry.register(
            "issues_total",
            "Issues of live repositories, by state",
            this.issues.clone(),
        );
        registry.register(
            "pull_requests_total",
            "Pull requests of live repositories, by state",
            this.pulls.clone(),
        );
        registry.register(
            "operations_rejected",
            "Operations refused by verification or permission checks, by reason",
            this.rejected.clone(),
        );
        let cache = registry.sub_registry_with_prefix("repo");
        cache.register(
            "cache_hits",
            "Repository reads and writes that found its state in memory",
            this.cache_hits.clone(),
        );
        cache.register(
            "cache_misses",
            "Repository reads and writes that loaded its state from the store",
            this.cache_misses.clone(),
        );
        cache.register(
            "cache_evictions",
            "Repository states dropped from memory to stay under GUTS_CACHE_MB",
            this.cache_evictions.clone(),
        );
        cache.register_with_unit(
            "cache",
            "Estimated bytes of repository state held in memory",
            Unit::Bytes,
            this.cache_bytes.clone(),
        );
        cache.register_with_unit(
            "open_duration",
            "Time to load one repository's state from the store",
            Unit::Seconds,
            this.open_duration.clone(),
        );
        let storage = registry.sub_registry_with_prefix("storage");
        storage.register_with_unit(
            "operation_duration",
            "Time for a durable storage operation, queueing and fsync included",
            Unit::Seconds,
            this.operation_duration.clone(),
        );
        storage.register(
            "objects_total",
            "Stored items by type",
            this.objects.clone(),
        );
        storage.register_with_unit(
            "size",
            "Bytes on disk under the data directory",
            Unit::Bytes,
            this.size_bytes.clone(),
        );
        storage.register(
            "commit_batch_size",
            "Writes folded into one durable commit",
            this.batch_size.clone(),
        );
        this
    }

    /// Moves one thread between states: `before` and `after` are `(is_pull, state)`
    /// of the same thread, `None` where it does not exist (or is not counted).
    pub fn move_thread(
        &self,
        before: Option<(bool, &'static str)>,
        after: Option<(bool, &'static str)>,
    ) {
        if before == after {
            return;
        }
        let family = |pull: bool| if pull { &self.pulls } else { &self.issues };
        if let Some((pull, state)) = before {
            family(pull).get_or_create(&StateLabels { state }).dec();
        }
        if let Some((pull, state)) = after {
            family(pull).get_or_create(&StateLabels { state }).inc();
        }
    }

    /// Counts `n` more threads in `(pull, state)`: a repository's counts at open.
    pub fn add_threads(&self, pull: bool, state: &'static str, n: u64) {
        let family = if pull { &self.pulls } else { &self.issues };
        family
            .get_or_create(&StateLabels { state })
            .inc_by(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Walks `dir` and sets `guts_storage_size_bytes`. Blocking (directory walk).
    pub fn measure_size(&self, dir: &std::path::Path) -> u64 {
        let bytes = dir_size(dir);
        self.size_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        bytes
    }

    pub fn observe(&self, operation: &'static str, elapsed: Duration) {
        self.operation_duration
            .get_or_create(&OperationLabels { operation })
            .observe(elapsed.as_secs_f64());
    }
}

/// Bytes in the regular files under `dir` (symlinks not followed; unreadable entries
/// count as 0). Blocking: call it on the blocking pool.
pub fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}
