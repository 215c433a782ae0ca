//! Transcripts: a config, then steps of `{at, input, expect}` (the format of the
//! repository's `tests/vectors/README.md`), replayed and explained. The conformance
//! transcripts and the flight recorder's dumps are both read here, so every binding
//! replays and explains them with this one implementation.

use std::fmt;

use super::{Cause, CommandRecord, Start, StartError, Step as RecordedStep, Trace};
use crate::command::{RequestId, Timestamp};
use crate::config::Config;
use crate::coordinator::Coordinator;
use crate::input::Input;

/// One transcript file.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transcript {
    /// A short identifier, usually the file name without `.json`.
    pub name: String,
    /// The contract's rules (`"7.5"`) and guarantees (`"G3"`) this transcript shows.
    #[serde(default)]
    pub covers: Vec<String>,
    /// What happens, in a sentence or two.
    pub description: String,
    /// The configuration; omitted fields take their defaults.
    #[serde(default)]
    pub config: Config,
    /// Where a flight recording starts when it begins mid-session (its tokens are the
    /// recording's placeholders); omitted: a new coordinator.
    #[serde(default)]
    pub start: Option<Start>,
    /// The inputs and the batches they must produce.
    pub steps: Vec<Step>,
}

/// One input and what it must produce.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The `now` passed with the input.
    pub at: Timestamp,
    /// The input.
    pub input: Input,
    /// The exact batch of commands, in order. Empty when omitted.
    #[serde(default)]
    pub expect: Vec<CommandRecord>,
    /// For a step that must be refused: the [`InputError::kind`](crate::InputError::kind).
    #[serde(default)]
    pub error: Option<String>,
    /// For `submit`: the id it must return.
    #[serde(default)]
    pub id: Option<RequestId>,
    /// If present, what `poll_timeout()` must return after the step (`null`: nothing).
    #[serde(default, deserialize_with = "present")]
    pub timeout: Option<Option<Timestamp>>,
    /// A comment for readers; ignored.
    #[serde(default)]
    pub note: Option<String>,
    /// The cause of each command of `expect`, in order (a flight recording writes them:
    /// `"7.15"`, `"answered"`, `"logged_in"`); checked when present.
    #[serde(default)]
    pub causes: Vec<Cause>,
}

fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// What one step did, or was expected to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The batch of commands.
    pub commands: Vec<CommandRecord>,
    /// The error kind, if the input was refused.
    pub error: Option<String>,
    /// For `submit`, the id (only compared when the transcript gives one).
    pub id: Option<RequestId>,
    /// `poll_timeout()` after the step (only compared when the transcript gives one).
    pub timeout: Option<Option<Timestamp>>,
    /// The causes of the commands (only compared when the transcript gives them).
    pub causes: Vec<Cause>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(error) = &self.error {
            writeln!(f, "      error: {error}")?;
        }
        if let Some(id) = self.id {
            writeln!(f, "      id: {id}")?;
        }
        if let Some(timeout) = self.timeout {
            match timeout {
                Some(t) => writeln!(f, "      timeout: {t}")?,
                None => writeln!(f, "      timeout: none")?,
            }
        }
        if self.commands.is_empty() {
            writeln!(f, "      (no commands)")?;
        }
        for (i, c) in self.commands.iter().enumerate() {
            match self.causes.get(i) {
                Some(cause) => writeln!(f, "      {c}   ({cause})")?,
                None => writeln!(f, "      {c}")?,
            }
        }
        Ok(())
    }
}

/// A step whose outcome differs from the transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// 1-based step number.
    pub step: usize,
    /// The step's `at`.
    pub at: Timestamp,
    /// The input's name.
    pub input: &'static str,
    /// What the transcript says.
    pub expected: Outcome,
    /// What the core did.
    pub actual: Outcome,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  step {} (at {}, {}):", self.step, self.at, self.input)?;
        writeln!(f, "    expected:")?;
        write!(f, "{}", self.expected)?;
        writeln!(f, "    actual:")?;
        write!(f, "{}", self.actual)
    }
}

/// Replays `transcript` on a fresh coordinator, or on one in its `start` state; returns
/// every step that differs. Later steps still run after a mismatch (with the core's real
/// state), so one report shows everything. Causes are checked where the transcript gives
/// them (the core's flight recorder notes them during the replay).
pub fn replay(transcript: &Transcript) -> Result<Vec<Mismatch>, StartError> {
    let mut core = match &transcript.start {
        Some(start) => Coordinator::resume(transcript.config.clone(), start)?,
        None => Coordinator::new(transcript.config.clone())?,
    };
    if transcript.steps.iter().any(|s| !s.causes.is_empty()) {
        // The recorder notes each command's cause; only the last input's are read.
        core.record(RECORDED_WHILE_REPLAYING);
    }
    let mut mismatches = Vec::new();
    for (index, step) in transcript.steps.iter().enumerate() {
        let result = core.apply(step.at, step.input.clone());
        let causes = if step.causes.is_empty() {
            Vec::new()
        } else {
            core.last_causes()
        };
        let commands: Vec<CommandRecord> = core
            .drain_commands()
            .map(|c| CommandRecord::exposing_tokens(&c))
            .collect();
        let (id, error) = match result {
            Ok(id) => (id, None),
            Err(e) => (None, Some(e.kind().to_owned())),
        };
        let actual = Outcome {
            commands,
            error,
            id: step.id.and(id),
            timeout: step.timeout.map(|_| core.poll_timeout()),
            causes,
        };
        let expected = Outcome {
            commands: step.expect.clone(),
            error: step.error.clone(),
            id: step.id,
            timeout: step.timeout,
            causes: step.causes.clone(),
        };
        if actual != expected {
            mismatches.push(Mismatch {
                step: index + 1,
                at: step.at,
                input: step.input.name(),
                expected,
                actual,
            });
        }
    }
    Ok(mismatches)
}

/// The recorder's capacity while a replay reads causes: small, so that its checkpoints
/// (a copy of the state once per this many inputs) stay cheap, and only the last input's
/// causes are read.
const RECORDED_WHILE_REPLAYING: usize = 1_024;

/// Why [`explain`] gives no explanation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExplainError {
    /// The config or the start state is refused.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The transcript does not replay: these steps differ (an explanation would rest on
    /// something the core does not do).
    #[error("the transcript does not replay: {} of its steps differ", .0.len())]
    DoesNotReplay(Vec<Mismatch>),
}

/// A transcript as a timeline ([`Trace::explain`]): replayed first (from its start
/// state), its causes checked against the core's. A flight recording is explained from
/// its own causes; a transcript without causes is replayed with the recorder on, which
/// supplies them (its tokens then appear as placeholders).
pub fn explain(transcript: &Transcript) -> Result<String, ExplainError> {
    let mismatches = replay(transcript)?;
    if !mismatches.is_empty() {
        return Err(ExplainError::DoesNotReplay(mismatches));
    }
    let trace = match recorded(transcript)? {
        Some(trace) => trace,
        None => rerecorded(transcript)?,
    };
    Ok(trace.explain(&transcript.config))
}

fn start(transcript: &Transcript) -> Result<Coordinator, StartError> {
    match &transcript.start {
        Some(start) => Coordinator::resume(transcript.config.clone(), start),
        None => Ok(Coordinator::new(transcript.config.clone())?),
    }
}

/// The recording the transcript holds, if it gives a cause for every command, with the
/// results the core returns for its inputs.
fn recorded(transcript: &Transcript) -> Result<Option<Trace>, StartError> {
    let complete = transcript.steps.iter().any(|s| !s.causes.is_empty())
        && transcript
            .steps
            .iter()
            .all(|s| s.causes.len() == s.expect.len());
    if !complete {
        return Ok(None);
    }
    let mut core = start(transcript)?;
    let mut steps = Vec::with_capacity(transcript.steps.len());
    for s in &transcript.steps {
        let result = core.apply(s.at, s.input.clone());
        core.drain_commands().for_each(drop);
        steps.push(RecordedStep {
            at: s.at,
            input: s.input.clone(),
            result,
            commands: s
                .expect
                .iter()
                .zip(&s.causes)
                .map(|(c, cause)| (c.to_command(), *cause))
                .collect(),
        });
    }
    Ok(Some(Trace {
        start: transcript.start.clone(),
        steps,
    }))
}

/// A transcript without causes, replayed with the recorder on.
fn rerecorded(transcript: &Transcript) -> Result<Trace, StartError> {
    let mut core = start(transcript)?;
    core.record(transcript.steps.len().max(1));
    for s in &transcript.steps {
        let _ = core.apply(s.at, s.input.clone());
        core.drain_commands().for_each(drop);
    }
    Ok(core.trace())
}
