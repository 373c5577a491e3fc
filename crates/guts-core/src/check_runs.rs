//! Check runs: what a CI tool reports about a commit through GitHub's checks API
//! (`Payload::CreateCheckRun`, `Payload::UpdateCheckRun`), kept per run, and the rules
//! the fold applies to them.
//!
//! A run is created by one signed operation and changed by later ones, each by a
//! writer (GitHub requires push access), so a run created on one node is folded
//! identically on every node. Its id is the creating operation's ([`OpId::numeric`]
//! gives GitHub's integer). Updates are applied in fold order: two concurrent updates
//! of one run resolve the same way everywhere. Everything one operation can make the
//! fold hold is bounded: each field by the caps below, the runs of one commit by
//! [`MAX_CHECK_RUNS_PER_COMMIT`], and their output text by
//! [`MAX_OUTPUT_BYTES_PER_COMMIT`]; beyond them the fold refuses.

use std::collections::{BTreeMap, BTreeSet};

use crate::checks::{MAX_TARGET_URL_BYTES, encode_opt};
use crate::codec::{DecodeError, EncodeError, Reader, Writer, encode_opt_str as opt_str};
use crate::fold::Rejection;
use crate::hlc::Hlc;
use crate::identity::PublicKey;
use crate::ids::{ObjectId, OpId};

/// Longest check run name, in bytes (GitHub's required-check contexts are as long).
pub const MAX_CHECK_NAME_BYTES: usize = 255;
/// Longest external id, in bytes.
pub const MAX_EXTERNAL_ID_BYTES: usize = 255;
/// Longest output title, in bytes.
pub const MAX_TITLE_BYTES: usize = 1024;
/// Longest output summary or text, in characters (GitHub's limit).
pub const MAX_OUTPUT_CHARS: usize = 65_535;
/// Longest output summary or text in bytes: what the codec bounds.
pub const MAX_OUTPUT_BYTES: usize = MAX_OUTPUT_CHARS * 4;
/// Check runs one commit may carry.
pub const MAX_CHECK_RUNS_PER_COMMIT: usize = 1000;
/// Output text (titles, summaries, texts) of the runs of one commit, all together:
/// without it, a thousand runs of half a megabyte each.
pub const MAX_OUTPUT_BYTES_PER_COMMIT: usize = 8 * 1024 * 1024;
/// Latest timestamp a run may carry (9999-12-31T23:59:59Z), in seconds: what an ISO
/// 8601 timestamp can spell.
pub const MAX_TIMESTAMP: u64 = 253_402_300_799;

/// Where a check run is in its life, as GitHub spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckStatus {
    Queued,
    InProgress,
    Completed,
}

impl CheckStatus {
    pub const ALL: [CheckStatus; 3] = [
        CheckStatus::Queued,
        CheckStatus::InProgress,
        CheckStatus::Completed,
    ];

    /// GitHub's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Queued => "queued",
            CheckStatus::InProgress => "in_progress",
            CheckStatus::Completed => "completed",
        }
    }

    /// The status GitHub spells `text`.
    pub fn parse(text: &str) -> Option<CheckStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Its tag in the codec and the state encoding.
    pub(crate) fn tag(self) -> u8 {
        match self {
            CheckStatus::Queued => 1,
            CheckStatus::InProgress => 2,
            CheckStatus::Completed => 3,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Option<CheckStatus> {
        Self::ALL.into_iter().find(|s| s.tag() == tag)
    }
}

/// How a completed check run ended, as GitHub spells it (`stale` is GitHub's own and
/// cannot be set through its API, so it is not one here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Conclusion {
    ActionRequired,
    Cancelled,
    Failure,
    Neutral,
    Success,
    Skipped,
    TimedOut,
}

impl Conclusion {
    pub const ALL: [Conclusion; 7] = [
        Conclusion::ActionRequired,
        Conclusion::Cancelled,
        Conclusion::Failure,
        Conclusion::Neutral,
        Conclusion::Success,
        Conclusion::Skipped,
        Conclusion::TimedOut,
    ];

    /// GitHub's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Conclusion::ActionRequired => "action_required",
            Conclusion::Cancelled => "cancelled",
            Conclusion::Failure => "failure",
            Conclusion::Neutral => "neutral",
            Conclusion::Success => "success",
            Conclusion::Skipped => "skipped",
            Conclusion::TimedOut => "timed_out",
        }
    }

    /// The conclusion GitHub spells `text`.
    pub fn parse(text: &str) -> Option<Conclusion> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// Whether a required check that ended so passes (GitHub's rule: success, neutral
    /// or skipped).
    pub fn passes(self) -> bool {
        matches!(
            self,
            Conclusion::Success | Conclusion::Neutral | Conclusion::Skipped
        )
    }

    pub(crate) fn tag(self) -> u8 {
        match self {
            Conclusion::ActionRequired => 1,
            Conclusion::Cancelled => 2,
            Conclusion::Failure => 3,
            Conclusion::Neutral => 4,
            Conclusion::Success => 5,
            Conclusion::Skipped => 6,
            Conclusion::TimedOut => 7,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Option<Conclusion> {
        Self::ALL.into_iter().find(|c| c.tag() == tag)
    }
}

/// A run's output as GitHub's `output` object takes it: a title and a summary, both
/// required when output is given, and optional details.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckOutput {
    pub title: String,
    pub summary: String,
    pub text: Option<String>,
}

impl CheckOutput {
    fn bytes(&self) -> usize {
        self.title.len() + self.summary.len() + self.text.as_ref().map_or(0, String::len)
    }
}

/// The fields a create or an update carries; `None` leaves a field as it is (on
/// create: absent). Times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CheckRunFields {
    /// Required to create.
    pub name: Option<String>,
    pub status: Option<CheckStatus>,
    /// Setting one completes the run (GitHub's rule).
    pub conclusion: Option<Conclusion>,
    pub started_at: Option<u64>,
    pub completed_at: Option<u64>,
    pub details_url: Option<String>,
    pub external_id: Option<String>,
    /// Replaces the whole output.
    pub output: Option<CheckOutput>,
}

/// One check run as folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRun {
    /// The commit it checks.
    pub head: ObjectId,
    pub name: String,
    pub status: CheckStatus,
    /// Set exactly when the run is completed.
    pub conclusion: Option<Conclusion>,
    pub started_at: Option<u64>,
    pub completed_at: Option<u64>,
    pub details_url: Option<String>,
    pub external_id: Option<String>,
    pub output: Option<CheckOutput>,
    pub creator: PublicKey,
    pub created: Hlc,
    /// The last operation that changed it.
    pub updated: Hlc,
    /// The creating operation: its id names the run.
    pub op: OpId,
}

impl CheckRun {
    /// Whether it is `name` (names compare case-insensitively, as contexts do).
    pub fn is_named(&self, name: &str) -> bool {
        self.name.to_lowercase() == name.to_lowercase()
    }
}

/// Every check run of a repository, by creating operation, with two indexes derived
/// from them (never encoded: they follow from the runs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckRuns {
    pub runs: BTreeMap<OpId, CheckRun>,
    /// The runs of each commit.
    by_commit: BTreeMap<ObjectId, BTreeSet<OpId>>,
    /// GitHub's integer id of each run.
    by_number: BTreeMap<u64, OpId>,
}

/// Who wrote an operation, and when: what a run records of it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Author {
    pub(crate) key: PublicKey,
    pub(crate) at: Hlc,
    pub(crate) op: OpId,
}

impl CheckRuns {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The run GitHub's integer `id` names.
    pub fn by_number(&self, id: u64) -> Option<&CheckRun> {
        self.runs.get(self.by_number.get(&id)?)
    }

    /// Every run of `commit`, newest first (by creation).
    pub fn of_commit(&self, commit: &ObjectId) -> Vec<&CheckRun> {
        let mut runs: Vec<&CheckRun> = self
            .by_commit
            .get(commit)
            .into_iter()
            .flatten()
            .filter_map(|op| self.runs.get(op))
            .collect();
        runs.sort_by_key(|r| std::cmp::Reverse((r.created, r.op)));
        runs
    }

    /// The latest run of each name on `commit`, newest first: what GitHub's
    /// `filter=latest` lists and what required checks read.
    pub fn latest(&self, commit: &ObjectId) -> Vec<&CheckRun> {
        let mut seen = BTreeSet::new();
        self.of_commit(commit)
            .into_iter()
            .filter(|r| seen.insert(r.name.to_lowercase()))
            .collect()
    }

    /// The latest run named `name` on `commit`.
    pub fn latest_named(&self, commit: &ObjectId, name: &str) -> Option<&CheckRun> {
        self.of_commit(commit)
            .into_iter()
            .find(|r| r.is_named(name))
    }

    /// The fold's rule for `CreateCheckRun` (the caller checked the write role).
    pub(crate) fn create(
        &mut self,
        head: ObjectId,
        fields: &CheckRunFields,
        by: Author,
    ) -> Result<(), Rejection> {
        let name = fields
            .name
            .clone()
            .ok_or(Rejection::InvalidText { field: "name" })?;
        let run = CheckRun {
            head,
            name,
            status: CheckStatus::Queued,
            conclusion: None,
            started_at: Some(by.at.wall_ms / 1000),
            completed_at: None,
            details_url: None,
            external_id: None,
            output: None,
            creator: by.key,
            created: by.at,
            updated: by.at,
            op: by.op,
        };
        let run = patched(run, fields, by.at)?;
        let number = by.op.numeric();
        if self.by_number.contains_key(&number) {
            return Err(Rejection::InvalidText {
                field: "check_run_id",
            });
        }
        let ops = self.by_commit.get(&head);
        if ops.map_or(0, BTreeSet::len) >= MAX_CHECK_RUNS_PER_COMMIT {
            return Err(Rejection::TooMany {
                field: "check_runs",
            });
        }
        self.within_budget(&run, None)?;
        self.by_commit.entry(head).or_default().insert(by.op);
        self.by_number.insert(number, by.op);
        self.runs.insert(by.op, run);
        Ok(())
    }

    /// The fold's rule for `UpdateCheckRun` (the caller checked the write role).
    pub(crate) fn update(
        &mut self,
        run: &OpId,
        fields: &CheckRunFields,
        at: Hlc,
    ) -> Result<(), Rejection> {
        let old = self.runs.get(run).ok_or(Rejection::NoSuchCheckRun)?;
        let new = patched(old.clone(), fields, at)?;
        self.within_budget(&new, Some(run))?;
        self.runs.insert(*run, new);
        Ok(())
    }

    /// Whether the output of `commit`'s runs stays within
    /// [`MAX_OUTPUT_BYTES_PER_COMMIT`] with `run` (replacing `replacing`).
    fn within_budget(&self, run: &CheckRun, replacing: Option<&OpId>) -> Result<(), Rejection> {
        let others: usize = self
            .by_commit
            .get(&run.head)
            .into_iter()
            .flatten()
            .filter(|op| Some(*op) != replacing)
            .filter_map(|op| self.runs.get(op)?.output.as_ref())
            .map(CheckOutput::bytes)
            .sum();
        let own = run.output.as_ref().map_or(0, CheckOutput::bytes);
        if others + own > MAX_OUTPUT_BYTES_PER_COMMIT {
            return Err(Rejection::TooMany { field: "output" });
        }
        Ok(())
    }

    /// The runs `runs` (each keyed by its `op`), with the indexes derived from them
    /// rebuilt: what decoding a state needs. Refuses two runs of one numeric id, which
    /// the fold never holds (it refuses the second).
    pub(crate) fn from_runs(runs: BTreeMap<OpId, CheckRun>) -> Result<CheckRuns, DecodeError> {
        let mut by_commit: BTreeMap<ObjectId, BTreeSet<OpId>> = BTreeMap::new();
        let mut by_number = BTreeMap::new();
        for (op, run) in &runs {
            if by_number.insert(op.numeric(), *op).is_some() {
                return Err(DecodeError::NotCanonical {
                    field: "check run id",
                });
            }
            by_commit.entry(run.head).or_default().insert(*op);
        }
        Ok(CheckRuns {
            runs,
            by_commit,
            by_number,
        })
    }

    /// Appends the canonical encoding of every run (the state's own section).
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.long_count(self.runs.len());
        for (op, run) in &self.runs {
            w.fixed(op.as_bytes());
            w.fixed(run.head.as_bytes());
            w.long_bytes(run.name.as_bytes());
            w.u8(run.status.tag());
            let conclusion = run.conclusion.map(Conclusion::tag);
            tags_and_times(w, &[conclusion], [run.started_at, run.completed_at]);
            for text in [&run.details_url, &run.external_id] {
                encode_opt(w, text.as_deref());
            }
            w.option_tag(run.output.is_some());
            if let Some(output) = &run.output {
                w.long_bytes(output.title.as_bytes());
                w.long_bytes(output.summary.as_bytes());
                encode_opt(w, output.text.as_deref());
            }
            w.fixed(run.creator.as_bytes());
            w.hlc(run.created);
            w.hlc(run.updated);
        }
    }
}

/// Optional tags (a status, a conclusion) then the two optional times: spelled alike
/// in a payload and in the state.
fn tags_and_times(w: &mut Writer, tags: &[Option<u8>], times: [Option<u64>; 2]) {
    for tag in tags {
        w.option_tag(tag.is_some());
        if let Some(tag) = tag {
            w.u8(*tag);
        }
    }
    for time in times {
        w.option_tag(time.is_some());
        if let Some(time) = time {
            w.u64(time);
        }
    }
}

/// `run` with `fields` applied at `at`, checked: a conclusion completes the run, a
/// completed run has a conclusion (GitHub's 422 otherwise), a run moved back to queued
/// or in progress loses its conclusion, and a run completed without a time is
/// completed at `at`.
fn patched(mut run: CheckRun, fields: &CheckRunFields, at: Hlc) -> Result<CheckRun, Rejection> {
    validate_fields(fields)?;
    if let Some(name) = &fields.name {
        run.name.clone_from(name);
    }
    if let Some(status) = fields.status {
        if status != CheckStatus::Completed {
            run.conclusion = None;
            run.completed_at = None;
        }
        run.status = status;
    }
    if let Some(conclusion) = fields.conclusion {
        run.conclusion = Some(conclusion);
        run.status = CheckStatus::Completed;
    }
    if run.status == CheckStatus::Completed && run.conclusion.is_none() {
        return Err(Rejection::InvalidText {
            field: "conclusion",
        });
    }
    run.started_at = fields.started_at.or(run.started_at);
    run.completed_at = fields.completed_at.or(run.completed_at);
    if run.status == CheckStatus::Completed && run.completed_at.is_none() {
        run.completed_at = Some(at.wall_ms / 1000);
    }
    for (field, value) in [
        (&mut run.details_url, &fields.details_url),
        (&mut run.external_id, &fields.external_id),
    ] {
        if value.is_some() {
            field.clone_from(value);
        }
    }
    if fields.output.is_some() {
        run.output.clone_from(&fields.output);
    }
    run.updated = at;
    Ok(run)
}

/// The field rules: a name of 1 to [`MAX_CHECK_NAME_BYTES`] bytes, URLs and ids
/// within their caps, output within [`MAX_TITLE_BYTES`] and [`MAX_OUTPUT_CHARS`],
/// times within [`MAX_TIMESTAMP`]; no control characters in the one-line fields (they
/// would reach logs and terminals of CI tools). The first failing field names the
/// refusal.
pub fn validate_fields(fields: &CheckRunFields) -> Result<(), Rejection> {
    let line = |text: &str, max: usize| text.len() <= max && !text.chars().any(char::is_control);
    let long =
        |text: &str| text.len() <= MAX_OUTPUT_BYTES && text.chars().count() <= MAX_OUTPUT_CHARS;
    let fail = |field| Err(Rejection::InvalidText { field });
    if let Some(name) = &fields.name
        && (name.trim().is_empty() || !line(name, MAX_CHECK_NAME_BYTES))
    {
        return fail("name");
    }
    if fields
        .details_url
        .as_deref()
        .is_some_and(|u| !line(u, MAX_TARGET_URL_BYTES))
    {
        return fail("details_url");
    }
    if fields
        .external_id
        .as_deref()
        .is_some_and(|i| !line(i, MAX_EXTERNAL_ID_BYTES))
    {
        return fail("external_id");
    }
    if fields.started_at.is_some_and(|t| t > MAX_TIMESTAMP) {
        return fail("started_at");
    }
    if fields.completed_at.is_some_and(|t| t > MAX_TIMESTAMP) {
        return fail("completed_at");
    }
    if let Some(output) = &fields.output
        && (!line(&output.title, MAX_TITLE_BYTES)
            || !long(&output.summary)
            || output.text.as_deref().is_some_and(|t| !long(t)))
    {
        return fail("output");
    }
    Ok(())
}

/// GitHub's status and conclusion of a check suite holding `runs`: completed when all
/// are (then the most severe conclusion: action required, cancelled, timed out,
/// failure, then success over neutral over skipped), else in progress unless all are
/// queued. No run at all is a queued suite.
pub fn suite_state<'a>(
    runs: impl IntoIterator<Item = &'a CheckRun>,
) -> (CheckStatus, Option<Conclusion>) {
    let runs: Vec<&CheckRun> = runs.into_iter().collect();
    if runs.is_empty() || runs.iter().all(|r| r.status == CheckStatus::Queued) {
        return (CheckStatus::Queued, None);
    }
    if runs.iter().any(|r| r.status != CheckStatus::Completed) {
        return (CheckStatus::InProgress, None);
    }
    let order = [
        Conclusion::ActionRequired,
        Conclusion::Cancelled,
        Conclusion::TimedOut,
        Conclusion::Failure,
        Conclusion::Success,
        Conclusion::Neutral,
        Conclusion::Skipped,
    ];
    let conclusion = order
        .into_iter()
        .find(|c| runs.iter().any(|r| r.conclusion == Some(*c)));
    (CheckStatus::Completed, conclusion)
}

/// Encodes `fields` in a payload (the codec's part for check runs).
pub(crate) fn encode_fields(w: &mut Writer, fields: &CheckRunFields) -> Result<(), EncodeError> {
    opt_str(w, "name", fields.name.as_deref(), MAX_CHECK_NAME_BYTES)?;
    let tags = [
        fields.status.map(CheckStatus::tag),
        fields.conclusion.map(Conclusion::tag),
    ];
    tags_and_times(w, &tags, [fields.started_at, fields.completed_at]);
    opt_str(
        w,
        "details_url",
        fields.details_url.as_deref(),
        MAX_TARGET_URL_BYTES,
    )?;
    opt_str(
        w,
        "external_id",
        fields.external_id.as_deref(),
        MAX_EXTERNAL_ID_BYTES,
    )?;
    w.option_tag(fields.output.is_some());
    if let Some(output) = &fields.output {
        w.str("title", &output.title, MAX_TITLE_BYTES)?;
        w.str("summary", &output.summary, MAX_OUTPUT_BYTES)?;
        opt_str(w, "text", output.text.as_deref(), MAX_OUTPUT_BYTES)?;
    }
    Ok(())
}

/// The value an optional decoded `tag` stands for; an unknown tag fails naming `field`.
fn known<T>(
    tag: Option<u8>,
    field: &'static str,
    from_tag: fn(u8) -> Option<T>,
) -> Result<Option<T>, DecodeError> {
    tag.map(|tag| from_tag(tag).ok_or(DecodeError::UnknownTag { field, tag }))
        .transpose()
}

/// Decodes what [`encode_fields`] wrote.
pub(crate) fn decode_fields(r: &mut Reader<'_>) -> Result<CheckRunFields, DecodeError> {
    let text = |r: &mut Reader<'_>,
                field: &'static str,
                max: usize|
     -> Result<Option<String>, DecodeError> {
        r.option_tag()?.then(|| r.string(field, max)).transpose()
    };
    let tag = |r: &mut Reader<'_>| -> Result<Option<u8>, DecodeError> {
        r.option_tag()?.then(|| r.u8()).transpose()
    };
    let name = text(r, "name", MAX_CHECK_NAME_BYTES)?;
    let status = known(tag(r)?, "check status", CheckStatus::from_tag)?;
    let conclusion = known(tag(r)?, "conclusion", Conclusion::from_tag)?;
    let started_at = r.option_tag()?.then(|| r.u64()).transpose()?;
    let completed_at = r.option_tag()?.then(|| r.u64()).transpose()?;
    let details_url = text(r, "details_url", MAX_TARGET_URL_BYTES)?;
    let external_id = text(r, "external_id", MAX_EXTERNAL_ID_BYTES)?;
    let output = if r.option_tag()? {
        Some(CheckOutput {
            title: r.string("title", MAX_TITLE_BYTES)?,
            summary: r.string("summary", MAX_OUTPUT_BYTES)?,
            text: text(r, "text", MAX_OUTPUT_BYTES)?,
        })
    } else {
        None
    };
    Ok(CheckRunFields {
        name,
        status,
        conclusion,
        started_at,
        completed_at,
        details_url,
        external_id,
        output,
    })
}
