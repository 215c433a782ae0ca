//! The flight recorder's hooks in the machine: recording an input, and the commands it
//! produces with their causes (see [`crate::trace`]).

use super::*;
use crate::trace::Trace;

impl Coordinator {
    /// Starts the flight recorder: from now on at least the last `capacity` inputs (and
    /// fewer than twice as many) are kept with the commands each produced and the rule
    /// that produced each one, tokens replaced by placeholders ([`crate::trace`]);
    /// [`Coordinator::trace`] returns them. 0 stops it and frees what it kept. Calling it
    /// again starts a new recording.
    pub fn record(&mut self, capacity: usize) {
        self.engine.recorder = None;
        if capacity == 0 {
            return;
        }
        let mut recorder = Recorder::new(capacity);
        // The session's tokens get their placeholders.
        if let Phase::LoggedIn(session) = &self.phase {
            let held = (Some(&session.access_token), session.refresh_token.as_ref());
            let credentials = Credentials {
                access_token: session.access_token.clone(),
                refresh_token: session.refresh_token.clone(),
                expires_in_ms: None,
            };
            recorder.redact(&Input::Login { credentials }, held);
            recorder.installed(false);
        }
        let state = self.redacted_start(&recorder);
        let fresh = state.is_new();
        self.engine.recorder = Some(Box::new(recorder.starting_from((!fresh).then_some(state))));
    }

    /// The state now, its tokens replaced by the recording's placeholders.
    fn redacted_start(&self, recorder: &Recorder) -> Start {
        let mut state = self.start();
        if let StartPhase::LoggedIn(session) = &mut state.phase {
            let (access, refresh) = recorder.session_tokens();
            session.access_token = access.unwrap_or_else(|| Secret::new("redacted"));
            session.refresh_token = session.refresh_token.as_ref().and(refresh);
        }
        state
    }

    /// What the flight recorder holds (empty when it is off).
    pub fn trace(&self) -> Trace {
        match &self.engine.recorder {
            Some(recorder) => recorder.trace(),
            None => Trace {
                start: None,
                steps: Vec::new(),
            },
        }
    }

    /// The causes the recorder noted for the commands of the last input it recorded
    /// (empty when it is off): what a replayer compares with a recording's `causes`
    /// without copying the whole recording at every step.
    pub fn last_causes(&self) -> Vec<Cause> {
        self.engine
            .recorder
            .as_ref()
            .map_or_else(Vec::new, |r| r.last_causes())
    }

    /// One input with the recorder on: its redacted copy, its result and its commands go
    /// into the recording.
    #[cold]
    #[inline(never)]
    pub(super) fn recorded(
        &mut self,
        now: Timestamp,
        input: Input,
    ) -> Result<Option<RequestId>, InputError> {
        let Some(mut recorder) = self.engine.recorder.take() else {
            return self.apply(now, input);
        };
        let held = match &self.phase {
            Phase::LoggedIn(s) => (Some(&s.access_token), s.refresh_token.as_ref()),
            _ => (None, None),
        };
        let kept = recorder.begin(&input, held);
        recorder.busy = true;
        self.engine.recorder = Some(recorder);
        self.engine.cause = Cause::Rule(0);
        let result = self.apply(now, input);
        if let Some(mut recorder) = self.engine.recorder.take() {
            recorder.busy = false;
            if recorder.finish(now, kept, result) {
                let state = self.redacted_start(&recorder);
                recorder.checkpoint(state);
            }
            self.engine.recorder = Some(recorder);
        }
        result
    }
}

impl Engine {
    /// Whether an input is to be recorded (the recorder is on and not already recording
    /// it).
    #[inline(always)]
    pub(super) fn recording(&self) -> bool {
        self.recorder.as_ref().is_some_and(|r| !r.busy)
    }

    /// Carries out `cause` from here on.
    #[inline(always)]
    pub(super) fn because(&mut self, cause: Cause) {
        self.cause = cause;
    }

    /// Queues `command`, noting it (and its cause) in the recording if one is on.
    #[inline(always)]
    pub(super) fn emit(&mut self, command: Command) {
        if self.recorder.is_some() {
            self.note(&command);
        }
        self.commands.push_back(command);
    }

    /// The recorder notes `command` with the current cause.
    #[cold]
    #[inline(never)]
    fn note(&mut self, command: &Command) {
        if let Some(recorder) = self.recorder.as_mut() {
            recorder.command(command, self.cause);
        }
    }
}
