//! `unchained collectstatic`: the static files built into the binary (the
//! ones `/static/` serves) written to `STATIC_ROOT`, for a proxy to serve
//! them as it served the folder Django's `collectstatic` filled.
//!
//! Under their plain names only, as Django's default `StaticFilesStorage`
//! writes them: the reference project keeps that storage, so its pages, and
//! these, which must be byte-identical to them, link `/static/css/site.css`
//! and never a content-hashed name. No `staticfiles.json` is written either,
//! so a `STATIC_ROOT` shared with Django admin's files keeps the manifest a
//! `ManifestStaticFilesStorage` wrote there.
//!
//! A file is replaced by writing a temporary file beside it and renaming it
//! over the old one, so a proxy never serves half a file; one that already
//! holds the same bytes is left alone (Django compares modification times;
//! these files have none but the build's).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::web::embedded::STATIC_FILES;

/// What `collectstatic` may do.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Delete every file under the folder first (Django's `--clear`).
    pub clear: bool,
    /// Say what would be done, change nothing (Django's `--dry-run`).
    pub dry_run: bool,
}

/// What it did, as Django counts it.
#[derive(Debug, Default)]
pub struct Report {
    /// Files deleted by `clear` (or that would be), relative to the folder.
    pub deleted: Vec<String>,
    /// Files written (or that would be), by name.
    pub copied: Vec<String>,
    /// Files that already held these bytes.
    pub unmodified: Vec<String>,
}

/// The static files: (name under `/static/`, contents).
pub fn files() -> &'static [(&'static str, &'static [u8])] {
    STATIC_FILES
}

/// The folder of the static files' sources, where this binary was built.
/// `collectstatic` refuses to write there: `--clear` would delete them.
pub fn source_folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("static")
}

/// Whether the folder exists and holds anything: Django asks before
/// writing into such a folder.
pub fn has_files(root: &Path) -> bool {
    std::fs::read_dir(root).is_ok_and(|mut entries| entries.next().is_some())
}

/// Writes the static files under `root` (made if missing), after deleting
/// everything there with `clear`; `log` receives Django's lines for
/// verbosity 1 ("Deleting 'css/old.css'", "Pretending to copy …").
pub fn collect(root: &Path, options: Options, log: &mut dyn FnMut(&str)) -> io::Result<Report> {
    if let (Ok(root), Ok(source)) = (root.canonicalize(), source_folder().canonicalize()) {
        if root == source {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "STATIC_ROOT is {}, the folder the static files are built from; set STATIC_ROOT to another folder",
                    root.display()
                ),
            ));
        }
    }
    if root.exists() && !root.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("STATIC_ROOT {} is not a folder", root.display()),
        ));
    }
    let mut report = Report::default();
    if options.clear {
        clear_dir(root, "", options.dry_run, &mut report, log)?;
    }
    for (name, contents) in STATIC_FILES {
        let target = root.join(name);
        if holds(&target, contents) {
            report.unmodified.push(name.to_string());
            continue;
        }
        if options.dry_run {
            log(&format!("Pretending to copy '{name}'"));
        } else {
            write_replacing(root, &target, contents).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot write {}: {e}", target.display()))
            })?;
        }
        report.copied.push(name.to_string());
    }
    Ok(report)
}

/// A regular file (not a link) with exactly these bytes.
fn holds(path: &Path, contents: &[u8]) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.len() == contents.len() as u64)
        && std::fs::read(path).is_ok_and(|existing| existing == contents)
}

/// Django's `clear_dir`: every file under the folder is deleted, folders
/// are kept. A link is deleted itself, never followed.
fn clear_dir(
    root: &Path,
    relative: &str,
    dry_run: bool,
    report: &mut Report,
    log: &mut dyn FnMut(&str),
) -> io::Result<()> {
    let folder = root.join(relative);
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    let mut folders = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if relative.is_empty() {
            name
        } else {
            format!("{relative}/{name}")
        };
        if entry.file_type()?.is_dir() {
            folders.push(path);
        } else {
            files.push(path);
        }
    }
    files.sort();
    folders.sort();
    for path in files {
        if dry_run {
            log(&format!("Pretending to delete '{path}'"));
        } else {
            log(&format!("Deleting '{path}'"));
            std::fs::remove_file(root.join(&path))?;
        }
        report.deleted.push(path);
    }
    for path in folders {
        clear_dir(root, &path, dry_run, report, log)?;
    }
    Ok(())
}

/// Writes `contents` to a temporary file beside `target` and renames it
/// over `target`. Files are readable by everyone (Django's
/// `FILE_UPLOAD_PERMISSIONS`, 0o644) and the folders made for them
/// searchable (0o755), whatever the umask, so the proxy's user reads them.
fn write_replacing(root: &Path, target: &Path, contents: &[u8]) -> io::Result<()> {
    let parent = target.parent().unwrap_or(root);
    make_folders(parent)?;
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = parent.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        set_mode(&temporary, 0o644)?;
        std::fs::rename(&temporary, target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

fn make_folders(folder: &Path) -> io::Result<()> {
    if folder.is_dir() {
        return Ok(());
    }
    if let Some(parent) = folder.parent() {
        make_folders(parent)?;
    }
    match std::fs::create_dir(folder) {
        Ok(()) => set_mode(folder, 0o755),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && folder.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// Django's closing line: "2 static files copied to '/srv/static', 1 unmodified."
pub fn summary(report: &Report, destination: &Path) -> String {
    let count = report.copied.len();
    let unmodified = if report.unmodified.is_empty() {
        String::new()
    } else {
        format!(", {} unmodified", report.unmodified.len())
    };
    format!(
        "{count} static file{} copied to '{}'{unmodified}.",
        if count == 1 { "" } else { "s" },
        destination.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_file_then_leaves_them_alone() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("static");
        let mut lines = Vec::new();
        let first = collect(&root, Options::default(), &mut |l| {
            lines.push(l.to_string())
        })
        .unwrap();
        assert_eq!(first.copied.len(), STATIC_FILES.len());
        for (name, contents) in STATIC_FILES {
            assert_eq!(std::fs::read(root.join(name)).unwrap(), *contents, "{name}");
        }
        let second = collect(&root, Options::default(), &mut |l| {
            lines.push(l.to_string())
        })
        .unwrap();
        assert!(second.copied.is_empty());
        assert_eq!(second.unmodified.len(), STATIC_FILES.len());
        assert!(lines.is_empty(), "{lines:?}");
        assert_eq!(
            summary(&second, &root),
            format!(
                "0 static files copied to '{}', {} unmodified.",
                root.display(),
                STATIC_FILES.len()
            )
        );
    }

    #[test]
    fn refuses_the_source_folder() {
        // A dry run: were the guard broken, nothing would be deleted.
        let error = collect(
            &source_folder(),
            Options {
                clear: true,
                dry_run: true,
            },
            &mut |_| {},
        )
        .unwrap_err();
        assert!(error.to_string().contains("built from"), "{error}");
        assert!(source_folder().join("css/site.css").exists());
    }

    #[test]
    fn summary_counts_as_django() {
        let report = Report {
            copied: vec!["a.css".into()],
            ..Report::default()
        };
        assert_eq!(
            summary(&report, Path::new("/s")),
            "1 static file copied to '/s'."
        );
    }
}
