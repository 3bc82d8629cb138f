//! Rotation at Salesforce under faults: every request of a run (consumer pair, resume, abort,
//! rollback, retire, certificate) dropped before or after Salesforce acted, answered 500, or the
//! process SIGKILLed while it waits; after each, the vault's pair works and `--resume` or
//! `--abort` converges. 160 cells; docs/SECURITY.md has the figures.

mod support;

use support::fake_sf::{Fault, Step};
use support::rotation_world::*;

/// One cell: `step`'s nth request gets `fault` during a run of `run`; then the vault's pair
/// must work, and `finish` (resume or abort, possibly twice) must converge.
fn cell(step: Step, fault: Fault, finish: &str, run: &[&str], prepare: &dyn Fn(&World)) {
    let w = world();
    prepare(&w);
    let before = w.pair();
    w.sf.fault(step, 1, fault);
    let what = format!("{step:?} × {fault:?} then {finish}");
    let mut args = vec!["rotate", CI, "consumer", "--admin", ADMIN];
    args.extend_from_slice(run);
    if matches!(fault, Fault::HoldBefore | Fault::HoldAfter) {
        assert!(
            run_and_kill(&w, &args),
            "{what}: the run ended before its held request"
        );
    } else {
        let out = w.tv.run(&args, None);
        let code = out.status.code();
        assert!(
            matches!(code, Some(1) | Some(7) | Some(8)),
            "{what}: exit {code:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("vault"),
            "{what}: no sentence on where the pairs are: {stderr}"
        );
    }
    w.assert_pair_works(&format!("{what}: after the fault"));
    let out = w.rotate(&[finish]);
    assert!(
        out.status.success(),
        "{what}: {finish} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    w.assert_clean(&format!("{what}: after {finish}"));
    let step_now = w.step();
    if finish == "--abort" && !step_now.contains("step=promoted") {
        assert_eq!(
            w.pair(),
            before,
            "{what}: abort did not bring the old pair back"
        );
    }
    // Idempotent: a second run changes nothing.
    let again = w.pair();
    assert!(
        w.rotate(&[finish]).status.success(),
        "{what}: second {finish}"
    );
    assert_eq!(
        w.pair(),
        again,
        "{what}: the second {finish} changed the vault"
    );
    w.assert_clean(&format!("{what}: after a second {finish}"));
    if finish == "--resume" && !step_now.contains("step=promoted") {
        // Nothing was recorded: a new start finishes the job.
        w.rotate_ok(&["--at-salesforce"]);
        w.assert_clean(&format!("{what}: after a new start"));
    }
}

fn matrix(steps: &[Step], run: &[&str], prepare: &dyn Fn(&World)) -> usize {
    let mut cells = 0;
    for &step in steps {
        for fault in FAULTS {
            for finish in ["--resume", "--abort"] {
                cell(step, fault, finish, run, prepare);
                cells += 1;
            }
        }
    }
    cells
}

#[test]
fn fault_matrix_finding_the_app() {
    let n = matrix(
        &[Step::Usage, Step::Credentials],
        &["--at-salesforce"],
        &|_| {},
    );
    eprintln!("fault matrix, finding the app: {n} cells");
}

#[test]
fn fault_matrix_checking_the_slot_and_staging() {
    let n = matrix(
        &[Step::ConsumerPart, Step::StagedGet, Step::StagedPost],
        &["--at-salesforce"],
        &|_| {},
    );
    eprintln!("fault matrix, slot and staging: {n} cells");
}

#[test]
fn fault_matrix_proving_and_promoting() {
    let n = matrix(
        &[Step::Token, Step::StagedPatch],
        &["--at-salesforce"],
        &|_| {},
    );
    eprintln!("fault matrix, proof and promotion: {n} cells");
}

#[test]
fn fault_matrix_deleting_a_leftover() {
    // A Rotated pair from an earlier rotation is in the slot: its deletion is a step too.
    let n = matrix(&[Step::StagedDelete], &["--at-salesforce"], &|w| {
        w.rotate_ok(&["--at-salesforce"]);
        forget_the_old_pair(w);
    });
    eprintln!("fault matrix, leftover deletion: {n} cells");
}

/// The finishing runs have steps too: a rotation left at "staged" (its promotion failed), then
/// `--resume` or `--abort` faulted at each of their requests; the vault's pair must still work,
/// and the same command run again must converge.
#[test]
fn fault_matrix_resuming_and_aborting() {
    let mut cells = 0;
    let plans: [(&str, &[Step]); 2] = [
        (
            "--resume",
            &[
                Step::ConsumerPart,
                Step::StagedGet,
                Step::Token,
                Step::StagedPatch,
            ],
        ),
        ("--abort", &[Step::ConsumerPart, Step::StagedDelete]),
    ];
    for (finish, steps) in plans {
        for &step in steps {
            for fault in FAULTS {
                let w = world();
                let original = w.pair();
                w.sf.fault(Step::StagedPatch, 1, Fault::Status500);
                assert_eq!(w.rotate(&["--at-salesforce"]).status.code(), Some(8));
                assert!(w.step().contains("step=staged"));
                w.sf.fault(step, 1, fault);
                let what = format!("{finish} faulted: {step:?} × {fault:?}");
                let args = ["rotate", CI, "consumer", "--admin", ADMIN, finish];
                if matches!(fault, Fault::HoldBefore | Fault::HoldAfter) {
                    assert!(run_and_kill(&w, &args), "{what}");
                } else {
                    let out = w.tv.run(&args, None);
                    assert!(!out.status.success(), "{what}: succeeded despite the fault");
                }
                w.assert_pair_works(&format!("{what}: after the fault"));
                let out = w.rotate(&[finish]);
                assert!(
                    out.status.success(),
                    "{what}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                w.assert_clean(&what);
                let step_now = w.step();
                if finish == "--abort" {
                    assert!(step_now.contains("step=aborted"), "{what}: {step_now}");
                    assert_eq!(w.pair(), original, "{what}");
                } else {
                    assert!(step_now.contains("step=promoted"), "{what}: {step_now}");
                }
                cells += 1;
            }
        }
    }
    // A refused proof rolls back; its deletion of the staged pair faulted.
    for fault in FAULTS {
        let w = world();
        let original = w.pair();
        w.sf.fail_next(400, "invalid_client", "invalid client credentials");
        w.sf.fault(Step::StagedDelete, 1, fault);
        let what = format!("rollback faulted: StagedDelete × {fault:?}");
        let args = [
            "rotate",
            CI,
            "consumer",
            "--admin",
            ADMIN,
            "--at-salesforce",
        ];
        if matches!(fault, Fault::HoldBefore | Fault::HoldAfter) {
            assert!(run_and_kill(&w, &args), "{what}");
        } else {
            assert!(!w.tv.run(&args, None).status.success(), "{what}");
        }
        assert_eq!(
            w.pair(),
            original,
            "{what}: the old pair must be back before the delete"
        );
        w.assert_pair_works(&what);
        assert!(w.rotate(&["--abort"]).status.success(), "{what}");
        w.assert_clean(&what);
        cells += 1;
    }
    eprintln!("fault matrix, resume, abort and rollback: {cells} cells");
}

#[test]
fn fault_matrix_retiring() {
    let mut cells = 0;
    for step in [Step::ConsumerPart, Step::StagedGet, Step::StagedDelete] {
        for fault in FAULTS {
            let w = world();
            w.rotate_ok(&["--at-salesforce"]);
            let old = w.sf.eca_staged(&w.ids.app_id).unwrap();
            w.sf.fault(step, 1, fault);
            let args = ["rotate", CI, "consumer", "--retire", "--admin", ADMIN];
            let what = format!("retire: {step:?} × {fault:?}");
            if matches!(fault, Fault::HoldBefore | Fault::HoldAfter) {
                assert!(run_and_kill(&w, &args), "{what}");
            } else {
                let out = w.tv.run(&args, None);
                assert!(!out.status.success(), "{what}");
            }
            w.assert_clean(&what);
            let out = w.rotate_ok(&["--retire"]);
            assert!(
                out["action"] == "retired" || out["action"] == "nothing",
                "{what}: {out}"
            );
            assert!(
                !w.sf.accepts(&old.key, &old.secret),
                "{what}: the old pair survived"
            );
            w.assert_clean(&format!("{what}: after retire"));
            cells += 1;
        }
    }
    eprintln!("fault matrix, retire: {cells} cells");
}

#[test]
fn fault_matrix_certificates() {
    let mut cells = 0;
    for step in [Step::MetadataRead, Step::MetadataUpdate, Step::Token] {
        for fault in FAULTS {
            for finish in ["--resume", "--abort"] {
                let (w, _) = jwt_world();
                w.sf.fault(step, 1, fault);
                let args = [
                    "rotate",
                    "acme/jwt",
                    "private_key",
                    "--at-salesforce",
                    "--admin",
                    ADMIN,
                ];
                let what = format!("certificate: {step:?} × {fault:?} then {finish}");
                if matches!(fault, Fault::HoldBefore | Fault::HoldAfter) {
                    assert!(run_and_kill(&w, &args), "{what}");
                } else {
                    let out = w.tv.run(&args, None);
                    assert!(!out.status.success(), "{what}");
                }
                let out = rotate_key(&w, &[finish]);
                assert!(
                    out.status.success(),
                    "{what}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                // Converged: nothing in progress, and the vault's current key logs in.
                let out = w.tv.run(&["get", "-n", "acme/jwt", "key_rotation"], None);
                let step_now = String::from_utf8_lossy(&out.stdout).into_owned();
                assert!(!step_now.contains("step=deploying"), "{what}: {step_now}");
                let out = w.tv.run(&["token", "acme/jwt", "--refresh"], None);
                assert!(
                    out.status.success(),
                    "{what}: the vault's key does not log in: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                cells += 1;
            }
        }
    }
    eprintln!("fault matrix, certificates: {cells} cells");
}
