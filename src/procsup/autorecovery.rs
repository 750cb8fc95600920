//! The daemon-wide autorecovery gate (docs/control-plane.md, "Autorecovery"), as a pure counter. The orchestrator
//! owns one; the state machine only sees whether it is on (`Ctx::autorecovery_on`) and is
//! told when it crosses back on (`Input::AutoRecoveryOn`).

/// A count seeded to 1: on while ≥ 1. Disables nest (the count may go below 0); an enable
/// never raises it above 1, so a stray enable cannot bank credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoRecovery {
    count: i64,
}

impl Default for AutoRecovery {
    fn default() -> AutoRecovery {
        AutoRecovery::new()
    }
}

impl AutoRecovery {
    /// The boot state: on, count 1.
    pub fn new() -> AutoRecovery {
        AutoRecovery { count: 1 }
    }

    pub fn count(&self) -> i64 {
        self.count
    }

    pub fn is_on(&self) -> bool {
        self.count >= 1
    }

    /// `weka.disableAutoRecovery`.
    pub fn disable(&mut self) {
        self.count = self.count.saturating_sub(1);
    }

    /// `weka.enableAutoRecovery`. Returns true when this call turned the gate back on: the
    /// caller must then feed `Input::AutoRecoveryOn` to every process.
    pub fn enable(&mut self) -> bool {
        let was_on = self.is_on();
        self.count = self.count.saturating_add(1).min(1);
        !was_on && self.is_on()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_on_at_one() {
        let g = AutoRecovery::new();
        assert!(g.is_on());
        assert_eq!(g.count(), 1);
    }

    #[test]
    fn nested_disables_need_as_many_enables() {
        let mut g = AutoRecovery::new();
        g.disable();
        g.disable();
        assert_eq!(g.count(), -1);
        assert!(!g.enable());
        assert!(!g.is_on());
        assert!(g.enable());
        assert!(g.is_on());
    }

    #[test]
    fn enable_is_capped_at_one() {
        let mut g = AutoRecovery::new();
        assert!(!g.enable());
        assert!(!g.enable());
        assert_eq!(g.count(), 1);
        // No banked credit: one disable turns it off.
        g.disable();
        assert!(!g.is_on());
    }
}
