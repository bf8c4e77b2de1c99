//! The state tables: hooks, schedules with retention and verify runs, drills and health
//! thresholds, their defaults, and the errors that name the field.

use std::path::Path;
use std::time::Duration;

use zenith_spec::{HealthThresholds, RestoreOnStart, Retention, parse};

const HEAD: &str = "[app]\nname = \"shop\"\n\n[services.db]\ncommand = \"./db\"\nstate_dirs = [\"./data\"]\n";

fn errors(text: &str) -> String {
    parse(text, Path::new("zenith.toml")).unwrap_err().to_string()
}

#[test]
fn a_full_state_setup_means_what_it_says() {
    let text = format!(
        "{HEAD}
[services.db.state]
snapshot_before_deploy = true
snapshot_on_stop = true
restore_on_start = \"latest\"
on_stop_timeout = \"30s\"
type = \"data\"

[schedules.data]
cron = \"0 2 * * *\"
timezone = \"UTC\"
keep = {{ daily = 7, weekly = 4, monthly = 12, within = \"2d\", tags = [\"keep\"] }}
verify = {{ cron = \"0 4 * * SUN\", subset = \"1/7\" }}

[schedules.config]
cron = \"@weekly\"

[drill]
cron = \"0 5 * * 6\"

[health]
age_warning = \"12h\"
age_critical = \"36h\"
size_warning = \"10GB\"
size_critical = \"20GB\"
"
    );
    let spec = parse(&text, Path::new("/srv/shop/zenith.toml")).unwrap();
    let st = &spec.services[0].state;
    assert!(st.snapshot_before_deploy && st.snapshot_on_stop);
    assert_eq!(st.restore_on_start, RestoreOnStart::Latest);
    assert_eq!(st.on_stop_timeout, Duration::from_secs(30));
    assert_eq!(st.snapshot_type, "data");
    let kinds: Vec<&str> = spec.schedules.iter().map(|s| s.snapshot_type.as_str()).collect();
    assert_eq!(kinds, ["config", "data"]);
    let data = &spec.schedules[1];
    assert_eq!(data.services, ["db"], "every service with state by default");
    assert_eq!(
        data.keep,
        Retention {
            daily: Some(7),
            weekly: Some(4),
            monthly: Some(12),
            within: Some("2d".into()),
            tags: vec!["keep".into()],
            ..Default::default()
        }
    );
    assert_eq!(data.verify.as_ref().unwrap().subset, "1/7");
    assert!(!spec.schedules[0].keep.is_set());
    assert_eq!(spec.drill.as_ref().unwrap().cron, "0 5 * * 6");
    assert_eq!(spec.health.age_warning, Duration::from_secs(12 * 3600));
    assert_eq!(spec.health.size_critical, Some(20_000_000_000));
}

#[test]
fn defaults_change_nothing() {
    let spec = parse(HEAD, Path::new("zenith.toml")).unwrap();
    let st = &spec.services[0].state;
    assert!(!st.snapshot_before_deploy && !st.snapshot_on_stop);
    assert_eq!(st.restore_on_start, RestoreOnStart::None);
    assert_eq!(st.snapshot_type, "state");
    assert!(spec.schedules.is_empty() && spec.drill.is_none());
    assert_eq!(spec.health, HealthThresholds::default());
    assert_eq!(spec.health.age_critical, Duration::from_secs(48 * 3600));
}

#[test]
fn old_revisions_without_state_fields_still_load() {
    let spec = parse(HEAD, Path::new("zenith.toml")).unwrap();
    let mut json: serde_json::Value = serde_json::to_value(&spec).unwrap();
    for key in ["schedules", "drill", "health"] {
        json.as_object_mut().unwrap().remove(key);
    }
    json["services"][0].as_object_mut().unwrap().remove("state");
    let back: zenith_spec::AppSpec = serde_json::from_value(json).unwrap();
    assert_eq!(back, spec);
}

#[test]
fn bad_state_tables_are_named_with_their_fields() {
    let e = errors(
        "[app]\nname = \"shop\"\n[services.web]\ncommand = \"./web\"\n[services.web.state]\nsnapshot_on_stop = true\n",
    );
    assert!(
        e.contains("services.web.state.snapshot_on_stop") && e.contains("add state_dirs"),
        "{e}"
    );
    let e = errors(&format!("{HEAD}[services.db.state]\ntype = \"Big Data\"\n"));
    assert!(
        e.contains("services.db.state.type") && e.contains("invalid snapshot type"),
        "{e}"
    );
    let e = errors(&format!(
        "{HEAD}[services.db.state]\nrestore_on_start = \"sometimes\"\n"
    ));
    assert!(e.contains("restore_on_start"), "{e}");
    let e = errors(&format!("{HEAD}[schedules.data]\ncron = \"0 25 * * *\"\n"));
    assert!(
        e.contains("schedules.data.cron") && e.contains("hour: 25 is out of range 0-23"),
        "{e}"
    );
    let e = errors(&format!("{HEAD}[schedules.data]\nkeep = {{ daily = 7 }}\n"));
    assert!(e.contains("schedules.data.cron") && e.contains("missing"), "{e}");
    let e = errors(&format!(
        "{HEAD}[schedules.data]\ncron = \"@daily\"\ntimezone = \"Mars/Olympus\"\n"
    ));
    assert!(e.contains("unknown time zone \"Mars/Olympus\""), "{e}");
    let e = errors(&format!(
        "{HEAD}[schedules.data]\ncron = \"@daily\"\nservices = [\"web\"]\n"
    ));
    assert!(e.contains("no service named \"web\""), "{e}");
    let e = errors(&format!(
        "{HEAD}[schedules.data]\ncron = \"@daily\"\nkeep = {{ within = \"a week\" }}\n"
    ));
    assert!(e.contains("schedules.data.keep.within"), "{e}");
    let e = errors(&format!(
        "{HEAD}[schedules.data]\ncron = \"@daily\"\nkeep = {{ daily = -1 }}\n"
    ));
    assert!(e.contains("schedules.data.keep.daily"), "{e}");
    let e = errors(&format!(
        "{HEAD}[schedules.data]\ncron = \"@daily\"\nverify = {{ cron = \"@daily\", subset = \"8/7\" }}\n"
    ));
    assert!(e.contains("schedules.data.verify.subset"), "{e}");
    let e = errors(&format!("{HEAD}[drill]\ncron = \"often\"\n"));
    assert!(e.contains("drill.cron"), "{e}");
    let e = errors(&format!(
        "{HEAD}[health]\nage_warning = \"3d\"\nsize_warning = \"lots\"\n"
    ));
    assert!(
        e.contains("health.age_warning") && e.contains("health.size_warning"),
        "{e}"
    );
    let e = errors(&format!("{HEAD}env = {{ STATE_DIRECTORY = \"/x\" }}\n"));
    assert!(e.contains("services.db.env.STATE_DIRECTORY"), "{e}");
    let e =
        errors("[app]\nname = \"shop\"\n[services.web]\ncommand = \"./web\"\n[schedules.data]\ncron = \"@daily\"\n");
    assert!(e.contains("nothing to snapshot"), "{e}");
}

#[test]
fn a_retention_file_beside_the_spec_adds_its_tables() {
    let dir = tempfile::tempdir().unwrap();
    let spec_file = dir.path().join("zenith.toml");
    std::fs::write(&spec_file, format!("{HEAD}[schedules.config]\ncron = \"@weekly\"\n")).unwrap();
    std::fs::write(
        dir.path().join("retention.toml"),
        "[schedules.data]\ncron = \"0 2 * * *\"\nkeep = { daily = 7, weekly = 4 }\n\n[health]\nage_warning = \"6h\"\n",
    )
    .unwrap();
    let spec = zenith_spec::load_with_retention(&spec_file).unwrap();
    let kinds: Vec<&str> = spec.schedules.iter().map(|s| s.snapshot_type.as_str()).collect();
    assert_eq!(kinds, ["config", "data"]);
    assert_eq!(spec.schedules[1].keep.daily, Some(7));
    assert_eq!(spec.health.age_warning, Duration::from_secs(6 * 3600));
    // Without the file, the spec alone.
    assert_eq!(zenith_spec::load(&spec_file).unwrap().schedules.len(), 1);

    // A table in both files, and a bad value, are named with the retention file's lines.
    std::fs::write(
        dir.path().join("retention.toml"),
        "[schedules.config]\ncron = \"@daily\"\n\n[schedules.data]\ncron = \"0 2 * * *\"\nkeep = { weekly = \"four\" }\n",
    )
    .unwrap();
    let e = zenith_spec::load_with_retention(&spec_file).unwrap_err().to_string();
    assert!(e.contains("retention.toml:6"), "{e}");
    std::fs::write(
        dir.path().join("retention.toml"),
        "[schedules.config]\ncron = \"@daily\"\n\n[schedules.data]\ncron = \"61 2 * * *\"\n",
    )
    .unwrap();
    let e = zenith_spec::load_with_retention(&spec_file).unwrap_err().to_string();
    assert!(
        e.contains("retention.toml:1") && e.contains("declares [schedules.config] too"),
        "{e}"
    );
    assert!(e.contains("retention.toml:5") && e.contains("minute: 61"), "{e}");
}
