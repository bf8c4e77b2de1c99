//! The Docker-only settings: what a container service's volumes, port, limits and image
//! health check become, and the errors for settings a process cannot have.

use std::path::{Path, PathBuf};

use zenith_spec::{ContainerSettings, Probe, VolumeMount, VolumeSource, parse};

fn errors(text: &str) -> String {
    parse(text, Path::new("/srv/shop/zenith.toml")).unwrap_err().to_string()
}

const WEB: &str = "[app]\nname = \"shop\"\n\n[services.web]\nruntime = \"docker\"\nimage = \"shop:1\"\n";

#[test]
fn a_container_service_gets_its_volumes_port_limits_and_image_probe() {
    let text = format!(
        "{WEB}state_dirs = [\"./data\"]
volumes = [\"./data:/var/lib/shop\", \"cache:/cache:ro\", \"/etc/shop:/etc/shop:rw\"]
container_port = 8080
resources = {{ cpus = 1.5, memory = \"256MiB\" }}
health = {{ image = true }}
"
    );
    let spec = parse(&text, Path::new("/srv/shop/zenith.toml")).unwrap();
    let web = &spec.services[0];
    assert_eq!(
        web.container,
        ContainerSettings {
            port: Some(8080),
            volumes: vec![
                VolumeMount {
                    source: VolumeSource::Bind(PathBuf::from("/srv/shop/data")),
                    target: "/var/lib/shop".into(),
                    read_only: false,
                },
                VolumeMount {
                    source: VolumeSource::Volume("cache".into()),
                    target: "/cache".into(),
                    read_only: true,
                },
                VolumeMount {
                    source: VolumeSource::Bind(PathBuf::from("/etc/shop")),
                    target: "/etc/shop".into(),
                    read_only: false,
                },
            ],
            nano_cpus: Some(1_500_000_000),
            memory: Some(256 * 1024 * 1024),
            state_volumes: Vec::new(),
            volume_dirs: Default::default(),
        }
    );
    assert_eq!(web.health.as_ref().unwrap().probe, Probe::Image);
}

#[test]
fn container_settings_on_a_process_are_refused() {
    let e = errors(
        "[app]\nname = \"shop\"\n\n[services.web]\ncommand = \"./web\"\nvolumes = [\"data:/data\"]\ncontainer_port = 80\nhealth = { image = true }\n",
    );
    assert!(
        e.contains("services.web.volumes") && e.contains("applies to containers only"),
        "{e}"
    );
    assert!(e.contains("services.web.container_port"), "{e}");
    assert!(
        e.contains("services.web.health.image") && e.contains("only a container"),
        "{e}"
    );
}

#[test]
fn malformed_container_settings_name_the_field() {
    let e = errors(&format!(
        "{WEB}volumes = [\"data\", \"x:relative\", \"bad name!:/x\", \"a:/b:rx\"]\ncontainer_port = 70000\nresources = {{ cpus = -1, memory = \"1KB\" }}\n"
    ));
    for needle in [
        "volumes[0]",
        "is not SOURCE:TARGET",
        "volumes[1]",
        "must be an absolute path inside the container",
        "volumes[2]",
        "neither a volume name",
        "volumes[3]",
        "container_port",
        "between 1 and 65535",
        "resources.cpus",
        "resources.memory",
        "6 MiB",
    ] {
        assert!(e.contains(needle), "missing {needle:?} in\n{e}");
    }
}

#[test]
fn a_container_state_directory_must_be_mounted() {
    let e = errors(&format!(
        "{WEB}state_dirs = [\"./data\"]\nvolumes = [\"other:/data\"]\n"
    ));
    assert!(
        e.contains("services.web.state_dirs[0]") && e.contains("/srv/shop/data is not mounted into the container"),
        "{e}"
    );
}

#[test]
fn a_state_volume_must_be_a_named_volume_of_the_container() {
    let ok = parse(
        &format!("{WEB}volumes = [\"db:/var/lib/db\"]\nstate_volumes = [\"db\"]\nstate = {{ snapshot_before_deploy = true }}\n[schedules.data]\ncron = \"@daily\"\n"),
        Path::new("/srv/shop/zenith.toml"),
    )
    .unwrap();
    assert_eq!(ok.services[0].container.state_volumes, ["db"]);
    assert!(ok.services[0].has_state());
    assert_eq!(ok.schedules[0].services, ["web"]);

    let e = errors(&format!(
        "{WEB}volumes = [\"./db:/var/lib/db\"]\nstate_volumes = [\"db\"]\n"
    ));
    assert!(
        e.contains("services.web.state_volumes[0]") && e.contains("\"db\" is not a named volume of this service"),
        "{e}"
    );
    let e = errors("[app]\nname = \"shop\"\n\n[services.web]\ncommand = \"./web\"\nstate_volumes = [\"db\"]\n");
    assert!(
        e.contains("services.web.state_volumes") && e.contains("containers only"),
        "{e}"
    );
}
