//! What a person or a restart does to a rollout: `zenith rollout promote|pause|resume|abort`
//! applied to the machine, and picking a rollout up again after the daemon restarted.

use super::{Effect, Progress, Stage, Strategy, UserCommand};

impl Progress {
    /// Applies a person's decision; `Err` says why it does not apply now.
    pub fn command(&mut self, strategy: Strategy<'_>, cmd: &UserCommand, now: i64) -> Result<Vec<Effect>, String> {
        if self.is_finished() {
            return Err("the rollout has ended; nothing to change".into());
        }
        match cmd {
            UserCommand::Abort => Ok(self.abort("aborted by a user (`zenith rollout abort`)".into())),
            UserCommand::Pause => {
                self.paused = Some("paused by a user; `zenith rollout resume` continues".into());
                Ok(Vec::new())
            }
            UserCommand::Resume => {
                if self.stage == Stage::AwaitingPromotion {
                    return Err("the switch waits for `zenith rollout promote`, not resume".into());
                }
                self.paused = None;
                self.window_since_ms = now;
                self.last_check_ms = now;
                Ok(vec![Effect::ResetWindow])
            }
            UserCommand::Promote { full } => match (strategy, self.stage) {
                (_, Stage::Starting | Stage::Probing) => {
                    Err("the new replicas are not healthy and smoke-tested yet; nothing to promote".into())
                }
                (Strategy::BlueGreen(b), Stage::AwaitingPromotion) => Ok(self.switch(b, now)),
                (_, Stage::Switched) => {
                    self.stage = Stage::Done;
                    self.paused = None;
                    Ok(vec![Effect::Complete])
                }
                (Strategy::Canary(c), Stage::Analysing) => {
                    self.paused = None;
                    if *full {
                        self.step = c.steps.len() - 1;
                    }
                    Ok(self.next_step(c, now))
                }
                _ => Ok(Vec::new()),
            },
        }
    }

    /// After a daemon restart: the router is new, so the weight is set again (before any
    /// replica joins it) and the window starts over. Smoke tests that were running start again
    /// once the new replicas are adopted and ready.
    pub fn resume_after_restart(&mut self, now: i64) -> Vec<Effect> {
        self.window_since_ms = now;
        self.last_check_ms = now;
        if self.stage == Stage::Probing {
            self.stage = Stage::Starting;
        }
        match self.stage {
            Stage::Done | Stage::Aborted => Vec::new(),
            _ => vec![Effect::SetWeight(self.weight), Effect::ResetWindow],
        }
    }
}
