//! Commands about the vault as a whole: init, passwd, completions.

use sfvault::unlock::Source;
use sfvault::vault::model::{TeamState, VaultData};
use sfvault::vault::{KdfParams, VaultKey};
use sfvault::{Error, Result};

use super::Context;
use super::args::{CompletionsArgs, InitArgs, KdfArgs, PasswdArgs};
use super::prompt;

/// Apply `--kdf-*` options on top of `base` (clap already bounded each value).
fn kdf_params(args: &KdfArgs, base: KdfParams) -> KdfParams {
    KdfParams {
        memory_kib: args.kdf_memory.map_or(base.memory_kib, |mib| mib * 1024),
        iterations: args.kdf_iterations.unwrap_or(base.iterations),
        parallelism: args.kdf_parallelism.unwrap_or(base.parallelism),
    }
}

pub fn init(ctx: &Context, args: InitArgs) -> Result<()> {
    if ctx.store.exists() {
        return Err(Error::failed(format!(
            "a vault already exists at {}; use it, or pick another path with --vault",
            ctx.store.path().display()
        )));
    }
    let kdf = kdf_params(&args.kdf, KdfParams::DEFAULT);
    let recipients = super::team_cmds::recipients_of(&args.recipient)?;
    let key = if args.no_passphrase {
        VaultKey::generate_for(recipients.clone()).map_err(Error::failed)?
    } else {
        let passphrase = prompt::new_passphrase(
            prompt::script_source(ctx.passphrase_fd),
            "SFVAULT_PASSPHRASE_FILE (a file only you can read), --passphrase-fd N, \
             SFVAULT_PASSPHRASE_CMD or SFVAULT_PASSPHRASE",
        )?;
        let key = VaultKey::generate(&passphrase, kdf).map_err(Error::failed)?;
        key.with_recipients(recipients.clone())
            .map_err(Error::failed)?
    };
    let mut data = VaultData::default();
    if !recipients.is_empty() {
        data.team = Some(TeamState::new());
    }
    ctx.store.create(&data, &key)?;
    let opens = if args.no_passphrase {
        format!("{} recipient(s) open it, no passphrase", recipients.len())
    } else {
        let mut s = format!(
            "Argon2id {} MiB, {} passes, {} lanes",
            kdf.memory_kib / 1024,
            kdf.iterations,
            kdf.parallelism
        );
        if !recipients.is_empty() {
            s.push_str(&format!("; and {} recipient(s)", recipients.len()));
        }
        s
    };
    ctx.done(
        &format!(
            "Created {} ({opens}).\nNext: sfvault {}add ORG/APP --consumer-key KEY",
            ctx.store.path().display(),
            ctx.vault_flag(),
        ),
        serde_json::json!({
            "vault": ctx.store.path().display().to_string(),
            "passphrase": !args.no_passphrase,
            "recipients": recipients.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
            "kdf": (!args.no_passphrase).then(|| serde_json::json!({"memory_mib": kdf.memory_kib / 1024, "iterations": kdf.iterations, "parallelism": kdf.parallelism})),
        }),
    )
}

pub fn passwd(ctx: &Context, args: PasswdArgs) -> Result<()> {
    let mut vault = ctx.open()?;
    if args.remove {
        return remove_passphrase(ctx, vault);
    }
    let kdf = kdf_params(&args.kdf, vault.key().slots().kdf_or_default());
    let source = match args.new_passphrase_fd {
        Some(fd) => Some(Source::Fd(fd)),
        None => std::env::var_os("SFVAULT_NEW_PASSPHRASE_FILE")
            .filter(|v| !v.is_empty())
            .map(|p| Source::File(p.into())),
    };
    let new_passphrase = prompt::new_passphrase(
        source,
        "--new-passphrase-fd N or SFVAULT_NEW_PASSPHRASE_FILE",
    )?;
    // A new data key, not just a re-wrapped one: whoever held an old copy of the file and the
    // old passphrase must not be able to read what is saved from now on.
    // The recipients (a team vault) are wrapped again to the new data key.
    let recipients = vault.key().slots().recipients().to_vec();
    let new_key =
        VaultKey::rekeyed(Some((&new_passphrase, kdf)), recipients).map_err(Error::failed)?;
    vault.rekey(new_key)?;
    ctx.done(
        &format!(
            "Passphrase changed for {} (with a new data key). The previous version ({}) still \
             opens with the old passphrase; delete it if the old passphrase was compromised.",
            ctx.store.path().display(),
            ctx.store.backup_path().display()
        ),
        serde_json::json!({
            "vault": ctx.store.path().display().to_string(),
            "previous_version": ctx.store.backup_path().display().to_string(),
            "kdf": {"memory_mib": kdf.memory_kib / 1024, "iterations": kdf.iterations, "parallelism": kdf.parallelism},
        }),
    )
}

pub fn completions(args: CompletionsArgs) -> Result<()> {
    super::output::print(&super::complete::registration(&args.shell)?)
}

/// `passwd --remove`: only the recipients open the vault from now on. A new data key, so a
/// copy from before plus the old passphrase opens nothing saved afterwards.
fn remove_passphrase(ctx: &Context, mut vault: sfvault::vault::store::OpenVault) -> Result<()> {
    let recipients = vault.key().slots().recipients().to_vec();
    if recipients.is_empty() {
        return Err(Error::Usage(
            "the passphrase is the only way to open this vault: add a recipient first \
             (`sfvault recipient add KEY`)"
                .into(),
        ));
    }
    if vault.key().passphrase_slot().is_none() {
        return ctx.done(
            "The vault has no passphrase already.",
            serde_json::json!({"vault": ctx.store.path().display().to_string(), "passphrase": false}),
        );
    }
    let count = recipients.len();
    let new_key = VaultKey::rekeyed(None, recipients).map_err(Error::failed)?;
    vault.rekey(new_key)?;
    ctx.done(
        &format!(
            "Removed the passphrase of {} (with a new data key): only its {count} recipient(s) \
             open it now, with --identity. The previous version ({}) still opens with the \
             passphrase.",
            ctx.store.path().display(),
            ctx.store.backup_path().display()
        ),
        serde_json::json!({"vault": ctx.store.path().display().to_string(), "passphrase": false, "recipients": count}),
    )
}
