//! Changes to a validated spec asked for on the command line for one deploy, such as the
//! seed's `--initial-traffic 30 --check-interval 2s`. They are applied to the [`AppSpec`]
//! rather than to the file so that the revision the daemon stores is what actually ran, and
//! they are checked here, in one pure function, because the model's invariants (weights
//! never decrease, intervals above zero) must hold after an override as after validation.

use std::time::Duration;

use crate::model::{AppSpec, CanaryStep, UpdateStrategy};

/// `spec` with the rollout settings of `--initial-traffic N` and `--check-interval D`.
///
/// `initial_traffic` (1–100) becomes the first step's weight of every canary service, and the
/// following steps whose weight is not above it are dropped, so `[10, 25, 50, 75, 100]` with
/// 30 becomes `[30, 50, 75, 100]`; the first step keeps its pause. `check_interval` (above 0)
/// becomes the analysis interval of every canary and blue-green service. It is an error when
/// no service uses a strategy the option applies to: the option would silently do nothing.
///
/// ```
/// # use zenith_spec::overrides::override_rollout;
/// # let text = "[app]\nname = \"shop\"\n[services.web]\ncommand = \"./web\"\nport = 8080\n\
/// #             [services.web.update]\nstrategy = \"canary\"\n";
/// # let spec = zenith_spec::parse(text, std::path::Path::new("zenith.toml")).unwrap();
/// let faster = override_rollout(&spec, Some(30), Some(std::time::Duration::from_secs(2)))?;
/// let zenith_spec::UpdateStrategy::Canary(canary) = &faster.services[0].update else { panic!() };
/// let weights: Vec<u32> = canary.steps.iter().map(|s| s.weight).collect();
/// assert_eq!(weights, [30, 50, 75, 100]);
/// # Ok::<(), String>(())
/// ```
pub fn override_rollout(
    spec: &AppSpec,
    initial_traffic: Option<u32>,
    check_interval: Option<Duration>,
) -> Result<AppSpec, String> {
    let mut out = spec.clone();
    if let Some(n) = initial_traffic {
        if !(1..=100).contains(&n) {
            return Err(format!(
                "--initial-traffic must be between 1 and 100 (percent of requests for the new revision), got {n}"
            ));
        }
        let mut any = false;
        for service in &mut out.services {
            if let UpdateStrategy::Canary(c) = &mut service.update {
                c.steps = start_at(&c.steps, n);
                any = true;
            }
        }
        if !any {
            return Err(format!(
                "--initial-traffic applies to canary services, and this app has none ({}); \
                 set strategy = \"canary\" in a service's update table, or leave the option out",
                strategies(spec)
            ));
        }
    }
    if let Some(d) = check_interval {
        if d.is_zero() {
            return Err("--check-interval must be longer than 0s, e.g. 2s".to_string());
        }
        let mut any = false;
        for service in &mut out.services {
            match &mut service.update {
                UpdateStrategy::Canary(c) => c.analysis.interval = d,
                UpdateStrategy::BlueGreen(b) => b.analysis.interval = d,
                UpdateStrategy::Rolling(_) => continue,
            }
            any = true;
        }
        if !any {
            return Err(format!(
                "--check-interval applies to canary and blue-green services, and this app has none ({}); \
                 set strategy = \"canary\" or \"blue-green\" in a service's update table, or leave the option out",
                strategies(spec)
            ));
        }
    }
    Ok(out)
}

/// The steps with the first one's weight set to `n` and the later ones not above it dropped:
/// weights must still never decrease.
fn start_at(steps: &[CanaryStep], n: u32) -> Vec<CanaryStep> {
    let mut out = Vec::with_capacity(steps.len());
    let pause = steps.first().and_then(|s| s.pause);
    out.push(CanaryStep { weight: n, pause });
    out.extend(steps.iter().skip(1).filter(|s| s.weight > n).cloned());
    out
}

/// `web: rolling, worker: blue-green`, for messages.
fn strategies(spec: &AppSpec) -> String {
    let each: Vec<String> = spec
        .services
        .iter()
        .map(|s| format!("{}: {}", s.name, s.update.name()))
        .collect();
    each.join(", ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::Pause;

    const TEXT: &str = "[app]\nname = \"shop\"\n\
        [services.web]\ncommand = \"./web\"\nport = 8080\n\
        [services.web.update]\nstrategy = \"canary\"\nsteps = [{ weight = 10, pause = \"manual\" }, 25, 50, 75, 100]\n\
        [services.api]\ncommand = \"./api\"\nport = 8081\n\
        [services.api.update]\nstrategy = \"blue-green\"\n\
        [services.worker]\ncommand = \"./worker\"\n";

    fn spec(text: &str) -> AppSpec {
        crate::parse(text, std::path::Path::new("zenith.toml")).unwrap()
    }

    fn weights(spec: &AppSpec) -> Vec<u32> {
        match &spec.services[0].update {
            UpdateStrategy::Canary(c) => c.steps.iter().map(|s| s.weight).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn initial_traffic_replaces_the_first_step_and_drops_those_not_above_it() {
        let spec = spec(TEXT);
        for (n, expected) in [
            (30, vec![30, 50, 75, 100]),
            (25, vec![25, 50, 75, 100]),
            (5, vec![5, 25, 50, 75, 100]),
            (100, vec![100]),
        ] {
            let out = override_rollout(&spec, Some(n), None).unwrap();
            assert_eq!(weights(&out), expected, "--initial-traffic {n}");
        }
        let out = override_rollout(&spec, Some(30), None).unwrap();
        let UpdateStrategy::Canary(c) = &out.services[0].update else {
            unreachable!()
        };
        assert_eq!(c.steps[0].pause, Some(Pause::Manual), "the first step keeps its pause");
        assert_eq!(out.services[1..], spec.services[1..], "other strategies are untouched");
    }

    #[test]
    fn check_interval_sets_canary_and_blue_green_analysis() {
        let out = override_rollout(&spec(TEXT), None, Some(Duration::from_secs(2))).unwrap();
        let intervals: Vec<_> = out
            .services
            .iter()
            .filter_map(|s| match &s.update {
                UpdateStrategy::Canary(c) => Some(c.analysis.interval),
                UpdateStrategy::BlueGreen(b) => Some(b.analysis.interval),
                UpdateStrategy::Rolling(_) => None,
            })
            .collect();
        assert_eq!(intervals, [Duration::from_secs(2); 2]);
    }

    #[test]
    fn nothing_asked_changes_nothing() {
        let spec = spec(TEXT);
        assert_eq!(override_rollout(&spec, None, None).unwrap(), spec);
    }

    #[test]
    fn out_of_range_values_are_errors() {
        let spec = spec(TEXT);
        for n in [0, 101] {
            let e = override_rollout(&spec, Some(n), None).unwrap_err();
            assert!(
                e.contains("between 1 and 100") && e.contains(&format!("got {n}")),
                "{e}"
            );
        }
        let e = override_rollout(&spec, None, Some(Duration::ZERO)).unwrap_err();
        assert!(e.contains("--check-interval must be longer than 0s"), "{e}");
    }

    #[test]
    fn an_option_no_service_can_use_is_an_error() {
        let text = "[app]\nname = \"shop\"\n[services.web]\ncommand = \"./web\"\nport = 8080\n\
                    [services.web.update]\nstrategy = \"blue-green\"\n[services.worker]\ncommand = \"./w\"\n";
        let spec = spec(text);
        let e = override_rollout(&spec, Some(30), None).unwrap_err();
        assert!(e.starts_with("--initial-traffic applies to canary services"), "{e}");
        assert!(e.contains("(web: blue-green, worker: rolling)"), "{e}");
        assert!(override_rollout(&spec, None, Some(Duration::from_secs(1))).is_ok());
        let rolling = self::spec("[app]\nname = \"a\"\n[services.w]\ncommand = \"x\"\n");
        let e = override_rollout(&rolling, None, Some(Duration::from_secs(1))).unwrap_err();
        assert!(
            e.contains("canary and blue-green services") && e.contains("(w: rolling)"),
            "{e}"
        );
    }
}
