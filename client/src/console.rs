//! Escape sequences on stderr, for a progress line redrawn in place.

/// Makes ANSI escape sequences written to stderr (such as `ESC [ K`, which
/// erases to the end of the line) work where that can be arranged, for as
/// long as it lives; [`work`](StderrEscapes::work) says whether they do.
///
/// A classic Windows console prints them as text unless
/// `ENABLE_VIRTUAL_TERMINAL_PROCESSING` is set on it (Windows 10 1511 and
/// later): [`enable`](StderrEscapes::enable) sets it on stderr's console
/// and dropping the value puts the console's mode back. They do not work
/// when stderr is no console or the console refuses the flag; a line is
/// then cleared with spaces instead. Elsewhere terminals interpret them.
#[derive(Debug)]
pub struct StderrEscapes {
    works: bool,
    #[cfg(windows)]
    _restore: Option<crate::windows::ConsoleMode>,
}

impl StderrEscapes {
    /// Turns escape sequences on for stderr, where that is needed.
    pub fn enable() -> StderrEscapes {
        #[cfg(windows)]
        {
            match crate::windows::enable_virtual_terminal_on_stderr() {
                Ok(restore) => StderrEscapes { works: true, _restore: restore },
                Err(()) => StderrEscapes { works: false, _restore: None },
            }
        }
        #[cfg(not(windows))]
        {
            StderrEscapes { works: true }
        }
    }

    /// Whether escape sequences written to stderr are interpreted (when
    /// stderr is a terminal at all).
    pub fn work(&self) -> bool {
        self.works
    }
}
