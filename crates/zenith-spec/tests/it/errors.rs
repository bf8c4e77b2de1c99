//! One test per class of error: each asserts the line, the column where it matters, the field
//! path and the gist of the message, since those are what a user acts on.

use std::path::Path;

use zenith_spec::{SpecError, parse};

const HEAD: &str = "[app]\nname = \"shop\"\n\n[services.web]\ncommand = \"./web\"\n";

/// Parse and return the errors (the spec must be invalid).
pub(crate) fn errors(text: &str) -> Vec<SpecError> {
    match parse(text, Path::new("zenith.toml")) {
        Ok(spec) => panic!("expected errors, got {spec:?}"),
        Err(e) => e.0,
    }
}

/// The single error of `text`, checked against line, field and a piece of the message.
pub(crate) fn one(text: &str, line: usize, field: &str, says: &str) -> SpecError {
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:#?}");
    let e = e.into_iter().next().unwrap();
    assert_eq!((e.line, e.field.as_str()), (line, field), "{e}");
    assert!(e.message.contains(says), "{e}");
    e
}

#[test]
fn wrong_type_names_the_field_and_both_types() {
    let e = one(&format!("{HEAD}replicas = \"two\"\n"), 6, "services.web.replicas", "");
    assert_eq!(
        e.to_string(),
        "zenith.toml:6:12: services.web.replicas: expected an integer, found a string"
    );
}

#[test]
fn unknown_field_lists_the_allowed_ones() {
    let e = one(
        &format!("{HEAD}replica = 2\n"),
        6,
        "services.web.replica",
        "unknown field `replica`",
    );
    assert!(e.message.contains("allowed fields are: runtime, image, command"), "{e}");
    one(
        "[app]\nname = \"a\"\nowner = \"me\"\n",
        3,
        "app.owner",
        "name, revision_history_limit",
    );
}

#[test]
fn bad_duration_says_how_to_write_one() {
    let text = format!("{HEAD}\n[services.web.health]\ntcp = true\ninterval = \"5 parsecs\"\n");
    let e = one(
        &text,
        9,
        "services.web.health.interval",
        "invalid duration \"5 parsecs\"",
    );
    assert_eq!(e.column, 12);
    assert!(e.message.contains("\"10s\""), "{e}");
}

#[test]
fn bad_enum_value_lists_the_choices() {
    one(
        &format!("{HEAD}runtime = \"podman\"\n"),
        6,
        "services.web.runtime",
        "expected one of: process, docker",
    );
}

#[test]
fn missing_command_points_at_the_service() {
    one(
        "[app]\nname = \"a\"\n\n[services.web]\nreplicas = 2\n",
        4,
        "services.web.command",
        "needs a command",
    );
}

#[test]
fn docker_needs_an_image_and_process_refuses_one() {
    one(
        "[app]\nname = \"a\"\n[services.db]\nruntime = \"docker\"\n",
        3,
        "services.db.image",
        "needs an image",
    );
    one(
        &format!("{HEAD}image = \"nginx\"\n"),
        6,
        "services.web.image",
        "runtime = \"docker\"",
    );
}

#[test]
fn duplicate_ports_name_the_other_service() {
    let text = format!("{HEAD}port = 8080\n\n[services.api]\ncommand = \"./api\"\nport = 8080\n");
    one(&text, 10, "services.api.port", "already the port of service `web`");
}

#[test]
fn out_of_range_numbers() {
    one(
        &format!("{HEAD}port = 70000\n"),
        6,
        "services.web.port",
        "between 1 and 65535",
    );
    one(
        &format!("{HEAD}replicas = -1\n"),
        6,
        "services.web.replicas",
        "0 keeps it scaled down",
    );
    one(
        "[app]\nname = \"a\"\nrevision_history_limit = 0\n[services.w]\ncommand = \"x\"\n",
        3,
        "app.revision_history_limit",
        "between 1",
    );
}

#[test]
fn an_update_that_could_never_progress() {
    let text = format!("{HEAD}\n[services.web.update]\nmax_surge = 0\nmax_unavailable = 0\n");
    one(
        &text,
        8,
        "services.web.update.max_surge",
        "could never replace a replica",
    );
}

#[test]
fn unknown_strategy_lists_the_three() {
    let text = format!("{HEAD}\n[services.web.update]\nstrategy = \"recreate\"\n");
    let e = one(
        &text,
        8,
        "services.web.update.strategy",
        "unknown strategy \"recreate\"",
    );
    assert!(e.message.contains("\"rolling\""), "{e}");
    assert!(e.message.contains("\"canary\""), "{e}");
    assert!(e.message.contains("\"blue-green\""), "{e}");
}

#[test]
fn no_services() {
    one("[app]\nname = \"a\"\n", 1, "services", "no services");
    one("[app]\nname = \"a\"\n[services]\n", 3, "services", "no services");
}

#[test]
fn invalid_names() {
    one(
        "[app]\nname = \"Shop\"\n[services.w]\ncommand = \"x\"\n",
        2,
        "app.name",
        "lowercase",
    );
    one(
        "[app]\nname = \"a\"\n[services.Web_1]\ncommand = \"x\"\n",
        3,
        "services.Web_1",
        "invalid service name",
    );
}

#[test]
fn missing_secret_file_names_the_resolved_path() {
    let dir = tempfile::tempdir().unwrap();
    let origin = dir.path().join("zenith.toml");
    let text = format!("{HEAD}secrets = {{ db = \"./secrets/db\" }}\n");
    let e = parse(&text, &origin).unwrap_err().0;
    assert_eq!(
        (e[0].line, e[0].field.as_str()),
        (6, "services.web.secrets.db"),
        "{}",
        e[0]
    );
    assert!(
        e[0].message
            .contains(&dir.path().join("secrets/db").display().to_string()),
        "{}",
        e[0]
    );
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/db"), "pw").unwrap();
    let spec = parse(&text, &origin).unwrap();
    assert_eq!(spec.services[0].secrets["db"], dir.path().join("secrets/db"));
}

#[test]
fn health_takes_exactly_one_probe() {
    let two = format!("{HEAD}\n[services.web.health]\nhttp = \"/h\"\nexec = \"true\"\n");
    one(&two, 9, "services.web.health.exec", "more than one probe (http, exec)");
    let none = format!("{HEAD}\n[services.web.health]\ninterval = \"1s\"\n");
    one(&none, 7, "services.web.health", "no probe");
}

#[test]
fn semantic_errors_are_all_collected_in_file_order() {
    let text = "[app]\nname = \"Bad\"\n[services.a]\nport = 0\n[services.b]\nruntime = \"docker\"\n";
    let e = errors(text);
    let got: Vec<_> = e.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        got,
        [
            (2, "app.name"),
            (3, "services.a.command"),
            (4, "services.a.port"),
            (5, "services.b.image")
        ]
    );
}

#[test]
fn syntax_errors_have_a_position() {
    let e = one("[app]\nname = = \"a\"\n", 2, "", "invalid TOML");
    assert_eq!(e.column, 8);
}

#[test]
fn missing_file_is_one_clear_error() {
    let e = zenith_spec::load(Path::new("/nonexistent/zenith.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/zenith.toml: cannot read the spec file"),
        "{e}"
    );
}
