//! Fleet deployment: the Kubernetes manifest (packaging/kubernetes/etmem.yaml) holds a
//! DaemonSet with the node's processes, the unit's capabilities and nothing more, its
//! config from the ConfigMap and its metrics file on the node; the daemon starts with the
//! manifest's own arguments on a ConfigMap laid out as the kubelet lays it out; and the
//! image (packaging/container/build, buildah) is the static binary alone, FROM scratch,
//! and runs that daemon.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::daemon::{unique, Daemon, Scratch};
use serde_json::Value;

const MANIFEST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/kubernetes/etmem.yaml"
);

/// The manifest's documents, read by a real YAML parser (Debian python3-yaml) into JSON;
/// None (after `skip`) without it.
fn documents() -> Option<Vec<Value>> {
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
            MANIFEST,
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => Some(
            common::parse_json(&String::from_utf8_lossy(&o.stdout))
                .as_array()
                .unwrap()
                .clone(),
        ),
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("No module named 'yaml'") => {
            common::skip("python3's yaml module is missing (apt-get install python3-yaml)");
            None
        }
        Ok(o) => panic!("{MANIFEST}: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            common::skip(&format!("/usr/bin/python3: {e}"));
            None
        }
    }
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {MANIFEST}"))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap()).collect())
        .unwrap_or_default()
}

/// The capabilities of the systemd unit's CapabilityBoundingSet, without `CAP_`.
fn unit_capabilities() -> BTreeSet<String> {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/etmemd.service"
    ))
    .unwrap();
    unit.lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("the unit has a CapabilityBoundingSet")
        .split_whitespace()
        .map(|c| c.trim_start_matches("CAP_").to_string())
        .collect()
}

/// The etmemd container of the DaemonSet.
fn etmemd_container(ds: &Value) -> &Value {
    let pod = &ds["spec"]["template"]["spec"];
    pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "etmemd")
        .expect("an etmemd container")
}

/// The value after `option` in the container's arguments.
fn arg<'a>(c: &'a Value, option: &str) -> &'a str {
    let args = strings(&c["args"]);
    let at = args
        .iter()
        .position(|a| *a == option)
        .unwrap_or_else(|| panic!("no {option}"));
    args[at + 1]
}

/// The volume mounted at the mount path that `path` lies under, and the path inside it.
fn volume_of<'a>(ds: &'a Value, path: &'a str) -> (&'a Value, &'a str) {
    let c = etmemd_container(ds);
    let m = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| path.starts_with(&format!("{}/", m["mountPath"].as_str().unwrap())))
        .max_by_key(|m| m["mountPath"].as_str().unwrap().len())
        .unwrap_or_else(|| panic!("{path} is on no volume"));
    let name = &m["name"];
    let v = ds["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == *name)
        .unwrap();
    (v, &path[m["mountPath"].as_str().unwrap().len() + 1..])
}

#[test]
fn the_daemonset_has_what_etmemd_needs_and_no_more() {
    let Some(docs) = documents() else { return };
    let ds = kind(&docs, "DaemonSet");
    assert_eq!(ds["apiVersion"], "apps/v1");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(
        ds["spec"]["selector"]["matchLabels"], ds["spec"]["template"]["metadata"]["labels"],
        "the selector selects the template's pods"
    );
    assert_eq!(pod["hostPID"], true, "the node's processes, to scan them");
    assert_ne!(pod["hostNetwork"], true, "the socket stays in the pod");
    assert_ne!(pod["hostIPC"], true);
    let c = etmemd_container(ds);
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    // The default AppArmor profile forbids writing /sys/kernel/mm and reading pagemap of
    // processes outside it; the default SELinux domain as much.
    assert_eq!(sc["appArmorProfile"]["type"], "Unconfined");
    assert_eq!(sc["seLinuxOptions"]["type"], "spc_t");
    let added: BTreeSet<String> = strings(&sc["capabilities"]["add"])
        .into_iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        added,
        unit_capabilities(),
        "the same capabilities as the unit"
    );
    assert_eq!(
        c["image"].as_str().unwrap(),
        format!("etmem:{}", env!("CARGO_PKG_VERSION"))
    );
    // Every mount is a volume of the pod and every volume is mounted.
    let names = |list: &'static str, of: &Value| -> BTreeSet<String> {
        of[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("volumeMounts", c), names("volumes", pod));
    // The config file etmemd loads is a key of the ConfigMap, mounted 0600.
    let (config, key) = volume_of(ds, arg(c, "--load"));
    let cm = kind(&docs, "ConfigMap");
    assert_eq!(config["configMap"]["name"], cm["metadata"]["name"]);
    assert_eq!(config["configMap"]["defaultMode"], 0o600);
    assert!(cm["data"][key].is_string(), "the ConfigMap holds {key}");
    assert_eq!(cm["metadata"]["namespace"], ds["metadata"]["namespace"]);
    // The metrics file is on the node, for its node_exporter.
    let (metrics, file) = volume_of(ds, arg(c, "--metrics-file"));
    assert!(metrics["hostPath"]["path"].is_string(), "{metrics}");
    assert!(file.ends_with(".prom"));
    // The kernel interfaces the backends write are the node's, not the container's
    // read-only /sys.
    for path in [
        "/sys/kernel/mm/page_idle/bitmap",
        "/sys/kernel/mm/damon/admin",
        "/sys/fs/cgroup/memory.reclaim",
    ] {
        let (v, _) = volume_of(ds, path);
        assert!(v["hostPath"]["path"].is_string(), "{path}: {v}");
    }
}

/// A ConfigMap volume as the kubelet writes it: the files in a timestamped directory,
/// `..data` a link to it, and each key a link through `..data`.
fn configmap_volume(s: &Scratch, data: &serde_json::Map<String, Value>) -> String {
    let dir = s.path("configmap");
    let stamp = format!("{dir}/..2026_12_02_00_00_00.000000000");
    std::fs::create_dir_all(&stamp).unwrap();
    for (key, text) in data {
        let f = format!("{stamp}/{key}");
        std::fs::write(&f, text.as_str().unwrap()).unwrap();
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(format!("..data/{key}"), format!("{dir}/{key}")).unwrap();
    }
    std::os::unix::fs::symlink("..2026_12_02_00_00_00.000000000", format!("{dir}/..data")).unwrap();
    dir
}

/// The container's arguments with its mount paths moved to `config` and `metrics`, and
/// its socket to `socket`.
fn local_args(c: &Value, config: &str, metrics: &str, socket: &str) -> Vec<String> {
    let mut args: Vec<String> = strings(&c["args"])
        .into_iter()
        .map(str::to_string)
        .collect();
    let at = args.iter().position(|a| a == "-s").unwrap();
    args[at + 1] = socket.to_string();
    for a in &mut args {
        *a = a
            .replace("/etc/etmem", config)
            .replace("/var/lib/etmem-metrics", metrics);
    }
    args
}

#[test]
fn the_manifests_daemon_starts_on_its_configmap() {
    let Some(docs) = documents() else { return };
    if !common::root_or_skip("the ConfigMap's files are root's, as etmemd requires") {
        return;
    }
    let c = etmemd_container(kind(&docs, "DaemonSet"));
    let s = Scratch::new("fleet");
    let config = configmap_volume(&s, kind(&docs, "ConfigMap")["data"].as_object().unwrap());
    let metrics = s.path("metrics");
    std::fs::create_dir_all(&metrics).unwrap();
    let socket = unique("fleet");
    let args = local_args(c, &config, &metrics, &socket);
    assert_eq!(
        args[0], "etmemd",
        "the image's entry point is the multicall binary"
    );
    let d = Daemon::spawn(&socket, Command::new(common::etmem()).args(&args));
    let show = d.show();
    assert!(
        show.contains("redis-server     redis            slide            true"),
        "{show}"
    );
    let prom = format!("{metrics}/etmem.prom");
    assert!(common::wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&prom).is_ok_and(|t| t.contains("etmem_"))
    }));
}

fn buildah(args: &[&str]) -> String {
    let out = Command::new("buildah")
        .env("STORAGE_DRIVER", "vfs")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("buildah runs");
    assert!(
        out.status.success(),
        "buildah {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes the test's working container and image, passed or not.
struct Image(String, Option<String>);

impl Drop for Image {
    fn drop(&mut self) {
        for args in [
            vec!["rm", self.1.as_deref().unwrap_or("")],
            vec!["rmi", &self.0],
        ] {
            let _ = Command::new("buildah")
                .env("STORAGE_DRIVER", "vfs")
                .args(args)
                .output();
        }
    }
}

#[test]
fn the_image_is_the_binary_alone_and_runs_the_daemon() {
    if !common::on_path("buildah") {
        common::skip("buildah is not installed (apt-get install buildah)");
        return;
    }
    let Some(docs) = documents() else { return };
    if !common::root_or_skip("buildah builds and runs images as root here") {
        return;
    }
    let tag = format!("localhost/etmem-test:{}", std::process::id());
    let built = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/container/build"
    ))
    .arg(&tag)
    .env("STORAGE_DRIVER", "vfs")
    .output()
    .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let mut image = Image(tag.clone(), None);
    let config: Value =
        serde_json::from_str(&buildah(&["inspect", "--type", "image", &tag])).unwrap();
    let oci = &config["OCIv1"]["config"];
    assert_eq!(strings(&oci["Entrypoint"]), ["/usr/bin/etmem"]);
    assert_eq!(strings(&oci["Cmd"])[0], "etmemd");
    // FROM scratch: one regular file, the static binary.
    let ctr = buildah(&["from", &tag]);
    image.1 = Some(ctr.clone());
    let root = buildah(&["mount", &ctr]);
    let mut files = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(&root)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                files.push(e.path().strip_prefix(&root).unwrap().display().to_string());
            }
        }
    }
    buildah(&["umount", &ctr]);
    assert_eq!(files, ["usr/bin/etmem"]);
    // The manifest's daemon in the image, its ConfigMap mounted at /etc/etmem; chroot
    // isolation keeps the host's network namespace, so the host's client reaches it.
    let c = etmemd_container(kind(&docs, "DaemonSet"));
    let s = Scratch::new("image");
    let cm = configmap_volume(&s, kind(&docs, "ConfigMap")["data"].as_object().unwrap());
    let socket = unique("image");
    let mut args = local_args(c, "/etc/etmem", "/run", &socket);
    args.insert(0, "etmem".into());
    let volume = format!("{cm}:/etc/etmem:ro");
    let d = Daemon::spawn(
        &socket,
        Command::new("buildah")
            .env("STORAGE_DRIVER", "vfs")
            .args(["run", "--isolation", "chroot", "-v", &volume, &ctr, "--"])
            .args(&args),
    );
    let show = d.show();
    assert!(
        show.contains("redis            slide            true"),
        "{show}"
    );
    let holder = etmem::rpc::client::holder(&socket).expect("who holds the socket");
    let _ = Command::new("kill").arg(holder.pid.to_string()).status();
}
