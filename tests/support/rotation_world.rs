//! The world of the rotation tests (tests/rotation.rs, tests/rotation_faults.rs): a fake org
//! with an admin's connected app and External Client Apps, a vault with their entries, and the
//! checks that the vault's pair works and that a rotation ended clean.

#![allow(dead_code)]

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::TestVault;
use super::fake_sf::{AppConfig, EcaConfig, EcaIds, FakeSalesforce, Fault, Quirks, Step, add_app};

pub const ADMIN: &str = "acme/admin";
pub const CI: &str = "acme/ci";

pub fn admin_app() -> AppConfig {
    AppConfig {
        consumer_key: "3MVG9ADMINKEYadmin".into(),
        consumer_secret: "ADMINSECRET".into(),
        username: "admin@acme.example".into(),
        ..AppConfig::default()
    }
}

/// A fake org with the admin's connected app and one External Client App, and a vault with
/// `acme/admin` (client credentials) and `acme/ci` (the ECA, with `flow`). The admin's token is
/// fetched once, so the runs below make only their own requests.
pub struct World {
    pub tv: TestVault,
    pub sf: FakeSalesforce,
    pub ids: EcaIds,
}

pub fn world_with(flow: &str, eca: EcaConfig, quirks: Option<Quirks>) -> World {
    let sf = FakeSalesforce::start(admin_app());
    if let Some(q) = quirks {
        sf.set_quirks(q);
    }
    let ids = sf.add_eca(eca);
    let tv = TestVault::new();
    add_app(
        &tv,
        ADMIN,
        &admin_app(),
        Some(&sf.url),
        "client-credentials",
    );
    let ci = AppConfig {
        consumer_key: ids.key.clone(),
        consumer_secret: ids.secret.clone(),
        username: "ci@acme.example".into(),
        ..AppConfig::default()
    };
    add_app(&tv, CI, &ci, Some(&sf.url), flow);
    tv.ok(&["token", ADMIN]);
    World { tv, sf, ids }
}

pub fn eca(listed: bool) -> EcaConfig {
    EcaConfig {
        developer_name: "ci_app".into(),
        label: "CI".into(),
        username: "ci@acme.example".into(),
        certificate_pem: None,
        listed_in_usage: listed,
    }
}

pub fn world() -> World {
    world_with("client-credentials", eca(true), None)
}

impl World {
    pub fn pair(&self) -> (String, String) {
        (
            self.tv.get(CI, "consumer_key"),
            self.tv.get(CI, "consumer_secret"),
        )
    }

    /// The vault's current pair is one Salesforce accepts now.
    pub fn assert_pair_works(&self, when: &str) {
        let (k, s) = self.pair();
        assert!(
            self.sf.accepts(&k, &s),
            "{when}: the vault's pair ({k}) is not accepted by Salesforce"
        );
    }

    pub fn step(&self) -> String {
        let out = self.tv.run(&["get", "-n", CI, "rotation"], None);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn rotate(&self, extra: &[&str]) -> std::process::Output {
        let mut args = vec!["--json", "rotate", CI, "consumer", "--admin", ADMIN];
        args.extend_from_slice(extra);
        self.tv.run(&args, None)
    }

    /// `rotate CI consumer ARG… --admin ADMIN`, text output.
    pub fn rotate_text(&self, extra: &[&str]) -> std::process::Output {
        let mut args = vec!["rotate", CI, "consumer", "--admin", ADMIN];
        args.extend_from_slice(extra);
        self.tv.run(&args, None)
    }

    pub fn rotate_ok(&self, extra: &[&str]) -> Value {
        let out = self.rotate(extra);
        assert!(
            out.status.success(),
            "rotate {extra:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON outcome")
    }

    /// Clean: nothing in progress, the vault's pair is Salesforce's primary, nothing Active staged.
    pub fn assert_clean(&self, when: &str) {
        let (k, _) = self.pair();
        let step = self.step();
        assert!(
            !["staging", "staged", "aborting"]
                .iter()
                .any(|s| step.contains(&format!("step={s} "))
                    || step.ends_with(&format!("step={s}"))),
            "{when}: still in progress: {step}"
        );
        assert_eq!(
            self.sf.eca_primary(&self.ids.app_id).0,
            k,
            "{when}: the vault's key is not the primary ({step})"
        );
        if let Some(st) = self.sf.eca_staged(&self.ids.app_id) {
            assert_ne!(st.state, "Active", "{when}: an Active pair is left staged");
        }
        self.assert_pair_works(when);
    }
}

/// Make the vault's record say the last rotation's old pair was retired, while Salesforce
/// still holds it Rotated: a leftover the vault no longer claims.
pub fn forget_the_old_pair(w: &World) {
    w.tv.ok(&["set", CI, "rotation", "kind=consumer step=retired"]);
}

/// A run whose stage request was dropped before Salesforce acted: recorded "staging", nothing staged.
pub fn staging_after_dropped_post(w: &World) {
    w.sf.fault(Step::StagedPost, 1, Fault::DropBefore);
    let out = w.rotate(&["--at-salesforce"]);
    assert_eq!(
        out.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(w.step().contains("step=staging"), "{}", w.step());
    assert!(w.sf.eca_staged(&w.ids.app_id).is_none());
}

/// Run `args` in the background; when the fake holds a request, SIGKILL the process.
pub fn run_and_kill(w: &World, args: &[&str]) -> bool {
    let mut cmd = w.tv.cmd();
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child: Child = cmd.spawn().expect("spawn sfvault");
    let deadline = Instant::now() + Duration::from_secs(20);
    while w.sf.held().is_none() {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        assert!(Instant::now() < deadline, "the held request never came");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    w.sf.release();
    true
}

/// A JWT entry `acme/jwt` on an ECA whose certificate is the entry's key's.
pub fn jwt_world() -> (World, String) {
    let w = world();
    // A key made in the vault; its certificate deployed as the app's.
    w.tv.ok(&[
        "add",
        "acme/jwt-seed",
        "--consumer-key",
        "SEED",
        "--no-secret",
    ]);
    let cert = w.tv.ok(&["keygen", "acme/jwt-seed"]);
    let mut e = eca(true);
    e.developer_name = "jwt_app".into();
    e.username = "jwt@acme.example".into();
    e.certificate_pem = Some(cert.clone());
    let ids = w.sf.add_eca(e);
    let key = w.tv.get("acme/jwt-seed", "private_key");
    w.tv.ok(&[
        "add",
        "acme/jwt",
        "--consumer-key",
        &ids.key,
        "--username",
        "jwt@acme.example",
        "--login-url",
        &w.sf.url,
        "--flow",
        "jwt",
        "--no-secret",
    ]);
    w.tv.ok_stdin(&["set", "acme/jwt", "private_key", "-"], key.as_bytes());
    w.tv.ok(&["token", "acme/jwt"]);
    (w, ids.app_id)
}

pub fn rotate_key(w: &World, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "--json",
        "rotate",
        "acme/jwt",
        "private_key",
        "--admin",
        ADMIN,
    ];
    args.extend_from_slice(extra);
    w.tv.run(&args, None)
}

pub const FAULTS: [Fault; 5] = [
    Fault::DropBefore,
    Fault::DropAfter,
    Fault::Status500,
    Fault::HoldBefore,
    Fault::HoldAfter,
];
