//! The flight recorder's hooks in the machine: recording an input, and the commands it
//! produces with their causes (see [`crate::trace`]).

use super::*;
use crate::trace::Trace;

impl Coordinator {
    /// Starts the flight recorder: from now on the last `capacity` inputs are kept with
    /// the commands each produced and the rule that produced each one, tokens replaced by
    /// placeholders ([`crate::trace`]); [`Coordinator::trace`] returns them. 0 stops it
    /// and frees what it kept. Calling it again starts a new recording.
    pub fn record(&mut self, capacity: usize) {
        self.engine.recorder = None;
        if capacity == 0 {
            return;
        }
        let mut recorder = Recorder::new(capacity, Coordinator::blank(&self.engine.config));
        // The state now, its tokens replaced: where the recording starts.
        let mut lag = self.clone_unrecorded();
        if let Phase::LoggedIn(session) = &mut lag.phase {
            let held = (Some(&session.access_token), session.refresh_token.as_ref());
            let credentials = Credentials {
                access_token: session.access_token.clone(),
                refresh_token: session.refresh_token.clone(),
                expires_in_ms: None,
            };
            if let Input::Login { credentials } =
                recorder.redact(&Input::Login { credentials }, held)
            {
                session.access_token = credentials.access_token;
                session.refresh_token = credentials.refresh_token;
            }
            recorder.installed(false);
        }
        let lagging = lag.start() != Coordinator::blank(&self.engine.config).start();
        self.engine.recorder = Some(Box::new(recorder.starting_from(lag, lagging)));
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

    /// A new coordinator with `config` (valid: it is a coordinator's).
    pub(crate) fn blank(config: &Config) -> Coordinator {
        Coordinator {
            phase: Phase::LoggedOut,
            engine: Engine {
                refresh_statuses: StatusSet::of(&config.refresh_statuses),
                config: config.clone(),
                now: 0,
                next_request: 1,
                next_generation: 1,
                next_attempt: 1,
                requests: Requests::default(),
                commands: Outbox::default(),
                stats: Stats::default(),
                cause: Cause::Rule(0),
                recorder: None,
                #[cfg(reauth_faults)]
                fault: None,
            },
        }
    }

    /// A copy without the recorder and without undrained commands.
    fn clone_unrecorded(&self) -> Coordinator {
        let recorder = None;
        Coordinator {
            phase: self.phase.clone(),
            engine: Engine {
                refresh_statuses: self.engine.refresh_statuses,
                config: self.engine.config.clone(),
                now: self.engine.now,
                next_request: self.engine.next_request,
                next_generation: self.engine.next_generation,
                next_attempt: self.engine.next_attempt,
                requests: self.engine.requests.clone(),
                commands: Outbox::default(),
                stats: self.engine.stats,
                cause: Cause::Rule(0),
                recorder,
                #[cfg(reauth_faults)]
                fault: self.engine.fault,
            },
        }
    }

    /// Throws away the commands not yet taken (the recorder's lagging copy).
    pub(crate) fn discard_commands(&mut self) {
        self.engine.commands.buffer.clear();
        self.engine.commands.reversed = false;
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
        let redacted = recorder.redact(&input, held);
        recorder.busy = true;
        self.engine.recorder = Some(recorder);
        self.engine.cause = Cause::Rule(0);
        let result = self.apply(now, input);
        if let Some(recorder) = self.engine.recorder.as_mut() {
            recorder.busy = false;
            recorder.finish(now, redacted, result);
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
