//! The command queue.

use super::requests::{KEPT, LARGE};
use crate::command::Command;

/// The commands not yet taken by the host, oldest first. A `Vec`, so that a host that
/// drains whole batches into an empty `Vec` gets the buffer itself (no copy). A batch of
/// several commands polled one by one is reversed once, then taken from the back.
#[derive(Clone, Debug, Default)]
pub(super) struct Outbox {
    pub(super) buffer: Vec<Command>,
    /// `buffer` holds the commands newest first.
    pub(super) reversed: bool,
}

impl Outbox {
    #[inline]
    pub(super) fn push_back(&mut self, command: Command) {
        if self.reversed {
            self.unreverse();
        }
        self.buffer.push(command);
    }

    #[inline]
    pub(super) fn pop_front(&mut self) -> Option<Command> {
        if !self.reversed {
            match self.buffer.len() {
                0 => {
                    self.shrink();
                    return None;
                }
                1 => return self.buffer.pop(),
                _ => {
                    self.buffer.reverse();
                    self.reversed = true;
                }
            }
        }
        let command = self.buffer.pop();
        if self.buffer.is_empty() {
            self.reversed = false;
        }
        command
    }

    #[cold]
    pub(super) fn unreverse(&mut self) {
        self.buffer.reverse();
        self.reversed = false;
    }

    pub(super) fn drain_into(&mut self, batch: &mut Vec<Command>) {
        if self.reversed {
            self.unreverse();
        }
        if batch.is_empty() {
            std::mem::swap(batch, &mut self.buffer);
        } else {
            batch.append(&mut self.buffer);
        }
        self.shrink();
    }

    /// Gives back the memory of a large drained queue (after a storm).
    #[inline]
    pub(super) fn shrink(&mut self) {
        if self.buffer.capacity() > LARGE {
            self.buffer.shrink_to(KEPT);
        }
    }
}
