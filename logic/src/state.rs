//! The seven binding states of an NDIS 6 protocol driver and the only
//! legal moves between them (`binding-states-of-a-protocol-driver.md`).
//!
//! Every change of state goes through `StateMachine::apply`, which checks
//! the move against `TABLE`. An event that is not legal in the current
//! state is refused, counted, and changes nothing.

/// The state of one binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingState {
    /// The initial state: waiting for `ProtocolBindAdapterEx`.
    Unbound,
    /// Allocating resources and opening the adapter.
    Opening,
    /// Open, with no sends or receives.
    Paused,
    /// Getting ready to send and receive again.
    Restarting,
    /// Sending and receiving.
    Running,
    /// Waiting for outstanding sends (and retained receives) to come back.
    Pausing,
    /// Closing the adapter and releasing the binding's resources.
    Closing,
}

impl BindingState {
    /// The state's number on the wire (`rawnic_proto::state`).
    pub fn wire(self) -> u8 {
        use rawnic_proto::state as s;
        match self {
            BindingState::Unbound => s::UNBOUND,
            BindingState::Opening => s::OPENING,
            BindingState::Paused => s::PAUSED,
            BindingState::Restarting => s::RESTARTING,
            BindingState::Running => s::RUNNING,
            BindingState::Pausing => s::PAUSING,
            BindingState::Closing => s::CLOSING,
        }
    }
}

/// What happens to a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingEvent {
    /// NDIS called `ProtocolBindAdapterEx`.
    Bind,
    /// The adapter opened.
    OpenSucceeded,
    /// The adapter could not be opened (or the resources allocated).
    OpenFailed,
    /// NDIS sent a PnP restart notification.
    Restart,
    /// The driver is ready to send and receive.
    RestartSucceeded,
    /// The restart failed.
    RestartFailed,
    /// NDIS sent a PnP pause notification.
    Pause,
    /// Every outstanding send completed and every retained receive returned.
    PauseComplete,
    /// NDIS called `ProtocolUnbindAdapterEx`.
    Unbind,
    /// The adapter closed and the resources are released.
    CloseComplete,
}

use BindingEvent as E;
use BindingState as S;

/// The legal moves: (from, event, to). Nothing else is legal.
pub const TABLE: &[(BindingState, BindingEvent, BindingState)] = &[
    (S::Unbound, E::Bind, S::Opening),
    (S::Opening, E::OpenSucceeded, S::Paused),
    (S::Opening, E::OpenFailed, S::Unbound),
    (S::Paused, E::Restart, S::Restarting),
    (S::Restarting, E::RestartSucceeded, S::Running),
    (S::Restarting, E::RestartFailed, S::Paused),
    (S::Running, E::Pause, S::Pausing),
    (S::Pausing, E::PauseComplete, S::Paused),
    (S::Paused, E::Unbind, S::Closing),
    (S::Closing, E::CloseComplete, S::Unbound),
];

/// The next state, if `event` is legal in `from`.
pub fn next(from: BindingState, event: BindingEvent) -> Option<BindingState> {
    TABLE.iter().find(|(f, e, _)| *f == from && *e == event).map(|(_, _, to)| *to)
}

/// An event that was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Illegal {
    pub state: BindingState,
    pub event: BindingEvent,
}

/// A binding's state, changed only through `apply`.
#[derive(Debug, Clone)]
pub struct StateMachine {
    state: BindingState,
    illegal: u32,
    last_illegal: Option<Illegal>,
}

impl Default for StateMachine {
    fn default() -> Self {
        Self::new()
    }
}

impl StateMachine {
    pub const fn new() -> Self {
        StateMachine { state: BindingState::Unbound, illegal: 0, last_illegal: None }
    }

    pub fn state(&self) -> BindingState {
        self.state
    }

    /// The one place a binding's state changes.
    pub fn apply(&mut self, event: BindingEvent) -> Result<BindingState, Illegal> {
        match next(self.state, event) {
            Some(to) => {
                self.state = to;
                Ok(to)
            }
            None => {
                let e = Illegal { state: self.state, event };
                self.illegal = self.illegal.saturating_add(1);
                self.last_illegal = Some(e);
                Err(e)
            }
        }
    }

    /// How many events were refused.
    pub fn illegal_count(&self) -> u32 {
        self.illegal
    }

    pub fn last_illegal(&self) -> Option<Illegal> {
        self.last_illegal
    }

    pub fn is_running(&self) -> bool {
        self.state == BindingState::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATES: [BindingState; 7] =
        [S::Unbound, S::Opening, S::Paused, S::Restarting, S::Running, S::Pausing, S::Closing];
    const EVENTS: [BindingEvent; 10] = [
        E::Bind,
        E::OpenSucceeded,
        E::OpenFailed,
        E::Restart,
        E::RestartSucceeded,
        E::RestartFailed,
        E::Pause,
        E::PauseComplete,
        E::Unbind,
        E::CloseComplete,
    ];

    fn at(state: BindingState) -> StateMachine {
        StateMachine { state, illegal: 0, last_illegal: None }
    }

    #[test]
    fn happy_path() {
        let mut m = StateMachine::new();
        for (e, s) in [
            (E::Bind, S::Opening),
            (E::OpenSucceeded, S::Paused),
            (E::Restart, S::Restarting),
            (E::RestartSucceeded, S::Running),
            (E::Pause, S::Pausing),
            (E::PauseComplete, S::Paused),
            (E::Unbind, S::Closing),
            (E::CloseComplete, S::Unbound),
        ] {
            assert_eq!(m.apply(e), Ok(s));
        }
        assert_eq!(m.illegal_count(), 0);
    }

    #[test]
    fn failure_paths() {
        let mut m = at(S::Opening);
        assert_eq!(m.apply(E::OpenFailed), Ok(S::Unbound));
        let mut m = at(S::Restarting);
        assert_eq!(m.apply(E::RestartFailed), Ok(S::Paused));
    }

    #[test]
    fn every_other_move_is_refused_and_counted() {
        let mut legal = 0;
        for s in STATES {
            for e in EVENTS {
                let mut m = at(s);
                match next(s, e) {
                    Some(to) => {
                        legal += 1;
                        assert_eq!(m.apply(e), Ok(to));
                    }
                    None => {
                        assert_eq!(m.apply(e), Err(Illegal { state: s, event: e }));
                        assert_eq!(m.state(), s, "a refused event changes nothing");
                        assert_eq!(m.illegal_count(), 1);
                    }
                }
            }
        }
        assert_eq!(legal, TABLE.len());
    }

    #[test]
    fn only_running_is_running_and_sends_cannot_start_elsewhere() {
        for s in STATES {
            assert_eq!(at(s).is_running(), s == S::Running);
        }
    }

    #[test]
    fn pause_never_fails() {
        // There is no event that leaves Pausing except PauseComplete.
        for e in EVENTS {
            if let Some(to) = next(S::Pausing, e) {
                assert_eq!((e, to), (E::PauseComplete, S::Paused));
            }
        }
    }
}
