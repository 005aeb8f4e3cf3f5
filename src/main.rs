//! The `unchained` command line: the site and the `manage.py` commands it replaces.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use unchained::config::{process_env, SecretKeySource, Settings};
use unchained::db::{self, perms, schema, Db};
use unchained::django::hashers::Hashers;

#[derive(Parser)]
#[command(
    name = "unchained",
    version,
    about = "A drop-in Rust backend for the Django catalog site"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the site (an empty database is migrated first)
    Serve {
        /// Address to listen on [default: BIND_ADDRESS or 127.0.0.1:8000]
        #[arg(long)]
        bind: Option<std::net::SocketAddr>,
    },
    /// Create the missing tables and rows, as `manage.py migrate`
    Migrate,
    /// Tell whether this database is safe to switch to (exit status 0 when it is)
    Check {
        /// Instead, Django's deployment checks of the settings (`manage.py check --deploy`:
        /// its warnings, ids and format; warnings alone exit 0, as in Django)
        #[arg(long)]
        deploy: bool,
        /// With --deploy: the level of message that makes the exit status 1, as Django's
        #[arg(long, default_value = "ERROR", requires = "deploy",
              value_parser = ["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"])]
        fail_level: String,
    },
    /// Create a superuser, as `manage.py createsuperuser`
    Createsuperuser {
        /// The superuser's e-mail (asked for when missing)
        #[arg(long)]
        email: Option<String>,
        /// Ask nothing: the e-mail from --email or DJANGO_SUPERUSER_EMAIL, the password from DJANGO_SUPERUSER_PASSWORD
        #[arg(long)]
        noinput: bool,
    },
    /// Change a user's password, as `manage.py changepassword`
    Changepassword {
        /// The user's e-mail
        email: String,
    },
    /// Delete expired sessions, as `manage.py clearsessions`
    Clearsessions,
    /// Manage groups and their permissions
    Group {
        #[command(subcommand)]
        action: GroupAction,
    },
    /// Create the moderator group with its three catalog permissions
    SetupModerators {
        /// The group's name
        #[arg(long, default_value = "moderators")]
        name: String,
    },
    /// List and lift login lockouts (django-axes' AXES_* settings)
    Lockouts {
        #[command(subcommand)]
        action: LockoutsAction,
    },
    /// Write the static files to STATIC_ROOT for a proxy to serve, as `manage.py collectstatic`
    /// (plain names, the same bytes `/static/` serves; no database is opened)
    Collectstatic {
        /// Ask nothing before writing into a folder that holds files (Django's --noinput)
        #[arg(long = "noinput", visible_alias = "no-input")]
        noinput: bool,
        /// Delete every file in STATIC_ROOT first (Django's --clear)
        #[arg(short = 'c', long)]
        clear: bool,
        /// Say what would be done and change nothing (Django's --dry-run)
        #[arg(short = 'n', long)]
        dry_run: bool,
    },
    /// Send a test letter to each address through the outbox, as `manage.py sendtestemail`
    /// (exit status 1 when one could not be sent; it stays queued and `serve` retries it)
    Sendtestemail {
        /// Recipients' e-mail addresses
        #[arg(required = true, value_name = "EMAIL")]
        emails: Vec<String>,
    },
}

#[derive(Subcommand)]
enum GroupAction {
    /// Create a group (nothing happens if it exists)
    Create { name: String },
    /// Grant permissions, named app_label.codename, to a group
    Grant {
        group: String,
        #[arg(required = true)]
        permissions: Vec<String>,
    },
    /// Add a user, by e-mail, to a group
    AddUser { group: String, email: String },
    /// List groups and their permissions
    List,
}

#[derive(Subcommand)]
enum LockoutsAction {
    /// List the lock keys whose failed logins still count: key, failures, locked until
    List,
    /// Forget failed logins, so the keys they locked log in again
    #[command(group(clap::ArgGroup::new("which").required(true).multiple(true).args(["username", "ip", "all"])))]
    Lift {
        /// Only keys with this username (the e-mail, in any case)
        #[arg(long, value_name = "EMAIL")]
        username: Option<String>,
        /// Only keys with this client address
        #[arg(long, value_name = "ADDR")]
        ip: Option<std::net::IpAddr>,
        /// Every key
        #[arg(long, conflicts_with_all = ["username", "ip"])]
        all: bool,
    },
}

/// A failure to report on one line (or a short list) before exiting.
struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

type Outcome = Result<ExitCode, Failure>;

// Many small allocations per page (template values, form views) from two
// worker threads: glibc's malloc spent a tenth of a page's time in its arena
// locks; mimalloc keeps per-thread heaps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc asks the kernel for transparent huge pages on its arenas, so a
/// few kilobytes used in a region made 2 MB of it resident: 8 of the 34 MB
/// the server held after a load test. Small pages cost no measurable speed
/// here, and the memory is the site's.
fn keep_pages_small() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory
    // of ours; on failure (an old kernel) nothing changes.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Lets the process open as many files as its hard limit allows: the soft
/// limit is often 1,024, fewer than `HTTP_MAX_CONNECTIONS`' default of
/// 1,000 connections plus the database's, the uploads' and the logs'.
fn raise_open_file_limit() {
    #[cfg(unix)]
    // SAFETY: getrlimit/setrlimit read and write the one struct passed.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Log lines to stderr: `RUST_LOG` picks what (default: info, sqlx's
/// warnings), `LOG_FORMAT` the form; colour only on a terminal. A panic is
/// logged as an error line too, inside the span of the request it hit.
/// The returned guard writes out what is still queued when it is dropped:
/// keep it until the process ends.
fn init_logging(
    logging: unchained::config::Logging,
) -> tracing_appender::non_blocking::WorkerGuard {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Lines wait in a queue for the writer thread; a full queue makes the
    // logger wait rather than drop lines.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if logging.json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_string());
        tracing::error!("panicked{location}: {message}");
    }));
    guard
}

fn main() -> ExitCode {
    keep_pages_small();
    raise_open_file_limit();
    let cli = Cli::parse();
    let settings = match Settings::from_env(&process_env()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("unchained: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let _log_writer = init_logging(settings.logging);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("unchained: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(code) => code,
        Err(Failure(message)) => {
            eprintln!("unchained: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> Outcome {
    if let Command::Check {
        deploy: true,
        fail_level,
    } = &command
    {
        return Ok(deploy_check(&settings, fail_level));
    }
    if let Command::Collectstatic {
        noinput,
        clear,
        dry_run,
    } = command
    {
        return collectstatic(&settings, noinput, clear, dry_run);
    }
    // `check` only looks: it must not create or convert an SQLite file.
    let opened = match command {
        Command::Check { .. } => Db::connect_read_only(&settings.database).await,
        _ => Db::connect(&settings.database).await,
    };
    let db = opened.map_err(|e| {
        Failure(format!(
            "cannot open the database ({}): {e}",
            describe_db(&settings)
        ))
    })?;
    let outcome = run_on(&db, command, settings).await;
    // Closing checkpoints SQLite's WAL into the file before the process ends.
    db.close().await;
    outcome
}

async fn run_on(db: &Db, command: Command, mut settings: Settings) -> Outcome {
    let db = db.clone();
    match command {
        Command::Serve { bind } => {
            if let Some(bind) = bind {
                settings.bind = bind;
            }
            serve(db, settings).await
        }
        Command::Migrate => migrate(&db).await,
        Command::Check { .. } => check(&db, &settings).await,
        Command::Createsuperuser { email, noinput } => {
            createsuperuser(&db, &settings, email, noinput).await
        }
        Command::Changepassword { email } => changepassword(&db, &settings, &email).await,
        Command::Clearsessions => {
            let removed = db::sessions::clear_expired(&db).await?;
            println!("Removed {removed} expired session(s).");
            Ok(ExitCode::SUCCESS)
        }
        Command::Group { action } => group(&db, action).await,
        Command::SetupModerators { name } => setup_moderators(&db, &name).await,
        Command::Lockouts { action } => lockouts(&db, &settings, action).await,
        Command::Sendtestemail { emails } => sendtestemail(&db, &settings, &emails).await,
        Command::Collectstatic { .. } => unreachable!("run without a database"),
    }
}

/// `manage.py collectstatic`: the static files into `STATIC_ROOT`. As
/// Django's, it asks first when the folder already holds files (unless
/// `--noinput`), prints its "Deleting …" lines and a closing count, and
/// opens no database.
fn collectstatic(settings: &Settings, noinput: bool, clear: bool, dry_run: bool) -> Outcome {
    use unchained::web::collectstatic::{self, Options};
    let root = std::path::absolute(&settings.static_root)?;
    if !noinput && collectstatic::has_files(&root) {
        let mut message = String::from("\n");
        if dry_run {
            message.push_str(
                "You have activated the --dry-run option so no files will be modified.\n\n",
            );
        }
        message.push_str(&format!(
            "You have requested to collect static files at the destination\n\
             location as specified in your settings:\n\n    {}\n\n",
            root.display()
        ));
        message.push_str(if clear {
            "This will DELETE ALL FILES in this location!\n"
        } else {
            "This will overwrite existing files!\n"
        });
        message.push_str(
            "Are you sure you want to do this?\n\nType 'yes' to continue, or 'no' to cancel: ",
        );
        print!("{message}");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim_end_matches(['\n', '\r']) != "yes" {
            return Err(Failure("Collecting static files cancelled.".to_string()));
        }
    }
    let report = collectstatic::collect(&root, Options { clear, dry_run }, &mut |line| {
        println!("{line}")
    })?;
    print!("\n{}\n", collectstatic::summary(&report, &root));
    Ok(ExitCode::SUCCESS)
}

fn describe_db(settings: &Settings) -> String {
    match &settings.database {
        unchained::config::DatabaseUrl::Sqlite(path) => format!("SQLite file {}", path.display()),
        // The URL may carry a password: name the back end only.
        unchained::config::DatabaseUrl::Postgres(_) => "PostgreSQL".to_string(),
        unchained::config::DatabaseUrl::MySql(_) => "MySQL/MariaDB".to_string(),
    }
}

async fn serve(db: Db, settings: Settings) -> Outcome {
    for warning in settings.secret_key_warnings() {
        tracing::warn!("{warning}");
    }
    match &settings.secret_key_source {
        SecretKeySource::Environment => {}
        SecretKeySource::File(path) => tracing::info!("using the SECRET_KEY kept in {}", path.display()),
        SecretKeySource::Generated(path) => tracing::warn!(
            "SECRET_KEY is not set: generated one and kept it in {} (a site moving from Django must set its own)",
            path.display()
        ),
    }
    if schema::is_empty(&db).await? {
        tracing::info!("the database is empty: migrating it");
        report_migration(&schema::migrate(&db).await?);
    } else {
        let errors: Vec<_> = schema::schema_findings(&db)
            .await?
            .into_iter()
            .filter(|f| f.severity == schema::Severity::Error)
            .collect();
        if !errors.is_empty() {
            let list: Vec<String> = errors
                .iter()
                .map(|f| format!("  - {}", f.message))
                .collect();
            return Err(Failure(format!(
                "the database is not ready for this backend (run `unchained migrate`, or `unchained check` for details):\n{}",
                list.join("\n")
            )));
        }
    }
    // This backend's own tables (the mail outbox) on a database Django made,
    // and the product list's indexes and counts.
    schema::ensure_own_tables(&db).await?;
    if schema::ensure_product_list(&db).await? {
        tracing::info!(
            "made the product list's indexes and count triggers, and counted the products"
        );
    }
    unchained::web::serve(db, settings).await?;
    Ok(ExitCode::SUCCESS)
}

fn report_migration(report: &schema::MigrateReport) {
    if report.changed_nothing() {
        println!("No migrations to apply.");
        return;
    }
    for table in &report.created_tables {
        println!("  Created table {table}");
    }
    for migration in &report.recorded_migrations {
        println!("  Applying {migration}... OK");
    }
    if report.added_content_types > 0 || report.added_permissions > 0 {
        println!(
            "  Added {} content type(s) and {} permission(s)",
            report.added_content_types, report.added_permissions
        );
    }
    for column in &report.added_columns {
        println!("  Added column {column}");
    }
    if report.made_product_list {
        println!("  Made the product list's indexes and count triggers, and counted the products");
    }
}

async fn migrate(db: &Db) -> Outcome {
    println!("Operations to perform on {}:", db.backend_name());
    let report = schema::migrate(db).await?;
    report_migration(&report);
    Ok(ExitCode::SUCCESS)
}

async fn check(db: &Db, settings: &Settings) -> Outcome {
    let mut findings: Vec<schema::Finding> = settings
        .secret_key_warnings()
        .into_iter()
        .map(schema::Finding::warning)
        .collect();
    findings.extend(schema::schema_findings(db).await?);
    if !findings
        .iter()
        .any(|f| f.message.starts_with("table users_user "))
    {
        findings.extend(hash_census(db, settings).await?);
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == schema::Severity::Error)
        .count();
    for finding in &findings {
        let label = match finding.severity {
            schema::Severity::Error => "ERROR",
            schema::Severity::Warning => "WARNING",
        };
        println!("{label}: {}", finding.message);
    }
    if errors == 0 {
        println!(
            "OK: this {} database is compatible; it is safe to switch.",
            db.backend_name()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("NOT SAFE: {errors} problem(s) must be fixed before switching.");
        Ok(ExitCode::FAILURE)
    }
}

/// `manage.py check --deploy`: Django's deployment checks of the settings,
/// written as Django writes them (no database is opened, as Django opens
/// none). Warnings alone do not fail, as in Django, unless `--fail-level`
/// says so.
fn deploy_check(settings: &Settings, fail_level: &str) -> ExitCode {
    let level =
        unchained::django::security::Level::parse(fail_level).expect("one of clap's values");
    let report = settings.deploy_check_report(level);
    print!("{}", report.stdout);
    eprint!("{}", report.stderr);
    if report.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Counts stored password hashes by algorithm; those no configured hasher
/// can verify are errors, since their owners could no longer log in. PBKDF2
/// hashes with more iterations than `DJANGO_VERSION`'s are a warning: the
/// site runs a newer Django, and a login here would lower them.
async fn hash_census(db: &Db, settings: &Settings) -> Result<Vec<schema::Finding>, Failure> {
    let hashers = settings.hashers();
    let ours = hashers.params().pbkdf2_iterations;
    // Users by algorithm, to name a few of them.
    let mut unsupported: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let (mut stronger, mut most) = (0usize, 0u32);
    for (email, encoded) in db::users::all_password_hashes(db).await? {
        if !unchained::django::hashers::is_password_usable(&encoded) || encoded.is_empty() {
            continue; // unusable passwords: nothing to verify
        }
        if let Some(iterations) = unchained::django::hashers::pbkdf2_iterations_of(&encoded) {
            if iterations > ours {
                stronger += 1;
                most = most.max(iterations);
            }
        }
        if hashers.identify(&encoded).is_none() {
            let algorithm = unchained::django::hashers::algorithm_of(&encoded).unwrap_or_default();
            unsupported
                .entry(algorithm.to_string())
                .or_default()
                .push(email);
        }
    }
    const NAMED: usize = 5;
    let mut findings = Vec::new();
    if stronger > 0 {
        findings.push(schema::Finding::warning(format!(
            "{stronger} password hash(es) have more PBKDF2 iterations (up to {most}) than Django {} \
             makes ({ours}): the site seems to run a newer Django. Set DJANGO_VERSION to it, or \
             each login here lowers its user's hash (and that Django raises it again).",
            settings.django_release.name()
        )));
    }
    findings.extend(unsupported
        .into_iter()
        .map(|(algorithm, emails)| {
            let more = emails.len().saturating_sub(NAMED);
            let mut named = emails[..emails.len().min(NAMED)].join(", ");
            if more > 0 {
                named.push_str(&format!(" and {more} more"));
            }
            schema::Finding::error(format!(
                "{} user(s) have passwords hashed with {algorithm:?}, which PASSWORD_HASHERS does not support ({named}): they could not log in",
                emails.len()
            ))
        }));
    Ok(findings)
}

/// Reads a password: hidden at a terminal, a plain line from a pipe.
fn read_password(prompt: &str) -> Result<String, Failure> {
    if std::io::stdin().is_terminal() {
        Ok(rpassword::prompt_password(prompt)?)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

fn read_line(prompt: &str) -> Result<String, Failure> {
    print!("{prompt}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        return Err(Failure("no input".into()));
    }
    Ok(line.trim().to_string())
}

/// Asks for a new password twice, checked with Django's default validators,
/// at most three times (as `manage.py changepassword`).
fn read_new_password(
    email: &str,
    release: unchained::django::releases::Release,
) -> Result<String, Failure> {
    const MAX_TRIES: usize = 3;
    let attributes = unchained::django::password_validation::UserAttributes {
        email,
        first_name: "",
        last_name: "",
    };
    for _ in 0..MAX_TRIES {
        let password = read_password("Password: ")?;
        let again = read_password("Password (again): ")?;
        if password != again {
            eprintln!("Error: Your passwords didn't match.");
            continue;
        }
        if password.is_empty() {
            eprintln!("Error: Blank passwords aren't allowed.");
            continue;
        }
        let problems = unchained::django::password_validation::validate_password(
            &password,
            &attributes,
            release,
        );
        if problems.is_empty() {
            return Ok(password);
        }
        eprintln!("{}", problems.join("\n"));
    }
    Err(Failure(format!(
        "Aborting: no acceptable password after {MAX_TRIES} attempts."
    )))
}

/// Hashing is CPU-bound: it runs on a blocking thread.
async fn hash_password(hashers: Hashers, password: String) -> Result<String, Failure> {
    Ok(tokio::task::spawn_blocking(move || hashers.make_password(&password)).await?)
}

async fn createsuperuser(
    db: &Db,
    settings: &Settings,
    email: Option<String>,
    noinput: bool,
) -> Outcome {
    // As manage.py: --noinput also takes the e-mail from DJANGO_SUPERUSER_EMAIL.
    let from_env = || {
        std::env::var("DJANGO_SUPERUSER_EMAIL")
            .ok()
            .filter(|e| !e.is_empty())
    };
    let email = match (email, noinput) {
        (Some(email), _) => email,
        (None, true) => from_env()
            .ok_or_else(|| Failure("Error: You must use --email with --noinput.".into()))?,
        (None, false) => read_line("Email address: ")?,
    };
    // As `_validate_username`: the model field's clean() of the address as
    // given (validate_email, then max_length), every error; then stored
    // normalized, as create_superuser does.
    let mut problems = Vec::new();
    if !unchained::django::email_validator::validate_email(&email) {
        problems.push("Enter a valid email address.".to_string());
    }
    let length = email.chars().count();
    if length > db::users::EMAIL_MAX_LENGTH {
        problems.push(format!(
            "Ensure this value has at most {} characters (it has {length}).",
            db::users::EMAIL_MAX_LENGTH
        ));
    }
    if !problems.is_empty() {
        return Err(Failure(format!(
            "Error: {} (got {email:?})",
            problems.join("; ")
        )));
    }
    let email = db::users::normalize_email(&email);
    let password = if noinput {
        std::env::var("DJANGO_SUPERUSER_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                Failure("Error: set DJANGO_SUPERUSER_PASSWORD to use --noinput.".into())
            })?
    } else {
        read_new_password(&email, settings.django_release)?
    };
    let hash = hash_password(settings.hashers(), password).await?;
    let new_user = db::users::NewUser {
        email: &email,
        password_hash: &hash,
        is_active: true,
        is_staff: true,
        is_superuser: true,
        token: None,
    };
    let mut tx = db.begin().await?;
    match db::users::insert(&mut tx, &new_user).await {
        Ok(_) => {
            tx.commit().await?;
            println!("Superuser created successfully.");
            Ok(ExitCode::SUCCESS)
        }
        Err(db::users::CreateUserError::EmailTaken) => Err(Failure(
            "Error: That email address is already taken.".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

async fn changepassword(db: &Db, settings: &Settings, email: &str) -> Outcome {
    let user = db::users::by_email(db, email)
        .await?
        .ok_or_else(|| Failure(format!("user '{email}' does not exist")))?;
    println!("Changing password for user '{}'", user.email);
    let password = read_new_password(&user.email, settings.django_release)?;
    let hash = hash_password(settings.hashers(), password).await?;
    db::users::set_password(db, user.id, &hash).await?;
    println!("Password changed successfully for user '{}'", user.email);
    Ok(ExitCode::SUCCESS)
}

async fn group(db: &Db, action: GroupAction) -> Outcome {
    match action {
        GroupAction::Create { name } => {
            let (_, created) = perms::ensure_group(db, &name).await?;
            println!(
                "{}",
                if created {
                    "Group created."
                } else {
                    "Group already exists."
                }
            );
        }
        GroupAction::Grant { group, permissions } => {
            let group_id = perms::group_id(db, &group)
                .await?
                .ok_or_else(|| Failure(format!("group '{group}' does not exist")))?;
            grant_all(db, group_id, &permissions).await?;
        }
        GroupAction::AddUser { group, email } => {
            let group_id = perms::group_id(db, &group)
                .await?
                .ok_or_else(|| Failure(format!("group '{group}' does not exist")))?;
            let user = db::users::by_email(db, &email)
                .await?
                .ok_or_else(|| Failure(format!("user '{email}' does not exist")))?;
            let added = perms::add_user_to_group(db, user.id, group_id).await?;
            println!(
                "{}",
                if added {
                    "User added."
                } else {
                    "User was already in the group."
                }
            );
        }
        GroupAction::List => {
            for (name, permissions) in perms::groups_with_permissions(db).await? {
                println!(
                    "{name}: {}",
                    if permissions.is_empty() {
                        "-".to_string()
                    } else {
                        permissions.join(", ")
                    }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks every permission name first, so a typo grants nothing.
async fn grant_all(db: &Db, group_id: i64, permissions: &[String]) -> Result<(), Failure> {
    let mut ids = Vec::new();
    for name in permissions {
        let id = perms::permission_id(db, name).await?.ok_or_else(|| {
            Failure(format!("permission '{name}' does not exist (use app_label.codename, e.g. catalog.change_product)"))
        })?;
        ids.push((name, id));
    }
    for (name, id) in ids {
        let granted = perms::grant_to_group(db, group_id, id).await?;
        println!(
            "{name}: {}",
            if granted {
                "granted"
            } else {
                "already granted"
            }
        );
    }
    Ok(())
}

async fn setup_moderators(db: &Db, name: &str) -> Outcome {
    let (group_id, created) = perms::ensure_group(db, name).await?;
    println!(
        "Group '{name}' {}.",
        if created { "created" } else { "exists" }
    );
    let names: Vec<String> = perms::MODERATOR_PERMISSIONS
        .iter()
        .map(|s| s.to_string())
        .collect();
    grant_all(db, group_id, &names).await?;
    Ok(ExitCode::SUCCESS)
}

/// `lockouts list` and `lockouts lift` (axes' `axes_list_attempts` and
/// `axes_reset_*` commands).
async fn lockouts(db: &Db, settings: &Settings, action: LockoutsAction) -> Outcome {
    use unchained::db::throttle::{self, Lift};
    use unchained::db::time::DjangoDateTime;

    if schema::is_empty(db).await? {
        return Err(Failure(
            "the database is empty: run `unchained migrate` first".into(),
        ));
    }
    schema::ensure_own_tables(db).await?;
    let throttling = &settings.throttling;
    match action {
        LockoutsAction::List => {
            let now = DjangoDateTime::now();
            let rows =
                throttle::current_failures(db, throttle::before(now, throttling.cooloff)).await?;
            if rows.is_empty() {
                println!("No failed logins count now.");
            }
            for row in rows {
                let until = throttle::after(row.last_failure_at, throttling.cooloff);
                let locked = if i64::from(row.failures) >= i64::from(throttling.failure_limit) {
                    format!(
                        "locked until {}",
                        until
                            .0
                            .with_timezone(&settings.time_zone)
                            .format("%Y-%m-%d %H:%M:%S %Z")
                    )
                } else {
                    "not locked".to_string()
                };
                println!("{}\tfailures {}\t{locked}", row.key, row.failures);
            }
        }
        LockoutsAction::Lift { username, ip, all } => {
            let which = if all {
                Lift::All
            } else {
                Lift::Matching {
                    username: username.map(|u| u.to_lowercase()),
                    ip_address: ip.map(|ip| ip.to_canonical().to_string()),
                }
            };
            let lifted = throttle::lift(db, &which).await?;
            println!("Lifted {lifted} lock key(s).");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `manage.py sendtestemail`: one test letter per address, enqueued in the
/// outbox, then one delivery attempt each, in this process.
async fn sendtestemail(db: &Db, settings: &Settings, addresses: &[String]) -> Outcome {
    use unchained::db::outbox;
    use unchained::db::time::DjangoDateTime;
    use unchained::mail::{self, Email};

    // Django's subject: "Test email from <gethostname()> on <str(timezone.now())>".
    let subject = format!(
        "Test email from {} on {}+00:00",
        mail::hostname(),
        DjangoDateTime::now().to_sqlite_text()
    );
    let letters = addresses
        .iter()
        .map(|to| Email::new(to, &subject, "If you're reading this, it was successful."))
        .collect::<Result<Vec<_>, _>>()?;
    if schema::is_empty(db).await? {
        return Err(Failure(
            "the database is empty: run `unchained migrate` first".into(),
        ));
    }
    schema::ensure_own_tables(db).await?;
    let mut tx = db.begin().await?;
    let mut ids = Vec::new();
    for letter in &letters {
        ids.push(outbox::enqueue(&mut tx, letter, &settings.email.outbox_backend()).await?);
    }
    tx.commit().await?;

    let mailer = mail::Mailer::new(&settings.email).map_err(|e| {
        Failure(format!(
            "cannot send ({e}); the letters stay in the outbox for `unchained serve`"
        ))
    })?;
    let mut failed = 0;
    for id in ids {
        let Some(row) = outbox::by_id(db, id).await? else {
            continue;
        };
        match mail::deliver(db, &mailer, &row, settings.email.retry_base).await? {
            Some(mail::Delivery { result: Ok(()), .. }) => {
                println!("Sent test email {id} to {}.", row.recipient)
            }
            Some(mail::Delivery {
                result: Err(error),
                retry_at,
                ..
            }) => {
                failed += 1;
                let fate = match retry_at {
                    Some(t) => format!(
                        "It stays in the outbox; `unchained serve` retries it from {} UTC.",
                        t.to_sqlite_text()
                    ),
                    None => "It can never be sent: marked failed, it is not retried.".into(),
                };
                eprintln!(
                    "Could not send test email {id} to {}: {error}\n  {fate}",
                    row.recipient
                );
            }
            None => println!(
                "Test email {id} to {} is being sent by a running server.",
                row.recipient
            ),
        }
    }
    mailer.close().await;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
