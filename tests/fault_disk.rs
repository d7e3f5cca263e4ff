//! A full disk at the destination: each file output (tar, oci) and a local
//! directory export go to a 1 MiB tmpfs that holds the previous outputs,
//! and the build's 3 MB do not fit. rbuild must fail with one line that
//! says the disk is full and what to do, and leave the previous outputs and
//! nothing else. Mounting needs root, as the stack itself does.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::faults::{assert_dir_holds, one_error_line};
use support::*;

/// A small tmpfs, unmounted on drop (also when the test fails).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs (these tests run as root, like the stack): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_at_each_destination_fails_in_one_line_and_keeps_the_previous_output() {
    let stack = stack();
    let disk = Tmpfs::mount("1m");
    let dir: PathBuf = disk.path().join("site");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("big"), "previous local").unwrap();
    std::fs::write(disk.path().join("app.tar"), "previous tar").unwrap();
    std::fs::write(disk.path().join("app-oci.tar"), "previous oci").unwrap();
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "ARG BASE\nFROM ${{BASE}}\nRUN head -c 3000000 /dev/urandom > /big && echo {}\n",
            unique("full")
        ),
    )]);
    let outputs = [
        format!("type=tar,dest={}", disk.path().join("app.tar").display()),
        format!(
            "type=oci,dest={}",
            disk.path().join("app-oci.tar").display()
        ),
        format!("type=local,dest={}", dir.display()),
    ];
    for output in &outputs {
        let out = build_cmd(&stack)
            .args(["--build-arg", &format!("BASE={}", stack.base)])
            .args(["-o", output])
            .arg(ctx.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{output}: {}", stderr(&out));
        let line = one_error_line(&stderr(&out));
        assert!(
            line.starts_with(&format!(
                "error: cannot write the output {}",
                disk.path().display()
            )) && line.contains("No space left on device")
                && line.contains("previous output there is untouched")
                && line.contains("free space"),
            "{output}: {line}"
        );
        assert_dir_holds(
            disk.path(),
            &[
                ("app.tar", "previous tar"),
                ("app-oci.tar", "previous oci"),
                ("site", ""),
            ],
        );
        assert_dir_holds(&dir, &[("big", "previous local")]);
    }
}
