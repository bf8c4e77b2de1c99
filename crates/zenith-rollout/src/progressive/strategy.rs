//! Which progressive strategy a service's update follows, and what each one brings to the
//! machine: the analysis that judges it and the smoke tests that gate its first traffic.

use zenith_spec::{Analysis, BlueGreen, Canary, SmokeProbe, UpdateStrategy};

/// How one service's new revision is being rolled out.
#[derive(Debug, Clone, Copy)]
pub enum Strategy<'a> {
    Canary(&'a Canary),
    BlueGreen(&'a BlueGreen),
    /// `deploy --force` and code rollbacks: the new revision starts at full size, is
    /// health-checked, and takes all traffic at once, with no analysis.
    Forced,
}

impl<'a> Strategy<'a> {
    /// The progressive strategy of `update`, forced when `forced`; `None` for a rolling update.
    pub fn of(update: &'a UpdateStrategy, forced: bool) -> Option<Strategy<'a>> {
        match update {
            UpdateStrategy::Rolling(_) => None,
            _ if forced => Some(Strategy::Forced),
            UpdateStrategy::Canary(c) => Some(Strategy::Canary(c)),
            UpdateStrategy::BlueGreen(b) => Some(Strategy::BlueGreen(b)),
        }
    }

    pub fn analysis(&self) -> Option<&'a Analysis> {
        match self {
            Strategy::Canary(c) => Some(&c.analysis),
            Strategy::BlueGreen(b) => Some(&b.analysis),
            Strategy::Forced => None,
        }
    }

    pub fn probes(&self) -> &'a [SmokeProbe] {
        match self {
            Strategy::Canary(c) => &c.probes,
            Strategy::BlueGreen(b) => &b.probes,
            Strategy::Forced => &[],
        }
    }

    pub(super) fn name(&self) -> &'static str {
        match self {
            Strategy::Canary(_) => "canary",
            Strategy::BlueGreen(_) => "blue-green",
            Strategy::Forced => "forced",
        }
    }
}
