//! The refresh statuses as a bit set.

/// A set of HTTP statuses in 400..=655 (validated refresh statuses are in 400..=599).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct StatusSet([u64; 4]);

impl StatusSet {
    pub(super) fn of(statuses: &[u16]) -> Self {
        let mut set = StatusSet::default();
        for &status in statuses {
            if let Some(bit) = status.checked_sub(400).filter(|b| *b < 256) {
                set.0[usize::from(bit / 64)] |= 1 << (bit % 64);
            }
        }
        set
    }

    #[inline]
    pub(super) fn contains(&self, status: u16) -> bool {
        match status.checked_sub(400).filter(|b| *b < 256) {
            Some(bit) => self.0[usize::from(bit / 64)] & (1 << (bit % 64)) != 0,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_set_holds_exactly_its_statuses() {
        let set = StatusSet::of(&[400, 401, 463, 464, 599, 655, 656, 399, 200]);
        let members: Vec<u16> = (0..=700).filter(|&s| set.contains(s)).collect();
        assert_eq!(members, [400, 401, 463, 464, 599, 655]);
    }
}
