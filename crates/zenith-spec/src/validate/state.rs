//! Validation of the state tables: a service's hooks, the app's snapshot schedules with their
//! retention and verify runs, the drill schedule and the health thresholds.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Validator;
use crate::config::{DrillConfig, HealthThresholdsConfig, KeepConfig, ScheduleConfig, StateConfig};
use crate::cron::Cron;
use crate::model::{
    DEFAULT_STATE_TYPE, DrillSchedule, HealthThresholds, RestoreOnStart, Retention, Schedule, ServiceSpec, StateHooks,
    VerifySchedule,
};

/// Snapshot types become tags and metric labels: keep them plain.
fn is_type_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_'))
}

const TYPE_RULE: &str = "use lowercase letters, digits, '-' and '_' (e.g. data, config, models)";

impl Validator<'_> {
    pub(super) fn state_hooks(&mut self, service: &str, s: Option<&StateConfig>, has_dirs: bool) -> StateHooks {
        let Some(s) = s else {
            return StateHooks::default();
        };
        let at = |field: &'static str| ["services", service, "state", field];
        let hooks = StateHooks {
            snapshot_before_deploy: s.snapshot_before_deploy.unwrap_or(false),
            snapshot_on_stop: s.snapshot_on_stop.unwrap_or(false),
            restore_on_start: s.restore_on_start.unwrap_or_default(),
            snapshot_type: s
                .snapshot_type
                .clone()
                .unwrap_or_else(|| DEFAULT_STATE_TYPE.to_string()),
            on_stop_timeout: self.positive(s.on_stop_timeout, Duration::from_secs(60), &at("on_stop_timeout")),
        };
        if !is_type_label(&hooks.snapshot_type) {
            let msg = format!("invalid snapshot type \"{}\": {TYPE_RULE}", hooks.snapshot_type);
            self.error(&at("type"), msg);
        }
        let enabled = [
            ("snapshot_before_deploy", hooks.snapshot_before_deploy),
            ("snapshot_on_stop", hooks.snapshot_on_stop),
            ("restore_on_start", hooks.restore_on_start == RestoreOnStart::Latest),
        ];
        if !has_dirs && let Some((field, _)) = enabled.iter().find(|(_, on)| *on) {
            self.error(
                &at(field),
                "acts on the service's state directories, but it has none; add state_dirs = [\"./data\"]",
            );
        }
        hooks
    }

    pub(super) fn schedules(
        &mut self,
        schedules: &BTreeMap<String, ScheduleConfig>,
        services: &[ServiceSpec],
    ) -> Vec<Schedule> {
        let mut out = Vec::new();
        for (kind, s) in schedules {
            let at = |field: &'static str| ["schedules", kind.as_str(), field];
            if !is_type_label(kind) {
                self.error(
                    &["schedules", kind.as_str()],
                    format!("invalid snapshot type \"{kind}\": {TYPE_RULE}"),
                );
            }
            let cron = self.cron(s.cron.as_deref(), &at("cron"), "0 2 * * *");
            let timezone = self.timezone(s.timezone.as_deref(), &at("timezone"));
            let with_state: Vec<&str> = services
                .iter()
                .filter(|s| s.has_state())
                .map(|s| s.name.as_str())
                .collect();
            let chosen = match &s.services {
                Some(list) => {
                    for name in list {
                        match services.iter().find(|s| &s.name == name) {
                            None => self.error(
                                &at("services"),
                                format!("no service named \"{name}\"; the app has {}", names(services)),
                            ),
                            Some(svc) if !svc.has_state() => self.error(
                                &at("services"),
                                format!("service \"{name}\" has no state_dirs to snapshot"),
                            ),
                            Some(_) => {}
                        }
                    }
                    list.clone()
                }
                None => with_state.iter().map(|s| s.to_string()).collect(),
            };
            if chosen.is_empty() {
                self.error(
                    &["schedules", kind.as_str()],
                    "no service has state_dirs, so this schedule has nothing to snapshot",
                );
            }
            let keep = self.retention(kind, s.keep.as_ref());
            let verify = s.verify.as_ref().map(|v| {
                let vat = |field: &'static str| ["schedules", kind.as_str(), "verify", field];
                let cron = self.cron(v.cron.as_deref(), &vat("cron"), "0 4 * * 0");
                let subset = v.subset.clone().unwrap_or_else(|| "5%".into());
                if !is_subset(&subset) {
                    self.error(
                        &vat("subset"),
                        format!(
                            "\"{subset}\" is not a subset; write \"n/t\" (e.g. \"1/7\") or a percentage (e.g. \"10%\")"
                        ),
                    );
                }
                VerifySchedule { cron, subset }
            });
            out.push(Schedule {
                snapshot_type: kind.clone(),
                cron,
                timezone,
                services: chosen,
                keep,
                verify,
            });
        }
        out
    }

    fn retention(&mut self, kind: &str, k: Option<&KeepConfig>) -> Retention {
        let Some(k) = k else {
            return Retention::default();
        };
        let mut count = |v: Option<i64>, field: &'static str| -> Option<u32> {
            v.map(|n| self.count(Some(n), 0, 0, &["schedules", kind, "keep", field], ""))
        };
        let r = Retention {
            last: count(k.last, "last"),
            hourly: count(k.hourly, "hourly"),
            daily: count(k.daily, "daily"),
            weekly: count(k.weekly, "weekly"),
            monthly: count(k.monthly, "monthly"),
            yearly: count(k.yearly, "yearly"),
            within: k.within.clone(),
            tags: k.tags.clone(),
        };
        if let Some(w) = &r.within
            && !is_keep_duration(w)
        {
            self.error(
                &["schedules", kind, "keep", "within"],
                format!("\"{w}\" is not a keep duration; write it like \"7d\", \"1y6m\" or \"2d12h\""),
            );
        }
        r
    }

    pub(super) fn drill(&mut self, d: Option<&DrillConfig>) -> Option<DrillSchedule> {
        let d = d?;
        Some(DrillSchedule {
            cron: self.cron(d.cron.as_deref(), &["drill", "cron"], "0 5 * * 6"),
            timezone: self.timezone(d.timezone.as_deref(), &["drill", "timezone"]),
        })
    }

    pub(super) fn health_thresholds(&mut self, h: Option<&HealthThresholdsConfig>) -> HealthThresholds {
        let defaults = HealthThresholds::default();
        let Some(h) = h else {
            return defaults;
        };
        let at = |field: &'static str| ["health", field];
        let t = HealthThresholds {
            age_warning: self.positive(h.age_warning, defaults.age_warning, &at("age_warning")),
            age_critical: self.positive(h.age_critical, defaults.age_critical, &at("age_critical")),
            size_warning: self.size(h.size_warning.as_deref(), &at("size_warning")),
            size_critical: self.size(h.size_critical.as_deref(), &at("size_critical")),
            verify_max_age: self.positive(h.verify_max_age, defaults.verify_max_age, &at("verify_max_age")),
        };
        if t.age_warning > t.age_critical {
            self.error(
                &at("age_warning"),
                "is longer than age_critical; a warning must come first",
            );
        }
        if let (Some(w), Some(c)) = (t.size_warning, t.size_critical)
            && w > c
        {
            self.error(
                &at("size_warning"),
                "is larger than size_critical; a warning must come first",
            );
        }
        t
    }

    pub(super) fn size(&mut self, v: Option<&str>, path: &[&str]) -> Option<u64> {
        let v = v?;
        match v.trim().parse::<bytesize::ByteSize>() {
            Ok(b) if b.as_u64() > 0 => Some(b.as_u64()),
            _ => {
                self.error(
                    path,
                    format!("\"{v}\" is not a size; write it like \"10GB\" or \"512MiB\""),
                );
                None
            }
        }
    }

    fn cron(&mut self, v: Option<&str>, path: &[&str], example: &str) -> String {
        let Some(v) = v else {
            self.error(
                path,
                format!("missing: give a cron expression, e.g. cron = \"{example}\""),
            );
            return String::new();
        };
        if let Err(e) = Cron::parse(v) {
            self.error(path, format!("\"{v}\": {e}"));
        }
        v.trim().to_string()
    }

    fn timezone(&mut self, v: Option<&str>, path: &[&str]) -> Option<String> {
        let v = v?;
        if let Err(e) = jiff::tz::TimeZone::get(v) {
            self.error(
                path,
                format!("unknown time zone \"{v}\" ({e}); use an IANA name such as \"Europe/Berlin\" or \"UTC\""),
            );
        }
        Some(v.to_string())
    }
}

fn names(services: &[ServiceSpec]) -> String {
    services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// `n/t` with 1 ≤ n ≤ t, or `P%` with 0 < P ≤ 100.
fn is_subset(s: &str) -> bool {
    if let Some(p) = s.strip_suffix('%') {
        return p.parse::<f64>().is_ok_and(|p| p > 0.0 && p <= 100.0);
    }
    match s.split_once('/') {
        Some((n, t)) => matches!((n.parse::<u32>(), t.parse::<u32>()), (Ok(n), Ok(t)) if n >= 1 && n <= t),
        None => false,
    }
}

/// `forget --keep-within`'s form: parts y, m, d, h in that order, each at most once.
fn is_keep_duration(s: &str) -> bool {
    let mut rest = s.trim();
    if rest.is_empty() {
        return false;
    }
    for unit in ['y', 'm', 'd', 'h'] {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with(unit) {
            rest = &rest[digits + 1..];
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_and_keep_durations() {
        for ok in ["1/7", "7/7", "10%", "0.5%", "100%"] {
            assert!(is_subset(ok), "{ok}");
        }
        for bad in ["0/7", "8/7", "0%", "101%", "7", "a/b", ""] {
            assert!(!is_subset(bad), "{bad}");
        }
        for ok in ["7d", "1y6m", "2d12h", "12h", "1y2m3d4h"] {
            assert!(is_keep_duration(ok), "{ok}");
        }
        for bad in ["", "d", "7x", "3d1y", "7 days"] {
            assert!(!is_keep_duration(bad), "{bad}");
        }
    }
}
