//! Every action the workflows use, pinned to a full commit SHA, and the names the workflows
//! share with the deploy side (secrets, the SARIF file, the Terraform version).

/// An action pinned to a full commit SHA, with the release that commit is.
#[derive(Clone, Copy, Debug)]
pub struct Pin {
    /// `owner/repo` of the action.
    pub action: &'static str,
    /// The full commit SHA it is pinned to.
    pub sha: &'static str,
    /// The release that commit is (written beside the pin).
    pub version: &'static str,
}

impl Pin {
    /// The `uses:` value: `action@sha`.
    pub fn uses(&self) -> String {
        format!("{}@{}", self.action, self.sha)
    }
}

// Commit SHAs of release tags. Each was checked against the upstream repository where its files
// at that commit are public (package.json / CHANGELOG naming the release) or against several
// independent workflows and runner logs resolving the tag to the same commit; update together.
/// `actions/checkout`, pinned.
pub const CHECKOUT: Pin = Pin {
    action: "actions/checkout",
    sha: "11bd71901bbe5b1630ceea73d27597364c9af683",
    version: "v4.2.2",
};
/// v5 and later take `package-manager-cache: false`, which the deploy workflow needs.
pub const SETUP_NODE: Pin = Pin {
    action: "actions/setup-node",
    sha: "2028fbc5c25fe9cf00d9f06a71cc4710d4507903",
    version: "v6.0.0",
};
/// `pnpm/action-setup`, pinned.
pub const PNPM_SETUP: Pin = Pin {
    action: "pnpm/action-setup",
    sha: "a7487c7e89a18df4991f7f222e4898a00d66ddda",
    version: "v4.1.0",
};
/// `actions/setup-python`, pinned.
pub const SETUP_PYTHON: Pin = Pin {
    action: "actions/setup-python",
    sha: "a26af69be951a213d495a4c3e4e4022e16d87065",
    version: "v5.6.0",
};
/// `astral-sh/setup-uv`, pinned.
pub const SETUP_UV: Pin = Pin {
    action: "astral-sh/setup-uv",
    sha: "f0ec1fc3b38f5e7cd731bb6ce540c5af426746bb",
    version: "v6.1.0",
};
/// `actions/setup-go`, pinned.
pub const SETUP_GO: Pin = Pin {
    action: "actions/setup-go",
    sha: "d35c59abb061a4a6fb18e82ac0862c26744d6ab5",
    version: "v5.5.0",
};
/// Installs the toolchain with rustup and caches `~/.cargo` and `target` (Swatinem/rust-cache);
/// its CHANGELOG at this commit tops out at 1.13.0.
pub const SETUP_RUST: Pin = Pin {
    action: "actions-rust-lang/setup-rust-toolchain",
    sha: "fb51252c7ba57d633bc668f941da052e410add48",
    version: "v1.13.0",
};
/// Commit checked in hashicorp/setup-terraform itself (its package.json at this commit reads
/// 3.1.2, the release of 2024-08-19).
pub const SETUP_TERRAFORM: Pin = Pin {
    action: "hashicorp/setup-terraform",
    sha: "b9cd54a3c349d3f38e8881555d616ced269862dd",
    version: "v3.1.2",
};
/// Its package.json at this commit reads 3.29.0.
pub const UPLOAD_SARIF: Pin = Pin {
    action: "github/codeql-action/upload-sarif",
    sha: "ce28f5bb42b7a9f2c824e633a3f6ee835bab6858",
    version: "v3.29.0",
};
/// `docker/setup-buildx-action`, pinned.
pub const SETUP_BUILDX: Pin = Pin {
    action: "docker/setup-buildx-action",
    sha: "e468171a9de216ec08956ac3ada2f0791b6bd435",
    version: "v3.11.1",
};
/// `docker/login-action`, pinned.
pub const DOCKER_LOGIN: Pin = Pin {
    action: "docker/login-action",
    sha: "74a5d142397b4f367a81961eba4e8cd7edddf772",
    version: "v3.4.0",
};
/// `docker/build-push-action`, pinned.
pub const BUILD_PUSH: Pin = Pin {
    action: "docker/build-push-action",
    sha: "263435318d21b8e681c14492fe198d362a7d2c83",
    version: "v6.18.0",
};
/// `actions/attest-build-provenance`, pinned.
pub const ATTEST_PROVENANCE: Pin = Pin {
    action: "actions/attest-build-provenance",
    sha: "e8998f949152b193b063cb0ec769d69d929409be",
    version: "v2.4.0",
};
/// Every pinned action the workflows may use.
pub const PINS: [Pin; 15] = [
    CHECKOUT,
    SETUP_NODE,
    PNPM_SETUP,
    SETUP_PYTHON,
    SETUP_UV,
    SETUP_GO,
    SETUP_RUST,
    SETUP_TERRAFORM,
    UPLOAD_SARIF,
    SETUP_BUILDX,
    DOCKER_LOGIN,
    BUILD_PUSH,
    ATTEST_PROVENANCE,
    // Used only by this repository's own release workflow, whose pins the tests hold to this
    // same table.
    UPLOAD_ARTIFACT,
    DOWNLOAD_ARTIFACT,
];
/// `actions/upload-artifact`, pinned.
pub const UPLOAD_ARTIFACT: Pin = Pin {
    action: "actions/upload-artifact",
    sha: "ea165f8d65b6e75b540449e92b4886f43607fa02",
    version: "v4.6.2",
};
/// `actions/download-artifact`, pinned.
pub const DOWNLOAD_ARTIFACT: Pin = Pin {
    action: "actions/download-artifact",
    sha: "d3f86a106a0bac45b974a628896c90dbdf5c8093",
    version: "v4.3.0",
};

/// Terraform the deploy job installs when it provisions the droplet (the infra stage needs
/// >= 1.5; this is the series the runner is tested with).
pub const TERRAFORM_VERSION: &str = "~1.11.0";

/// The `ci.secrets` name of the private key the deploy job loads into `ssh-agent`.
pub const SSH_KEY_SECRET: &str = "DEPLOY_SSH_KEY";
/// The `ci.secrets` name of the droplet's `known_hosts` line(s), written to `~/.ssh/known_hosts`
/// so the deploy's `ssh` (BatchMode, host keys checked) knows the droplet.
pub const KNOWN_HOSTS_SECRET: &str = "DEPLOY_KNOWN_HOSTS";
/// Secrets the image build logs in with, for a registry other than ghcr.io (which takes the
/// job's own token).
pub const REGISTRY_USER_SECRET: &str = "REGISTRY_USERNAME";
/// The registry password secret (see [`REGISTRY_USER_SECRET`]).
pub const REGISTRY_PASSWORD_SECRET: &str = "REGISTRY_PASSWORD";
/// Where code scanning reads the SARIF report from.
pub const SARIF_FILE: &str = "alembic.sarif";

/// The directory GitHub reads workflows from (relative to the repository root).
pub const WORKFLOWS_DIR: &str = ".github/workflows/";
/// The checks workflow.
pub const CI_PATH: &str = ".github/workflows/ci.yml";
/// The deploy workflow.
pub const DEPLOY_PATH: &str = ".github/workflows/deploy.yml";
