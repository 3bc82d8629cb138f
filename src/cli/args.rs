//! What the user typed: clap definitions only. Validation beyond clap's happens in the
//! command modules, which turn these into calls on the library.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use sfvault::vault::fields::Flow;

/// `--flow`: one of the field table's flows, listed in help and completions (the library's
/// [`Flow`] knows nothing of clap, so this is clap's `ValueEnum` built from [`Flow::ALL`]).
fn flow_parser() -> impl TypedValueParser<Value = Flow> {
    PossibleValuesParser::new(Flow::ALL.map(Flow::name))
        .map(|name| Flow::parse(&name).expect("a possible value is a flow"))
}

pub(super) const AFTER_HELP: &str = r#"Quick start:
  # create the vault (asks for a passphrase twice)
  sfvault init
  # store a connected app (asks for the consumer secret if its flow needs one)
  sfvault add acme-prod/ci --consumer-key 3MVG9… --username ci@acme.com \
      --flow jwt --private-key-file server.key
  # print one value, for $(…); what is stored, with ages, no secrets
  sfvault get acme-prod/ci consumer_key
  sfvault list

Scripts unlock without a prompt through --passphrase-fd N, SFVAULT_PASSPHRASE_FILE, SFVAULT_PASSPHRASE_CMD or SFVAULT_PASSPHRASE (weakest); with none of them and no terminal, sfvault exits with code 5 at once. With --json, a failure is also {"error": {"code", "kind", "message"}} on stdout.

Exit codes: 0 ok, 1 other failure, 2 usage, 3 not found, 4 wrong passphrase, 5 locked and no way to ask, 6 vault corrupted, unknown or rolled back, 7 Salesforce refused, 8 network or TLS failure, 9 vault busy, 10 refused as unsafe; exec and run exit with the command's own code."#;

/// `sfvault --help` lists the commands by what they are for, in this order (every visible
/// command in exactly one group: a test holds the list to the parser).
pub const COMMAND_GROUPS: [(&str, &[&str]); 6] = [
    (
        "Everyday",
        &[
            "get", "read", "show", "list", "add", "set", "rm", "undelete", "mv",
        ],
    ),
    (
        "Hand-off to programs",
        &["exec", "run", "inject", "export", "import"],
    ),
    ("OAuth", &["login", "token", "revoke", "keygen"]),
    ("Lifecycle", &["rotate", "history", "audit"]),
    ("Agent", &["unlock", "lock", "status"]),
    (
        "Vault",
        &[
            "init",
            "passwd",
            "recipient",
            "slice",
            "git-setup",
            "merge",
            "backup",
            "restore",
            "config",
            "completions",
        ],
    ),
];

/// The parser with sfvault's help layout: the top-level help lists commands by group
/// ([`COMMAND_GROUPS`]) instead of clap's one flat list.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let about = |name: &str| {
        cmd.find_subcommand(name)
            .and_then(|c| c.get_about())
            .map(|a| a.to_string())
            .unwrap_or_default()
    };
    let width = COMMAND_GROUPS
        .iter()
        .flat_map(|(_, names)| names.iter())
        .map(|n| n.len())
        .max()
        .unwrap_or(0);
    let mut list = String::new();
    for (group, names) in COMMAND_GROUPS {
        list.push_str(&format!("{group}:\n"));
        for name in names.iter().filter(|n| cmd.find_subcommand(n).is_some()) {
            // Wrapped at 80 columns here, under its own column (clap would wrap it under the
            // command names).
            let mut line = format!("  {name:width$} ");
            for word in about(name).split(' ') {
                if line.chars().count() + 1 + word.chars().count() > 80 {
                    list.push_str(line.trim_end());
                    list.push('\n');
                    line = " ".repeat(width + 3);
                }
                line.push(' ');
                line.push_str(word);
            }
            list.push_str(&line);
            list.push('\n');
        }
        list.push('\n');
    }
    // The list goes in as before-help, placed after the usage: clap would read braces in
    // the commands' descriptions as template tags.
    cmd.before_help(list).help_template(
        "{about-with-newline}\n{usage-heading} {usage}\n\n{before-help}Options:\n{options}\n{after-help}",
    )
}

/// sfvault: an encrypted vault for Salesforce connected-app credentials.
#[derive(Debug, Parser)]
#[command(name = "sfvault", version, about, after_help = AFTER_HELP,
    after_long_help = super::exit::long_help(), subcommand_help_heading = "Commands")]
pub struct Cli {
    /// Options every command understands.
    #[command(flatten)]
    pub global: GlobalArgs,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command understands (listed apart, under "Global options", in each command's
/// help).
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Vault file [default: the user data dir, e.g. ~/.local/share/sfvault/vault.sfv]
    #[arg(long, global = true, env = "SFVAULT_PATH", value_name = "PATH")]
    pub vault: Option<PathBuf>,

    /// Print data as JSON (for commands whose output is data)
    #[arg(long, global = true)]
    pub json: bool,

    /// Print nothing but data and errors
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// Read the passphrase from this open file descriptor (e.g. `3<passfile`)
    #[arg(long, global = true, value_name = "N")]
    pub passphrase_fd: Option<u32>,

    /// Unlock with this private key (an age identity file or an SSH private key) instead of a
    /// passphrase; tried before every passphrase source
    #[arg(
        long,
        global = true,
        env = "SFVAULT_IDENTITY_FILE",
        value_name = "FILE",
        hide_env_values = true
    )]
    pub identity: Option<PathBuf>,

    /// Do not use a running agent; unlock in this process
    #[arg(long, global = true)]
    pub no_agent: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new, empty vault (asks for its passphrase twice)
    #[command(
        after_help = r#"Asks for the new passphrase twice on a terminal; a script gives it through SFVAULT_PASSPHRASE_FILE (or --passphrase-fd, SFVAULT_PASSPHRASE_CMD, SFVAULT_PASSPHRASE).

With --recipient, the vault is a team vault from the start: each key's holder opens it with --identity FILE; with --no-passphrase as well, only they do (no passphrase to guess or share).

Examples:
  sfvault init
  SFVAULT_PASSPHRASE_FILE=~/.sfvault-pass sfvault init --kdf-memory 128
  sfvault init --recipient ~/.ssh/id_ed25519.pub --no-passphrase"#
    )]
    Init(InitArgs),

    /// Create an entry for a connected app; asks for the consumer secret
    #[command(
        after_help = r#"The consumer secret is read from a hidden prompt, or from stdin when stdin is not a terminal; a flow that needs no secret (jwt) is not asked for one, and --no-secret skips it. The private key file is read once and stored in the vault; delete it afterwards.

Examples:
  sfvault add acme-prod/ci --consumer-key 3MVG9… --username ci@acme.com \
      --flow jwt --private-key-file server.key
  printf %s "$SECRET" | sfvault add acme-prod/backup --consumer-key 3MVG9… \
      --flow client-credentials --login-url https://acme.my.salesforce.com"#
    )]
    Add(AddArgs),

    /// Set one field; secret values come from a hidden prompt or stdin, never from the command line
    #[command(after_help = r#"Examples:
  sfvault set acme-prod/ci username ci@acme.com
  # a secret: from a hidden prompt, or from stdin with -
  sfvault set acme-prod/ci consumer_secret
  vault-tool read secret | sfvault set acme-prod/ci consumer_secret -
  # a field of your own that is not secret
  sfvault set acme-prod/ci org_notes 'weekly deploys' --public"#)]
    Set(SetArgs),

    /// Print one field's value, raw, for `$(…)`
    #[command(after_help = r#"Examples:
  export SF_CONSUMER_KEY=$(sfvault get acme-prod/ci consumer_key)
  # to the clipboard instead, cleared after 45 s if it still holds the value
  sfvault get acme-prod/ci consumer_secret --clip"#)]
    Get(GetArgs),

    /// Print one value named by a reference, sfvault://ORG/APP/FIELD (as `op read`)
    #[command(
        after_help = r#"The pseudo-fields access_token and instance_url run the entry's OAuth flow (a cached token is reused while it is fresh). A malformed reference is a usage error (exit 2), a missing entry or field exit 3.

Examples:
  sfvault read sfvault://acme-prod/ci/consumer_key
  TOKEN=$(sfvault read sfvault://acme-prod/ci/access_token)
  # to the clipboard, cleared after 45 s
  sfvault read --clip sfvault://acme-prod/ci/consumer_secret"#
    )]
    Read(ReadArgs),

    /// Show an entry; secret values are masked unless --reveal
    #[command(after_help = r#"Examples:
  # fields, ages, last use; secrets as ********
  sfvault show acme-prod/ci
  sfvault show acme-prod/ci --json | jq .fields"#)]
    Show(ShowArgs),

    /// List entries with their flow and field ages; never prints secrets
    #[command(after_help = r#"Examples:
  sfvault list
  # a glob over ORG/APP, or text the address contains
  sfvault list 'acme-*/ci'
  sfvault list uat --json
  # what `rm` kept, which `undelete` can bring back
  sfvault list --removed"#)]
    List(ListArgs),

    /// Remove an entry and all its fields (kept for `undelete`; asks unless --yes)
    #[command(
        after_help = r#"The entry is kept, encrypted in the vault, for removed-days (default 30): `sfvault undelete ORG/APP` brings it back, `sfvault list --removed` shows what is kept. --purge destroys it and every kept copy for good (also in vault.sfv.bak, which it replaces even when the entry is already gone with nothing kept); copies in backups or git remain, so rotate a leaked secret at Salesforce.

Examples:
  sfvault rm acme-dev1/ci
  sfvault rm acme-dev1/ci --yes
  sfvault rm acme-dev1/ci --purge --yes"#
    )]
    Rm(RmArgs),

    /// Rename an entry
    #[command(after_help = r#"Examples:
  sfvault mv acme-dev1/ci acme-dev2/ci"#)]
    Mv(MvArgs),

    /// Bring back an entry that `rm` removed, with every field and its history
    #[command(
        after_help = r#"`rm` keeps a removed entry, encrypted inside the vault, for removed-days (default 30; see `sfvault config removed-days`); `sfvault list --removed` shows what can be brought back.

Examples:
  sfvault undelete acme-dev1/ci
  # when the name is taken again
  sfvault undelete acme-dev1/ci --as acme-dev1/ci-old"#
    )]
    Undelete(UndeleteArgs),

    /// Change the vault passphrase (with a new data key; entries are kept)
    #[command(
        after_help = r#"The new passphrase comes from --new-passphrase-fd N, SFVAULT_NEW_PASSPHRASE_FILE, or a prompt (asked twice). --kdf-* options set new Argon2id costs at the same time.

On a team vault, --remove drops the passphrase (only recipients open it then), and `passwd` without it adds one back.

Examples:
  sfvault passwd
  sfvault passwd --kdf-memory 256 --kdf-iterations 4
  sfvault --identity ~/.ssh/id_ed25519 passwd --remove"#
    )]
    Passwd(PasswdArgs),

    /// Who else can open the vault: age and SSH public keys (a team vault)
    #[command(
        subcommand,
        after_help = r#"The vault's data key is wrapped once per recipient in the standard age format, so each team member and each CI runner unlocks with a key they already have (--identity FILE or SFVAULT_IDENTITY_FILE): an age identity from age-keygen, an SSH ed25519 or RSA key, or an age plugin key (YubiKey, TPM). The passphrase keeps working unless `passwd --remove` drops it.

Removing a recipient makes a new data key for every later save, but copies of the vault already in git history (or in backups) stay readable to them: rotate at Salesforce what they could read.

Examples:
  sfvault recipient add --name alice \
    age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
  sfvault recipient add ~/.ssh/id_ed25519.pub
  sfvault recipient list
  sfvault recipient rm alice"#
    )]
    Recipient(RecipientCommand),

    /// Least privilege for machines: a vault with only chosen entries, for chosen keys
    #[command(
        subcommand,
        after_help = r#"A slice is a vault of its own, next to the team vault, holding only the chosen entries (current values of the fields you set: no history, no cached tokens) and opened only by its own recipients, such as a CI runner's or a backup host's age key. Its definition lives encrypted in the team vault, so someone who can only push to the repository cannot add themselves to it. Where it is opened (sfvault --vault ci.sfv --identity KEY get …) a slice is read-only; `slice sync` in the team vault rewrites it after the entries change, and leaves it untouched when nothing did.

Examples:
  sfvault slice add ci --file ci.sfv --entry acme-prod/ci \
    --to age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
  sfvault rotate acme-prod/ci consumer --at-salesforce --admin acme-prod/admin
  sfvault slice sync
  sfvault slice sync --check    # exit 1 if a slice is out of date
  git add ci.sfv team.sfv && git commit -m 'new pair for CI'"#
    )]
    Slice(SliceCommand),

    /// Make this git repository merge the vault field by field (once per clone)
    #[command(
        name = "git-setup",
        after_help = r#"Run in each clone (git does not copy its configuration): registers `sfvault merge` as the merge driver in .git/config, and adds to .gitattributes (commit it) a line that sends the vault to it, and to .gitignore its .bak, .lock and temporary files. The vault is --vault (or SFVAULT_PATH), a file inside the repository.

Merges run non-interactively inside git: give sfvault your identity in the environment (SFVAULT_IDENTITY_FILE), or a passphrase source.

Examples:
  sfvault --vault team.sfv git-setup
  SFVAULT_IDENTITY_FILE=~/.ssh/id_ed25519 git pull"#
    )]
    GitSetup,

    /// Merge two versions of a vault (git's merge driver): field by field
    #[command(
        after_help = r#"BASE is the common ancestor, OURS and THEIRS the two versions; the result replaces OURS. Fields changed on one side take that side's value; the same field changed on both sides keeps the newer value and puts the other in its history, and the command exits 1 naming it, so git shows a conflict. Entries added on either side are kept; one removed on one side and untouched on the other is removed (undelete brings it back). Recipients added or removed on either side are merged; the result gets a new generation.

Examples:
  sfvault merge base.sfv ours.sfv theirs.sfv
  # after a conflict: keep the other value, then mark it resolved
  sfvault --vault team.sfv set acme-prod/ci consumer_secret --restore 1
  git add team.sfv && git commit"#
    )]
    Merge(MergeArgs),

    /// Run a command with the entry's credentials (and a fresh token) in its environment
    #[command(
        after_help = r#"The child gets SF_CONSUMER_KEY, SF_USERNAME, SF_LOGIN_URL and, unless --no-token, SF_ACCESS_TOKEN, SF_INSTANCE_URL, SF_TARGET_ORG (= the token) and SF_ORG_INSTANCE_URL, so `sf` works against the org without an auth file.

The token is one Salesforce accepted in the last 5 minutes (a cached token older than that is checked with one call, and renewed if Salesforce dropped it); --refresh gets a new one. A token sf cannot take from its environment (a JWT-shaped one) and --dev-hub go into a throwaway sf home (HOME), removed when the command ends. sfvault signs JWT logins itself: prefer the token to `sf org login jwt` inside exec, which stores the key's path and fails to re-read it once the command has ended.

Without CMD, your $SHELL (else /bin/sh) opens with that environment until `exit`; every child has SFVAULT_ENTRY=ORG/APP (for a prompt), and a shell inside such a shell is refused.

Secrets only when asked: --with consumer_secret gives SF_CONSUMER_SECRET; --with private_key gives SF_JWT_KEY_FILE=/dev/fd/N, an in-memory file (never on disk) for tools that sign themselves. sfvault becomes the command: its exit code and the signals sent to it are the command's.

Examples:
  sfvault exec acme-prod/ci -- sf project deploy start --source-dir force-app
  sfvault exec acme-prod/ci --refresh -- \
      sf data query --query 'SELECT Id FROM Account LIMIT 1'
  sfvault exec acme-prod/ci --dev-hub acme-hub/ci -- sf org create scratch
  # a shell with the org's credentials and token
  sfvault exec acme-prod/ci"#
    )]
    Exec(ExecArgs),

    /// Run a command with every sfvault:// reference in its environment (or an env file) resolved
    #[command(
        after_help = r#"Every environment value of the form sfvault://ORG/APP/FIELD is replaced by the value; with --env-file F, the KEY=VALUE lines of F are added (references resolved too). A reference that cannot be resolved stops everything (exit 3) before the command starts.

Examples:
  SF_CLIENT_ID=sfvault://acme-prod/ci/consumer_key sfvault run -- ./backup.sh
  sfvault run --env-file .env.refs -- ./backup.sh
  # secret values in the command's output replaced by <concealed by sfvault>
  sfvault run --mask --env-file .env.refs -- ./deploy.sh"#
    )]
    Run(RunArgs),

    /// Print a template with {{ sfvault://ORG/APP/FIELD }} placeholders resolved, to stdout
    #[command(
        after_help = r#"The template comes from -i FILE or stdin. Writing secrets into a regular file is refused (exit 10) unless --force-plaintext; pipes are fine.

Examples:
  sfvault inject -i config.tpl | kubectl create secret generic sf \
      --from-file=config=/dev/stdin"#
    )]
    Inject(InjectArgs),

    /// Print an entry's credentials as env lines, JSON, or an SFDX auth URL, to stdout
    #[command(after_help = r#"Examples:
  eval "$(sfvault export acme-prod/ci --format env)"
  sfvault export acme-prod/ci --format dotenv --no-token | docker run \
      --env-file /dev/stdin alpine env
  sfvault export acme-prod/ci --format sfdx-url | sf org login sfdx-url \
      --sfdx-url-file /dev/stdin
  # a credential process for backup tools
  sfvault export acme-prod/ci --format json"#)]
    Export(ExportArgs),

    /// Create or update an entry from stdin (sfdx-url, json, dotenv)
    #[command(after_help = r#"Examples:
  sf org display --verbose --json | jq -r .result.sfdxAuthUrl | \
      sfvault import acme-prod/me --format sfdx-url
  sfvault import acme-uat/ci --format dotenv < .env && shred -u .env
  # every org the sf CLI is logged in to, then log sf out of them
  sfvault import --from-sf --logout"#)]
    Import(ImportArgs),

    /// Replace a secret, in the vault or at Salesforce itself, keeping the old one in history
    #[command(
        after_help = r#"In the vault only: the new value comes from a hidden prompt or stdin; for private_key a new RSA key is generated and its certificate printed. For consumer_secret, sfvault says where Salesforce regenerates it.

At Salesforce (--at-salesforce --admin ADMIN; ADMIN is another entry whose token has the rights):
  consumer     an External Client App's key AND secret: staged, stored,
               proven, promoted; the old pair stays valid at Salesforce
               until --retire
  private_key  a new key made in the vault, its certificate deployed with
               the Metadata API, a JWT login proven; on failure the old
               certificate goes back. No overlap window.
An interrupted run is finished with --resume or undone with --abort (the vault records each step).

Examples:
  sfvault rotate acme-prod/ci consumer --at-salesforce --admin acme-prod/admin
  sfvault rotate acme-prod/ci consumer --retire --admin acme-prod/admin
  sfvault rotate acme-prod/ci private_key --at-salesforce \
      --admin acme-prod/admin
  sfvault rotate acme-prod/ci private_key > new.crt
  pbpaste | sfvault rotate acme-prod/ci consumer_secret"#
    )]
    Rotate(RotateArgs),

    /// Show when a field's past values were set and replaced (values only with --reveal)
    #[command(after_help = r#"Examples:
  # every field's past versions, dates only
  sfvault history acme-prod/ci
  sfvault history acme-prod/ci consumer_secret --reveal
  # bring back the newest past value
  sfvault set acme-prod/ci consumer_secret --restore 1"#)]
    History(HistoryArgs),

    /// Report stale, unused, missing or weak credentials; exit 1 when anything is found
    #[command(
        after_help = r#"Checks: secrets older than --max-age (default 90d) or never used; fields a flow needs but lacks; RSA keys under 2048 bits; certificates expiring within 30 days; non-https login URLs; a vault KDF below the default; rotations at Salesforce left half done, or old pairs left valid. Exit 0 when clean, 1 when anything is found, so CI can gate on it.

With --at-salesforce ADMIN it asks ADMIN's org who holds OAuth tokens, and holds that against the vault's entries of the same ORG: unknown-app, idle-token (--max-idle), app-missing, app-unused, app-not-found, key-drift, rotation-due, tokens-unread (docs/ACCESS.md).

Durations take a unit: 90d, 12h, 30m, 45s.

Examples:
  sfvault audit --max-age 30d
  sfvault audit --at-salesforce acme-prod/admin
  sfvault audit --at-salesforce acme-prod/admin --max-idle 30d --json | \
      jq '.findings[].kind'"#
    )]
    Audit(AuditArgs),

    /// Write an encrypted copy of the vault
    #[command(
        after_help = r#"The copy is the vault file itself (same passphrase), taken under the lock. With --backup-passphrase-fd N it is re-encrypted under another passphrase and a new key.

Examples:
  sfvault backup /mnt/usb/sfvault-$(date +%F).sfv
  sfvault backup /mnt/usb/sfvault.sfv --force"#
    )]
    Backup(BackupArgs),

    /// Replace the vault with a backup, after checking the backup opens
    #[command(
        after_help = r#"The backup is decrypted with the passphrase sources (or a prompt) before anything changes; the replaced vault is kept as vault.sfv.bak. The vault's passphrase becomes the backup's.

This is the deliberate way back to an older copy: sfvault refuses an older copy put in place by hand (exit 6, rollback), but a restored copy is saved as the vault's newest version. To adopt the older copy that is at the vault path now, restore the vault path itself. A backup that asks for more Argon2 memory or passes than your vault is named with its cost first, and needs a yes (or --yes).

Examples:
  sfvault restore /mnt/usb/sfvault-2026-11-01.sfv"#
    )]
    Restore(RestoreArgs),

    /// Show or change vault settings (history-limit, removed-days)
    #[command(after_help = r#"Examples:
  sfvault config
  # keep 10 past values per field
  sfvault config history-limit 10
  # lowering deletes older past values: confirm
  sfvault config history-limit 2 --yes"#)]
    Config(ConfigArgs),

    /// Start an agent that keeps the vault open for scripts, then return
    #[command(
        after_help = r#"The agent holds the vault's key in locked memory and answers other sfvault commands over a private socket; it locks after --timeout without a request (status checks do not count), after --max-lifetime in any case, on `sfvault lock`, or when the vault is re-keyed or replaced. The default timeout is 15 minutes; 0 means until `sfvault lock`.

Examples:
  sfvault unlock
  sfvault unlock --timeout 8h --max-lifetime 12h
  SFVAULT_PASSPHRASE_FILE=~/.sfvault-pass sfvault unlock --timeout 0"#
    )]
    Unlock(UnlockArgs),

    /// Stop the agent and wipe its key
    #[command(
        after_help = r#"Returns once the agent has stopped, so `sfvault unlock` may follow at once.

Examples:
  sfvault lock
  # in a script: unlock for its run, lock when it ends
  sfvault unlock --timeout 1h && trap 'sfvault lock' EXIT"#
    )]
    Lock,

    /// Whether an agent holds the vault open, and for how long (exit 5 when locked)
    #[command(
        after_help = r#"Does not count as use: polling status never keeps the agent alive. When locked, says why the last agent stopped. Exit 0 unlocked, 5 locked, 3 no vault.

Examples:
  sfvault status
  sfvault status -q >/dev/null || sfvault unlock"#
    )]
    Status,

    /// The agent process itself (started by `unlock`)
    #[command(name = "__agent", hide = true)]
    Agent(AgentArgs),

    /// The clipboard clearer started by `--clip` (reads what to compare on stdin)
    #[command(name = "__clip-clear", hide = true)]
    ClipClear(ClipClearArgs),

    /// Run the entry's OAuth flow and keep the tokens in the vault
    #[command(
        after_help = r#"Flows: jwt (consumer_key, username, private_key), client-credentials (consumer_key, consumer_secret; My Domain login_url), refresh-token (consumer_key, refresh_token), password (deprecated by Salesforce), web (browser + PKCE; keeps a refresh token).

Examples:
  sfvault login acme-prod/ci
  # prints the URL; opens a browser if there is one
  sfvault login acme-dev1/me --flow web"#
    )]
    Login(LoginArgs),

    /// Print a valid access token, renewing it with the entry's flow when stale
    #[command(
        after_help = r#"The cached token is reused while younger than the entry's token_lifetime (default 90m). --json gives access_token, instance_url, issued_at, expires_at, username and org_id.

Examples:
  curl -H "Authorization: Bearer $(sfvault token acme-prod/ci)" "$URL"
  sfvault token acme-prod/ci --json | jq -r .instance_url"#
    )]
    Token(TokenArgs),

    /// Revoke the stored tokens at Salesforce and forget them; or revoke others' tokens found by audit
    #[command(
        after_help = r#"On a network failure nothing is forgotten, so it can be run again. At Salesforce it asks first on a terminal (--yes otherwise), and never revokes the admin session's own token.

Examples:
  sfvault revoke acme-prod/ci
  # a token audit found; a user's tokens of an app; every token of an app
  sfvault revoke --at-salesforce acme-prod/admin --token 0xABC/005XYZ/tok1
  sfvault revoke --at-salesforce acme-prod/admin --app 0xABC --user 005XYZ
  sfvault revoke --at-salesforce acme-prod/admin --app 'Old Tool'"#
    )]
    Revoke(RevokeArgs),

    /// Make an RSA key inside the vault; print only the certificate to upload to the connected app
    #[command(
        after_help = r#"Upload the certificate in Setup → App Manager → (the app) → Edit → Use digital signatures.

Examples:
  sfvault keygen acme-prod/ci > acme-prod-ci.crt
  sfvault keygen acme-prod/ci --bits 4096 --days 730 > acme-prod-ci.crt"#
    )]
    Keygen(KeygenArgs),

    /// Print a shell completion script
    #[command(after_help = r#"Examples:
  # bash: in ~/.bashrc
  source <(sfvault completions bash)
  sfvault completions zsh > "${fpath[1]}/_sfvault"
  sfvault completions fish > ~/.config/fish/completions/sfvault.fish"#)]
    Completions(CompletionsArgs),
}

/// Argon2id cost options shared by `init` and `passwd`.
#[derive(Debug, Args)]
pub struct KdfArgs {
    /// Argon2id memory in MiB [19..=1024; init: 64, passwd: keep the current]
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u32).range(19..=1024))]
    pub kdf_memory: Option<u32>,
    /// Argon2id passes [2..=10; init: 3, passwd: keep the current]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..=10))]
    pub kdf_iterations: Option<u32>,
    /// Argon2id lanes [1..=16; init: 4, passwd: keep the current]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16))]
    pub kdf_parallelism: Option<u32>,
}

/// `init`
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Key-derivation costs.
    #[command(flatten)]
    pub kdf: KdfArgs,
    /// Also let this public key open the vault (age1…, ssh-ed25519 …, or a file of keys);
    /// repeat for more: a team vault
    #[arg(long, value_name = "KEY")]
    pub recipient: Vec<String>,
    /// No passphrase: only the --recipient keys open the vault
    #[arg(long, requires = "recipient")]
    pub no_passphrase: bool,
}

/// `add`
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Entry address, ORG/APP (e.g. acme-prod/ci)
    pub entry: String,
    /// The connected app's consumer key (client id)
    #[arg(long, value_name = "KEY")]
    pub consumer_key: Option<String>,
    /// The Salesforce username the app acts as
    #[arg(long, value_name = "USER")]
    pub username: Option<String>,
    /// Login URL [default: https://login.salesforce.com; sandboxes: https://test.salesforce.com]
    #[arg(long, value_name = "URL")]
    pub login_url: Option<String>,
    /// OAuth flow the entry uses
    #[arg(long, value_name = "FLOW", value_parser = flow_parser())]
    pub flow: Option<Flow>,
    /// PEM private key (PKCS#1 or PKCS#8) to store; the file is read once, never copied
    #[arg(long, value_name = "PEM")]
    pub private_key_file: Option<PathBuf>,
    /// Do not ask for a consumer secret
    #[arg(long)]
    pub no_secret: bool,
    #[command(flatten)]
    pub refused: SecretFlags,
}

/// `set`
#[derive(Debug, Args)]
pub struct SetArgs {
    /// Entry address, ORG/APP
    pub entry: String,
    /// Field name (consumer_key, username, consumer_secret, … or your own, [a-z][a-z0-9_]*)
    pub field: String,
    /// The value, for non-secret fields only; `-` reads stdin; omit it to be prompted
    pub value: Option<String>,
    /// Mark a user-defined field as not secret (shown by `show`, settable from the command line)
    #[arg(long)]
    pub public: bool,
    /// Bring back past value N instead (1 = the most recent; see `sfvault history`)
    #[arg(long, value_name = "N", conflicts_with_all = ["value", "public"])]
    pub restore: Option<u32>,
    #[command(flatten)]
    pub refused: SecretFlags,
}

/// Hidden flags for secrets (`add --consumer-secret S`…) that only exist to refuse them: a
/// secret is never taken from the command line, and the error says why and how to give it,
/// instead of clap's "a similar argument exists". Never in help; left out of completions
/// (the completion engine leaves hidden flags out); the value is never kept nor repeated.
#[derive(Debug)]
pub struct SecretFlags;

/// Each refused flag: its field and its long name.
const SECRET_FLAGS: [(&str, &str); 5] = [
    ("consumer_secret", "consumer-secret"),
    ("password", "password"),
    ("private_key", "private-key"),
    ("refresh_token", "refresh-token"),
    ("security_token", "security-token"),
];

impl clap::FromArgMatches for SecretFlags {
    fn from_arg_matches(_: &clap::ArgMatches) -> Result<Self, clap::Error> {
        // A flag that was given failed in its parser: nothing ever reaches here.
        Ok(SecretFlags)
    }

    fn update_from_arg_matches(&mut self, _: &clap::ArgMatches) -> Result<(), clap::Error> {
        Ok(())
    }
}

impl Args for SecretFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.args(SECRET_FLAGS.map(|(field, long)| {
            clap::Arg::new(field)
                .long(long)
                .hide(true)
                .num_args(0..=1)
                .default_missing_value("")
                .value_parser(RefuseSecret(field))
        }))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// The parser of a [`SecretFlags`] flag: always a usage error (exit 2) naming the field.
#[derive(Clone)]
struct RefuseSecret(&'static str);

impl TypedValueParser for RefuseSecret {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        _value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let field = self.0;
        let flag = field.replace('_', "-");
        let how = match field {
            "consumer_secret" => "leave it out and `sfvault add` asks for it (hidden), or give it \
                 later: `sfvault set ORG/APP consumer_secret` asks for it, \
                 `… | sfvault set ORG/APP consumer_secret -` reads it from stdin"
                .to_owned(),
            "private_key" => "`sfvault add … --private-key-file key.pem` reads it from a file, \
                 `sfvault set ORG/APP private_key - < key.pem` from stdin"
                .to_owned(),
            _ => format!(
                "`sfvault set ORG/APP {field}` asks for it (hidden), \
                 `… | sfvault set ORG/APP {field} -` reads it from stdin"
            ),
        };
        Err(clap::Error::raw(
            clap::error::ErrorKind::ValueValidation,
            format!(
                "--{flag}: secrets are never taken from the command line (they would be visible \
                 in `ps` and kept in shell history); {how}\n"
            ),
        )
        .with_cmd(cmd))
    }
}

/// `get`
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Entry address, ORG/APP
    pub entry: String,
    /// Field name
    pub field: String,
    /// Do not print a newline after the value
    #[arg(long, short = 'n')]
    pub no_newline: bool,
    /// Copy to the clipboard instead of printing
    #[command(flatten)]
    pub clip: ClipArgs,
}

/// `--clip` and `--clip-seconds`, for `get` and `read`.
#[derive(Debug, Args)]
pub struct ClipArgs {
    /// Copy the value to the clipboard (wl-copy, xclip, xsel or pbcopy) instead of printing it;
    /// it clears itself after --clip-seconds
    #[arg(long, short = 'c')]
    pub clip: bool,
    /// With --clip: seconds before the clipboard is cleared (if it still holds the value)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CLIP_SECONDS, requires = "clip",
        value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub clip_seconds: u32,
}

/// How long a `--clip` value stays on the clipboard unless `--clip-seconds` says otherwise.
pub const DEFAULT_CLIP_SECONDS: u32 = 45;

impl Default for ClipArgs {
    /// No `--clip`: what clap gives when neither option is on the command line.
    fn default() -> ClipArgs {
        ClipArgs {
            clip: false,
            clip_seconds: DEFAULT_CLIP_SECONDS,
        }
    }
}

/// `read`
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// A reference, sfvault://ORG/APP/FIELD
    pub reference: String,
    /// Do not print a newline after the value
    #[arg(long, short = 'n')]
    pub no_newline: bool,
    /// Copy to the clipboard instead of printing
    #[command(flatten)]
    pub clip: ClipArgs,
}

/// `__clip-clear`: the detached process that clears the clipboard.
#[derive(Debug, Args)]
pub struct ClipClearArgs {
    /// The tool that copied the value
    #[arg(long)]
    pub tool: String,
    /// Seconds to wait first
    #[arg(long)]
    pub seconds: u32,
}

/// `show`
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Entry address, ORG/APP
    pub entry: String,
    /// Show secret values too
    #[arg(long)]
    pub reveal: bool,
}

/// `list`
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only entries matching this glob (`acme-*/ci`) or, without wildcards, containing this text
    pub pattern: Option<String>,
    /// List removed entries that `sfvault undelete` can bring back (dates, no values)
    #[arg(long)]
    pub removed: bool,
}

/// `rm`
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Entry address, ORG/APP
    pub entry: String,
    /// Do not ask for confirmation
    #[arg(long, short)]
    pub yes: bool,
    /// Remove for good: also every removed copy kept for `undelete`, and the `.bak`'s copy
    #[arg(long)]
    pub purge: bool,
}

/// `undelete`
#[derive(Debug, Args)]
pub struct UndeleteArgs {
    /// The address the entry was removed from, ORG/APP
    pub entry: String,
    /// Bring it back under this address instead
    #[arg(long = "as", value_name = "ORG/APP")]
    pub target: Option<String>,
}

/// `mv`
#[derive(Debug, Args)]
pub struct MvArgs {
    /// Current address
    pub old: String,
    /// New address
    pub new: String,
}

/// `merge`
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The common ancestor (an empty file if there is none)
    pub base: PathBuf,
    /// Our version; replaced by the result
    pub ours: PathBuf,
    /// Their version
    pub theirs: PathBuf,
}

/// `recipient …`
#[derive(Debug, Subcommand)]
pub enum RecipientCommand {
    /// Let a public key open the vault (the data key is wrapped to it too)
    #[command(
        after_help = r#"KEY is an age public key (age1…), an SSH public key line (ssh-ed25519 AAAA… comment), or a file holding one per line: a .pub file, a recipients file, or an age identity file (its public keys are taken, as `age-keygen -y` prints them). The name defaults to the SSH key's comment.

Examples:
  sfvault recipient add --name alice \
    age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
  sfvault recipient add ~/.ssh/id_ed25519.pub --name bob-laptop
  sfvault recipient add ci-runner.pub --name ci-github"#
    )]
    Add(RecipientAddArgs),
    /// Stop a recipient from opening later versions (a new data key)
    #[command(
        after_help = r#"The vault gets a new data key, wrapped to the remaining recipients (and the passphrase, which is asked for). Copies of the vault made before, in git history or backups, still open with the removed key: rotate at Salesforce the secrets they held (`sfvault rotate`).

Examples:
  sfvault recipient rm alice
  sfvault recipient rm ci-old --yes"#
    )]
    Rm(RecipientRmArgs),
    /// List the recipients
    #[command(after_help = r#"Examples:
  sfvault recipient list
  sfvault recipient list --json"#)]
    List,
}

/// `slice …`
#[derive(Debug, Subcommand)]
pub enum SliceCommand {
    /// Define a slice and write it
    #[command(
        after_help = r#"FILE is relative to the team vault's directory (a directory is created if needed). KEY is given as for `recipient add`: an age public key, an SSH public key line, or a file of them. With --replace an existing slice is redefined: it keeps its identity, and if a recipient is dropped it gets a new data key, so later versions are closed to that key (copies already pushed are not: rotate at Salesforce what it held).

Examples:
  sfvault slice add ci --file ci.sfv \
    --entry acme-prod/ci --entry acme-uat/ci --to ci-runner.pub
  sfvault slice add backup --file hosts/backup.sfv --entry acme-prod/backup \
    --to age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
  sfvault slice add ci --replace --file ci.sfv --entry acme-prod/ci \
    --to new-runner.pub"#
    )]
    Add(SliceAddArgs),
    /// Rewrite slices whose entries changed in the team vault
    #[command(
        after_help = r#"Each slice is compared with what it should hold; one that differs (or is missing, or does not open with its key) is written again, the others are left untouched, so git sees a change only where there is one.

Examples:
  sfvault slice sync
  sfvault slice sync ci
  sfvault slice sync --check    # exit 1 and name them if any is out of date"#
    )]
    Sync(SliceSyncArgs),
    /// List the slices, their entries, recipients and whether they are up to date
    #[command(after_help = r#"Examples:
  sfvault slice list
  sfvault slice list --json"#)]
    List,
    /// Forget a slice's definition (its file is left for you to delete)
    #[command(
        after_help = r#"Its file stays where it is, and copies of it in git history stay readable to its recipients: delete it (git rm FILE) and rotate at Salesforce what it held if they should lose access.

Examples:
  sfvault slice rm ci"#
    )]
    Rm(SliceRmArgs),
}

/// `slice add`
#[derive(Debug, Args)]
pub struct SliceAddArgs {
    /// Slice name (`ci`, `backup-host`)
    pub name: String,
    /// Where it is written, relative to the team vault's directory
    #[arg(long, value_name = "FILE")]
    pub file: String,
    /// An entry it holds (repeat for more)
    #[arg(long = "entry", value_name = "ORG/APP", required = true)]
    pub entries: Vec<String>,
    /// A public key that opens it, or a file of them (repeat for more)
    #[arg(long = "to", value_name = "KEY", required = true)]
    pub to: Vec<String>,
    /// Redefine an existing slice
    #[arg(long)]
    pub replace: bool,
}

/// `slice sync`
#[derive(Debug, Args)]
pub struct SliceSyncArgs {
    /// Slices to sync (default: all)
    pub names: Vec<String>,
    /// Write nothing; exit 1 naming the slices that are out of date
    #[arg(long)]
    pub check: bool,
}

/// `slice rm`
#[derive(Debug, Args)]
pub struct SliceRmArgs {
    /// Slice name, as `slice list` shows it
    pub name: String,
}

/// `recipient add`
#[derive(Debug, Args)]
pub struct RecipientAddArgs {
    /// Public key, or a file of public keys (or an age identity file)
    #[arg(value_name = "KEY")]
    pub key: String,
    /// Name to list it under (default: the SSH key's comment)
    #[arg(long)]
    pub name: Option<String>,
}

/// `recipient rm`
#[derive(Debug, Args)]
pub struct RecipientRmArgs {
    /// Recipient name, as `recipient list` shows it
    pub name: String,
    /// Do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
}

/// `passwd`
#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Read the new passphrase from this open file descriptor
    #[arg(long, value_name = "N")]
    pub new_passphrase_fd: Option<u32>,
    /// Remove the passphrase: only the recipients open the vault afterwards (a new data key)
    #[arg(long, conflicts_with = "new_passphrase_fd")]
    pub remove: bool,
    /// New key-derivation costs (default: keep the current ones).
    #[command(flatten)]
    pub kdf: KdfArgs,
}

/// `completions`
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell
    #[arg(value_parser = ["bash", "zsh", "fish", "elvish", "powershell"])]
    pub shell: String,
}

/// `unlock`
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Lock after this long without a request: 30s, 15m, 2h; 0 = never
    #[arg(long, default_value = "15m", value_name = "DUR", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Lock this long after unlocking, whatever the activity; 0 = never
    #[arg(long, default_value = "0", value_name = "DUR", value_parser = parse_duration)]
    pub max_lifetime: std::time::Duration,
}

/// `__agent` (internal)
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Idle timeout in seconds (0 = none)
    #[arg(long)]
    pub idle_secs: u64,
    /// Maximum lifetime in seconds (0 = none)
    #[arg(long)]
    pub lifetime_secs: u64,
}

/// A duration option: a number with its unit (`90d`, `15m`); a bare number other than `0`
/// is refused, since `--max-age 90` would otherwise silently mean 90 seconds.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    if text != "0" && !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{text:?} needs a unit: {text}d (days), {text}h, {text}m or {text}s"
        ));
    }
    sfvault::timefmt::parse_duration(text)
}

/// A command that takes only an entry.
#[derive(Debug, Args)]
pub struct EntryArg {
    /// Entry address, ORG/APP
    pub entry: String,
}

/// `login`
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Entry address, ORG/APP
    pub entry: String,
    /// Flow to run instead of the entry's own
    #[arg(long, value_name = "FLOW", value_parser = flow_parser())]
    pub flow: Option<Flow>,
    /// Web flow: how long to wait for the browser
    #[arg(long, default_value = "5m", value_name = "DUR", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Web flow: print the URL but do not try to open a browser
    #[arg(long)]
    pub no_browser: bool,
}

/// `token`
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Entry address, ORG/APP
    pub entry: String,
    /// Renew even if the cached token is fresh
    #[arg(long)]
    pub refresh: bool,
}

/// `keygen`
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Entry address, ORG/APP
    pub entry: String,
    /// Key size: 2048, 3072 or 4096
    #[arg(long, default_value_t = 2048)]
    pub bits: usize,
    /// Certificate validity in days
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Replace an existing private key (the old one is kept in history)
    #[arg(long)]
    pub force: bool,
}

/// `exec`
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Entry address, ORG/APP
    pub entry: String,
    /// Do not get an access token (no OAuth call)
    #[arg(long)]
    pub no_token: bool,
    /// Get a new access token even if the cached one is fresh and accepted
    #[arg(long, conflicts_with = "no_token")]
    pub refresh: bool,
    /// Also hand sf this entry's org as its Dev Hub (SF_TARGET_DEV_HUB)
    #[arg(long, value_name = "ORG/APP")]
    pub dev_hub: Option<String>,
    /// Also pass this field (consumer_secret, private_key, password, …); repeatable
    #[arg(long = "with", value_name = "FIELD")]
    pub with: Vec<String>,
    /// The command and its arguments; none opens your $SHELL with the environment set
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

/// `run`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A dotenv file whose values may be references
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Replace every secret value in the command's output (stdout and stderr, through pipes)
    /// by <concealed by sfvault>
    #[arg(long)]
    pub mask: bool,
    /// The command and its arguments
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

/// `inject`
#[derive(Debug, Args)]
pub struct InjectArgs {
    /// Template file (default: stdin)
    #[arg(short = 'i', long = "in-file", value_name = "TEMPLATE")]
    pub input: Option<PathBuf>,
    /// Allow stdout to be a regular file
    #[arg(long)]
    pub force_plaintext: bool,
}

/// Export formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    /// `export SF_…='value'` lines for `eval "$(sfvault export … --format env)"`
    Env,
    /// Plain `SF_…=value` lines, for `docker --env-file` and dotenv readers
    Dotenv,
    /// One JSON object (consumer_key, access_token, instance_url, expires_at, …)
    Json,
    /// force://CLIENT_ID:CLIENT_SECRET:REFRESH_TOKEN@HOST
    SfdxUrl,
}

/// Import formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ImportFormat {
    /// force://CLIENT_ID:CLIENT_SECRET:REFRESH_TOKEN@HOST
    SfdxUrl,
    /// The JSON that `export --format json` writes
    Json,
    /// KEY=VALUE lines (SF_CONSUMER_KEY or consumer_key style names)
    Dotenv,
}

/// `export`
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Entry address, ORG/APP
    pub entry: String,
    /// Output format (--json alone means --format json)
    #[arg(long, value_enum, required_unless_present = "json")]
    pub format: Option<ExportFormat>,
    /// Leave the access token out: no OAuth flow is run (env, dotenv and json)
    #[arg(long)]
    pub no_token: bool,
    /// Allow stdout to be a regular file
    #[arg(long)]
    pub force_plaintext: bool,
}

/// `import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Entry address, ORG/APP (created if missing)
    #[arg(required_unless_present = "from_sf")]
    pub entry: Option<String>,
    /// Input format
    #[arg(long, value_enum, required_unless_present = "from_sf")]
    pub format: Option<ImportFormat>,
    /// Import the orgs the Salesforce CLI is logged in to (all, or these aliases or usernames)
    /// into ALIAS/sf entries; each is proven with a token request
    #[arg(long, num_args = 0.., value_name = "ALIAS_OR_USERNAME", conflicts_with_all = ["entry", "format"])]
    pub from_sf: Option<Vec<String>>,
    /// With --from-sf: log sf out of each org once its import is proven (`sf org logout`)
    #[arg(long, requires = "from_sf")]
    pub logout: bool,
}

/// `rotate`
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Entry address, ORG/APP
    pub entry: String,
    /// The secret field to rotate; `consumer` is the key and secret pair (at Salesforce only)
    pub field: String,
    /// private_key: new key size
    #[arg(long, default_value_t = 2048)]
    pub bits: usize,
    /// private_key: certificate validity in days
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Rotate at Salesforce too, through the admin entry's token
    #[arg(long, group = "salesforce")]
    pub at_salesforce: bool,
    /// Finish a rotation at Salesforce that was interrupted
    #[arg(long, group = "salesforce")]
    pub resume: bool,
    /// Undo a rotation at Salesforce that was interrupted or not yet promoted
    #[arg(long, group = "salesforce")]
    pub abort: bool,
    /// consumer: delete the old pair at Salesforce, once everything uses the new one
    #[arg(long, group = "salesforce")]
    pub retire: bool,
    /// The entry whose token calls Salesforce's admin APIs (another app than the one rotated)
    #[arg(long, value_name = "ADMIN")]
    pub admin: Option<String>,
}

/// `history`
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Entry address, ORG/APP
    pub entry: String,
    /// Only this field
    pub field: Option<String>,
    /// Show the past values too
    #[arg(long)]
    pub reveal: bool,
}

/// `audit`
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Secrets unchanged for longer than this are stale
    #[arg(long, default_value = "90d", value_name = "DUR", value_parser = parse_duration)]
    pub max_age: std::time::Duration,
    /// Audit who holds OAuth tokens in the org, through this admin entry's token
    #[arg(long, value_name = "ADMIN")]
    pub at_salesforce: Option<String>,
    /// With --at-salesforce: tokens unused for longer than this are idle
    #[arg(long, default_value = "90d", value_name = "DUR", value_parser = parse_duration)]
    pub max_idle: std::time::Duration,
}

/// `revoke`
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Entry address, ORG/APP: revoke its own stored tokens
    #[arg(
        required_unless_present = "at_salesforce",
        conflicts_with = "at_salesforce"
    )]
    pub entry: Option<String>,
    /// Revoke tokens in the org through this admin entry's token
    #[arg(long, value_name = "ADMIN", requires = "what")]
    pub at_salesforce: Option<String>,
    /// One External Client App token, as audit names it (APP_ID/USER_ID/TOKEN_ID)
    #[arg(long, value_name = "ID", group = "what", conflicts_with_all = ["app", "user"])]
    pub token: Option<String>,
    /// Every token of an app: an External Client App id (0x…) or a connected app's name
    #[arg(long, value_name = "APP", group = "what")]
    pub app: Option<String>,
    /// With --app: only this user's tokens (005…)
    #[arg(long, value_name = "USER_ID", requires = "app")]
    pub user: Option<String>,
    /// Do not ask
    #[arg(long)]
    pub yes: bool,
}

/// `backup`
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the copy: a file, or a directory to write VAULT-<UTC time>.sfv into
    pub path: PathBuf,
    /// Replace an existing file
    #[arg(long)]
    pub force: bool,
    /// Encrypt the copy under the passphrase read from this descriptor (and a new key)
    #[arg(long, value_name = "N")]
    pub backup_passphrase_fd: Option<u32>,
}

/// `restore`
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file
    pub path: PathBuf,
    /// Go on without asking when the backup asks for more key-derivation work (memory, passes)
    /// than the current vault
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// `config`
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Setting name: history-limit, removed-days
    pub key: Option<String>,
    /// New value
    pub value: Option<String>,
    /// Lower history-limit without asking (past values beyond it are deleted)
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[cfg(test)]
mod tests {
    use super::{COMMAND_GROUPS, command};

    /// Every help text: the top level's and each command's, rendered at `width` columns.
    fn helps(width: usize) -> Vec<(String, String)> {
        let mut cmd = command().term_width(width);
        cmd.build();
        let mut out = vec![("sfvault".to_owned(), cmd.render_help().to_string())];
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .collect();
        for name in names {
            let sub = cmd.find_subcommand_mut(&name).unwrap();
            out.push((name.clone(), sub.render_help().to_string()));
            // And each subcommand's own (`recipient add`, `slice sync`).
            let inner: Vec<String> = sub
                .get_subcommands()
                .map(|c| c.get_name().to_owned())
                .filter(|n| n != "help")
                .collect();
            for inner_name in inner {
                let leaf = sub.find_subcommand_mut(&inner_name).unwrap();
                out.push((
                    format!("{name} {inner_name}"),
                    leaf.render_help().to_string(),
                ));
            }
        }
        out
    }

    /// The example command lines of a help text: after an "Examples:" or "Quick start:"
    /// heading, each line with its `\` continuations joined; comment lines left out.
    fn examples(help: &str) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut inside = false;
        let mut current: Vec<String> = Vec::new();
        for line in help.lines() {
            if line == "Examples:" || line == "Quick start:" {
                inside = true;
                continue;
            }
            if !line.starts_with("  ") {
                inside = false;
                continue;
            }
            if !inside || line.trim_start().starts_with('#') {
                continue;
            }
            current.push(line.to_owned());
            if !line.ends_with('\\') {
                out.push(std::mem::take(&mut current));
            }
        }
        out
    }

    /// The sfvault invocations in a shell line, as words: from each `sfvault ` to the end of
    /// its simple command (a pipe, a redirection, `&&`, `)` or a comment), quotes removed.
    fn invocations(line: &str) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut rest = line;
        while let Some(at) = rest.find("sfvault ") {
            let mut words = Vec::new();
            let mut word = String::new();
            let mut quote = None;
            // `trap 'sfvault lock' EXIT`: the quote it started in ends it.
            let opened = rest[..at]
                .chars()
                .last()
                .filter(|c| matches!(c, '\'' | '"'));
            let mut chars = rest[at..].chars().peekable();
            while let Some(c) = chars.next() {
                match (quote, c) {
                    (None, c) if Some(c) == opened => break,
                    (Some(q), c) if c == q => quote = None,
                    (Some(_), c) => word.push(c),
                    (None, '\'' | '"') => quote = Some(c),
                    (None, '|' | '>' | '<' | ')' | '#' | ';' | '&') => break,
                    (None, ' ') => {
                        if !word.is_empty() {
                            words.push(std::mem::take(&mut word));
                        }
                    }
                    (None, '\\') if chars.peek() == Some(&' ') => {}
                    // A command substitution inside a word stays part of it.
                    (None, '$') if chars.peek() == Some(&'(') => {
                        let mut depth = 0;
                        for c in chars.by_ref() {
                            word.push(c);
                            depth += match c {
                                '(' => 1,
                                ')' => -1,
                                _ => 0,
                            };
                            if depth == 0 {
                                break;
                            }
                        }
                    }
                    (None, c) => word.push(c),
                }
            }
            if !word.is_empty() {
                words.push(word);
            }
            out.push(words);
            rest = &rest[at + "sfvault ".len()..];
        }
        out
    }

    #[test]
    fn every_command_is_listed_in_exactly_one_group() {
        let cmd = command();
        let listed: Vec<&str> = COMMAND_GROUPS
            .iter()
            .flat_map(|(_, names)| names.iter().copied())
            .collect();
        for sub in cmd.get_subcommands().filter(|c| !c.is_hide_set()) {
            let n = listed.iter().filter(|l| **l == sub.get_name()).count();
            assert_eq!(n, 1, "`{}` is in {n} groups of --help", sub.get_name());
        }
        let help = cmd.clone().render_help().to_string();
        assert!(
            !help.contains("\nCommands:"),
            "the flat list is back:\n{help}"
        );
        for (group, _) in COMMAND_GROUPS {
            assert!(help.contains(&format!("\n{group}:\n")), "{group}");
        }
    }

    #[test]
    fn global_options_are_listed_apart_in_each_command() {
        let mut cmd = command();
        cmd.build();
        let help = cmd
            .find_subcommand_mut("get")
            .unwrap()
            .render_help()
            .to_string();
        let (own, global) = help
            .split_once("Global options:")
            .expect("a Global options heading");
        assert!(
            own.contains("--no-newline") && !own.contains("--passphrase-fd"),
            "{help}"
        );
        assert!(global.contains("--passphrase-fd") && global.contains("--vault"));
    }

    #[test]
    fn examples_are_never_wrapped_and_fit_80_columns() {
        let wide = helps(1000);
        let mut seen = 0;
        for ((name, narrow), (_, wide)) in helps(80).iter().zip(&wide) {
            for example in examples(wide) {
                for line in example {
                    seen += 1;
                    assert!(
                        line.chars().count() <= 78,
                        "{name}: example over 78 columns: {line}"
                    );
                    assert!(
                        narrow.lines().any(|l| l == line),
                        "{name}: example wrapped at 80 columns: {line}\n{narrow}"
                    );
                }
            }
        }
        assert!(seen > 60, "only {seen} example lines found");
    }

    #[test]
    fn every_example_parses() {
        let mut parsed = 0;
        for (name, help) in helps(80) {
            for example in examples(&help) {
                let line = example.join(" ");
                for words in invocations(&line) {
                    let result = command().try_get_matches_from(&words);
                    assert!(
                        result.is_ok(),
                        "{name}: example does not parse: {words:?}\n{result:?}"
                    );
                    parsed += 1;
                }
            }
        }
        assert!(parsed > 60, "only {parsed} examples parsed");
    }
}
