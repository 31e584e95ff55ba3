//! The bootstrap artifacts: `infra/droplet/bootstrap.sh` passes the real `shellcheck` and
//! carries the topology's values byte for byte through `sh`; `infra/droplet/cloud-init.yaml`
//! passes the real `cloud-init schema` and embeds exactly that script; the droplet's Terraform
//! takes it as `user_data` without planning a replacement when it changes.

use std::path::Path;
use std::process::Command;

use alembic_config::{load_str, Topology};
use alembic_render::bootstrap::{self, CLOUD_INIT_PATH, ON_SERVER_PATH, SCRIPT_PATH};
use alembic_render::ArtifactKind;
use alembic_testkit::tool;

const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINpQAd57S3mxZrgNj4iST7EFLPZokviDaoJfZg+JQTSd ci deploy key";
// A comment with every character sh treats specially: it must arrive as written.
const KEY_B: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHaE8kLxaSOtRXp7QjdA07x65AjADzzrXQvMNO5+ErwT o'brien \"$(touch /tmp/pwned)\" `id` ${HOME} \\ ; | & *";

fn topology(ssh_user: &str, address: bool) -> Topology {
    let keys = [KEY_A, KEY_B]
        .map(|k| serde_json::to_string(k).unwrap())
        .join(", ");
    let placement = if address {
        "address = \"203.0.113.20\"".to_owned()
    } else {
        "region = \"nyc3\"\nsize = \"s-1vcpu-1gb\"\nimage = \"debian-13-x64\"\n\
         ssh_keys = [\"1234\"]\nadmin_cidrs = [\"127.0.0.1/32\"]"
            .to_owned()
    };
    let src = format!(
        "version = 1\n[project]\nname = \"boot\"\ndomain = \"boot.example.com\"\n\
         [droplet]\nname = \"boot-prod\"\nssh_user = \"{ssh_user}\"\nroot = \"/srv/boot\"\n\
         authorized_keys = [{keys}]\n{placement}\n[ci]\nrepository = \"acme/boot\"\n"
    );
    let loaded = load_str("alembic.toml", &src);
    loaded
        .topology
        .unwrap_or_else(|| panic!("{:#?}", loaded.diagnostics))
}

fn topologies() -> Vec<(&'static str, Topology)> {
    vec![
        ("provisioned", topology("deploy", false)),
        ("byo-address", topology("deploy", true)),
        ("root-user", topology("root", false)),
        ("default", alembic_config::default_topology()),
    ]
}

#[test]
fn script_passes_shellcheck() {
    let Some(shellcheck) = tool("shellcheck") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, t) in topologies() {
        let set = alembic_render::render(&t);
        let a = set.get(SCRIPT_PATH).expect("the script is always rendered");
        assert_eq!(a.kind, ArtifactKind::Script);
        assert_eq!(a.mode, 0o755);
        let p = dir.path().join(format!("{name}.sh"));
        std::fs::write(&p, &a.bytes).unwrap();
        let out = Command::new(&shellcheck)
            .args(["--shell=sh", "--severity=style"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: shellcheck:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// The topology reaches the script only as shell variables; sh must read them back unchanged.
#[test]
fn script_variables_arrive_byte_for_byte() {
    let t = topology("deploy", false);
    let text = bootstrap::script(&t);
    // The variables block ends at the first blank line; run only that and print the values.
    let (header, _) = text.split_once("\n\n").unwrap();
    let probe = format!(
        "{header}\nprintf '%s\\0' \"$ALEMBIC_USER\" \"$ALEMBIC_ROOT\" \"$ALEMBIC_PERMIT_ROOT_LOGIN\" \"$ALEMBIC_AUTHORIZED_KEYS\"\n"
    );
    let out = Command::new("sh").arg("-c").arg(&probe).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = String::from_utf8(out.stdout).unwrap();
    let got: Vec<&str> = got.split('\0').collect();
    assert_eq!(
        got,
        [
            "deploy",
            "/srv/boot",
            "no",
            &format!("{KEY_A}\n{KEY_B}"),
            ""
        ]
    );
    assert!(!Path::new("/tmp/pwned").exists());
}

/// With ssh_user = root, forbidding root logins would lock the deploy user out.
#[test]
fn root_as_ssh_user_keeps_key_only_root_logins() {
    let text = bootstrap::script(&topology("root", false));
    assert!(text.contains("\nALEMBIC_PERMIT_ROOT_LOGIN=prohibit-password\n"));
    let text = bootstrap::script(&topology("deploy", false));
    assert!(text.contains("\nALEMBIC_PERMIT_ROOT_LOGIN=no\n"));
}

#[derive(serde::Deserialize)]
struct CloudConfig {
    write_files: Vec<WriteFile>,
    runcmd: Vec<Vec<String>>,
}

#[derive(serde::Deserialize)]
struct WriteFile {
    path: String,
    owner: String,
    permissions: String,
    content: String,
}

#[test]
fn cloud_init_passes_cloud_init_schema_and_embeds_the_script() {
    let Some(cloud_init) = tool("cloud-init") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, t) in topologies() {
        let set = alembic_render::render(&t);
        let a = set
            .get(CLOUD_INIT_PATH)
            .expect("user-data is always rendered");
        assert_eq!(a.kind, ArtifactKind::CloudInit);
        assert!(a.text().starts_with("#cloud-config\n"), "{name}");
        let p = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&p, &a.bytes).unwrap();
        let out = Command::new(&cloud_init)
            .args(["schema", "--config-file"])
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: cloud-init schema:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: CloudConfig = yaml_serde::from_slice(&a.bytes).unwrap();
        let script = set.get(SCRIPT_PATH).unwrap().text();
        assert_eq!(doc.write_files.len(), 1);
        let f = &doc.write_files[0];
        assert_eq!(
            (f.path.as_str(), f.owner.as_str(), f.permissions.as_str()),
            (ON_SERVER_PATH, "root:root", "0700")
        );
        assert_eq!(f.content, script, "{name}: the same script, byte for byte");
        assert_eq!(
            doc.runcmd,
            [vec!["sh".to_owned(), ON_SERVER_PATH.to_owned()]]
        );
    }
}

#[test]
fn the_droplet_boots_with_the_user_data_and_ignores_later_changes() {
    let Some(terraform) = tool("terraform") else {
        return;
    };
    let set = alembic_render::render(&topology("deploy", false));
    let main = set.get("infra/terraform/main.tf").unwrap().text();
    assert!(
        main.contains("  user_data  = file(\"${path.module}/../droplet/cloud-init.yaml\")\n"),
        "{main}"
    );
    assert!(
        main.contains("    ignore_changes  = [user_data]\n"),
        "{main}"
    );
    // The path in file() resolves from infra/terraform to the rendered user-data.
    assert!(Path::new("infra/terraform")
        .join("../droplet/cloud-init.yaml")
        .ends_with(Path::new(CLOUD_INIT_PATH).file_name().unwrap()));
    assert!(set.get(CLOUD_INIT_PATH).is_some());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.tf"), main).unwrap();
    let out = Command::new(terraform)
        .args(["fmt", "-check", "-diff"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
