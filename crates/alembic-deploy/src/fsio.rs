//! File-system writes that never leave a half-written file: write to a temp file in the same
//! directory, fsync, rename over the target, fsync the directory. And [`write_output`] for a
//! file the user names on the command line, which may be no regular file at all.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Atomically replace `path` with `bytes`, with unix `mode`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        set_mode(&tmp, mode)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> io::Result<()> {
    Ok(())
}

/// fsync a directory so a rename in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Where [`write_output`] put the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// `-`: standard output.
    Stdout,
    /// Opened and written in place: a character device (`/dev/null`) or a FIFO.
    Through,
    /// A regular file, written atomically (a new file, or one replaced by rename).
    File,
}

fn refused(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} is {what}; give a regular file, a FIFO, /dev/null or -",
            path.display()
        ),
    )
}

/// Write the output file a user named (`--out FILE`):
/// - `-` is standard output;
/// - a character device or a FIFO (`/dev/null`, a named pipe) is opened and written through,
///   never replaced: an atomic rename would put a regular file in place of the device;
/// - a regular file, or nothing yet, is written atomically (`write_atomic`);
/// - a symbolic link is followed to what it names and that is written by the rules above (a
///   regular file is replaced in its own directory, so the link stays a link); a link that
///   names nothing is refused rather than guessed at;
/// - a directory, a block device or a socket is refused: nothing is written.
pub fn write_output(path: &Path, bytes: &[u8], mode: u32) -> io::Result<Output> {
    if path.as_os_str() == "-" {
        let mut out = io::stdout().lock();
        out.write_all(bytes)?;
        out.flush()?;
        return Ok(Output::Stdout);
    }
    let (target, meta) = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => match fs::canonicalize(path) {
            Ok(t) => {
                let m = fs::metadata(&t)?;
                (t, m)
            }
            Err(_) => return Err(refused(path, "a symbolic link to nothing")),
        },
        Ok(m) => (path.to_path_buf(), m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            write_atomic(path, bytes, mode)?;
            return Ok(Output::File);
        }
        Err(e) => return Err(e),
    };
    let ft = meta.file_type();
    if ft.is_file() {
        write_atomic(&target, bytes, mode)?;
        return Ok(Output::File);
    }
    if ft.is_dir() {
        return Err(refused(path, "a directory"));
    }
    if is_char_device_or_fifo(&ft) {
        // Opening an existing node without O_CREAT or O_TRUNC: a FIFO blocks here until a
        // reader opens it, as a shell redirect does.
        let mut f = fs::OpenOptions::new().write(true).open(&target)?;
        f.write_all(bytes)?;
        f.flush()?;
        return Ok(Output::Through);
    }
    Err(refused(path, "a block device or a socket"))
}

#[cfg(unix)]
fn is_char_device_or_fifo(ft: &fs::FileType) -> bool {
    use std::os::unix::fs::FileTypeExt;
    ft.is_char_device() || ft.is_fifo()
}

#[cfg(not(unix))]
fn is_char_device_or_fifo(_: &fs::FileType) -> bool {
    false
}

/// Refuse an output directory (`render --out`, `init --dir`) that exists and is not a
/// directory (or a link to one), or is `-`: those commands write several files.
pub fn check_output_dir(path: &Path) -> io::Result<()> {
    if path.as_os_str() == "-" {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "- (standard output) cannot hold several files; give a directory",
        ));
    }
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} exists and is not a directory", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::symlink_metadata(path) {
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is a symbolic link to nothing", path.display()),
            )),
            Err(_) => Ok(()),
        },
        Err(e) => Err(e),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    // `--out` naming a FIFO used to be replaced by a regular file; it must be written through.
    #[test]
    fn a_fifo_is_written_through_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("plan.pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read(&fifo).expect("read the FIFO"))
        };
        assert_eq!(
            write_output(&fifo, b"plan\n", 0o644).unwrap(),
            Output::Through
        );
        assert_eq!(reader.join().unwrap(), b"plan\n");
        use std::os::unix::fs::FileTypeExt;
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    }

    // A link to a regular file replaces the file it names; the link stays a link.
    #[test]
    fn a_link_to_a_file_keeps_the_link() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        let file = dir.path().join("real/plan.json");
        fs::write(&file, "old").unwrap();
        let link = dir.path().join("plan.json");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(write_output(&link, b"new", 0o644).unwrap(), Output::File);
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&file).unwrap(), b"new");
    }

    // Nothing is written for a directory or a dangling link.
    #[test]
    fn a_directory_and_a_dangling_link_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = write_output(dir.path(), b"x", 0o644).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        let link = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere/plan.json"), &link).unwrap();
        let e = write_output(&link, b"x", 0o644).unwrap_err();
        assert!(e.to_string().contains("link to nothing"), "{e}");
        assert!(!dir.path().join("nowhere").exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
