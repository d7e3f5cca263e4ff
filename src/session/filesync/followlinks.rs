//! Resolving `followpaths` into include patterns (upstream fsutil `followlinks.go`).
//!
//! The frontend asks for `Dockerfile` and `Dockerfile.dockerignore` this way: each path is
//! walked component by component; a symlink along the way adds both the link and (the
//! resolution of) its target, so the receiver gets the link and what it points at. A glob is
//! allowed in a component (in practice the last); there only matching symlinks are resolved.
//! Targets are interpreted inside the root: absolute targets and `..` are clamped to it.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;
use std::rc::Rc;

use super::filter::dedupe_paths;
use super::glob;

/// Symlinks chained deeper than this fail the request instead of recursing on.
const MAX_LINK_DEPTH: usize = 255;

/// The file-system view the resolver needs.
pub trait LinkTree {
    /// Entries of directory `dir` (clean, relative, `.` for the root) with whether each is a
    /// symlink; empty if `dir` is missing or not a directory.
    fn read_dir(&self, dir: &str) -> io::Result<Vec<(String, bool)>>;
    /// The target of the symlink at `path`.
    fn read_link(&self, path: &str) -> io::Result<String>;
}

/// A directory on disk.
pub struct DiskTree<'a>(pub &'a Path);

impl LinkTree for DiskTree<'_> {
    fn read_dir(&self, dir: &str) -> io::Result<Vec<(String, bool)>> {
        // Lexically above the root: upstream would list outside the context; we never do.
        if dir == ".." || dir.starts_with("../") {
            return Ok(Vec::new());
        }
        let path = self.0.join(dir);
        // Like upstream's walk: a missing path, a file or a symlink lists as empty.
        match std::fs::symlink_metadata(&path) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => return Ok(Vec::new()),
            Err(e) if is_not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&path)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            out.push((name, entry.file_type()?.is_symlink()));
        }
        Ok(out)
    }

    fn read_link(&self, path: &str) -> io::Result<String> {
        let target = std::fs::read_link(self.0.join(path))?;
        Ok(target.to_string_lossy().into_owned())
    }
}

/// Top-level in-memory files: no directories, no symlinks.
pub struct FlatTree<'a>(pub Vec<&'a str>);

impl LinkTree for FlatTree<'_> {
    fn read_dir(&self, dir: &str) -> io::Result<Vec<(String, bool)>> {
        Ok(match dir {
            "." => self.0.iter().map(|n| (n.to_string(), false)).collect(),
            _ => Vec::new(),
        })
    }

    fn read_link(&self, path: &str) -> io::Result<String> {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{path}: not a symlink"),
        ))
    }
}

/// Upstream `FollowLinks`: the sorted, deduplicated paths to include, or `None` when one of
/// them is the root itself (then no include filter applies).
pub fn follow_links(tree: &dyn LinkTree, paths: &[String]) -> io::Result<Option<Vec<String>>> {
    let mut resolver = Resolver {
        tree,
        resolved: HashSet::new(),
        listings: HashMap::new(),
    };
    for p in paths {
        resolver.append(p, 0)?;
    }
    let mut out: Vec<String> = resolver.resolved.into_iter().collect();
    out.sort();
    Ok(dedupe_paths(out))
}

struct Resolver<'a> {
    tree: &'a dyn LinkTree,
    resolved: HashSet<String>,
    listings: HashMap<String, Rc<Vec<(String, bool)>>>,
}

impl Resolver<'_> {
    fn append(&mut self, path: &str, depth: usize) -> io::Result<()> {
        if depth > MAX_LINK_DEPTH {
            return Err(io::Error::other(format!(
                "{path}: too many levels of symbolic links"
            )));
        }
        let mut rest = glob::join(".", path);
        let mut current = ".".to_owned();
        loop {
            let (first, tail) = match rest.split_once('/') {
                Some((first, tail)) => (first.to_owned(), tail.to_owned()),
                None => (std::mem::take(&mut rest), String::new()),
            };
            current = glob::join(&current, &first);
            let targets = self.read_symlink(&current, true)?;
            rest = tail;
            // Seen before: stops symlink cycles.
            if (rest.is_empty() || !targets.is_empty()) && self.resolved.contains(&current) {
                return Ok(());
            }
            if !targets.is_empty() {
                self.resolved.insert(current);
                for target in targets {
                    self.append(&glob::join(&target, &rest), depth + 1)?;
                }
                return Ok(());
            }
            if rest.is_empty() {
                self.resolved.insert(current);
                return Ok(());
            }
        }
    }

    /// The `/`-rooted targets of the symlink(s) at `path`; empty if it is not a symlink.
    fn read_symlink(&mut self, path: &str, allow_wildcard: bool) -> io::Result<Vec<String>> {
        let base = glob::base(path).to_owned();
        let dir = glob::dir(path);
        let listing = self.read_dir(&dir)?;
        if allow_wildcard && contains_wildcards(&base) {
            let mut out = Vec::new();
            for (name, _) in listing.iter() {
                if glob::go_match(&base, name) == Ok(true) {
                    out.extend(self.read_symlink(&glob::join(&dir, name), false)?);
                }
            }
            return Ok(out);
        }
        if !listing.iter().any(|(name, link)| *link && *name == base) {
            return Ok(Vec::new());
        }
        let link = glob::clean(&self.tree.read_link(path)?);
        if link.starts_with('/') {
            return Ok(vec![link]);
        }
        Ok(vec![glob::join("/", &glob::join(&dir, &link))])
    }

    fn read_dir(&mut self, dir: &str) -> io::Result<Rc<Vec<(String, bool)>>> {
        if let Some(listing) = self.listings.get(dir) {
            return Ok(Rc::clone(listing));
        }
        let listing = Rc::new(self.tree.read_dir(dir)?);
        self.listings.insert(dir.to_owned(), Rc::clone(&listing));
        Ok(listing)
    }
}

/// Upstream `containsWildcards`: `*`, `?` or `[` not escaped by `\`.
fn contains_wildcards(name: &str) -> bool {
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

pub(crate) fn is_not_found(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn follow(root: &Path, paths: &[&str]) -> Option<Vec<String>> {
        let paths: Vec<String> = paths.iter().map(|s| s.to_string()).collect();
        follow_links(&DiskTree(root), &paths).expect("resolves")
    }

    #[test]
    fn keeps_link_and_target() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub/real")).expect("mkdir");
        std::fs::write(root.join("sub/real/Dockerfile"), "FROM x").expect("write");
        symlink("sub/real/Dockerfile", root.join("Dockerfile")).expect("symlink");
        symlink("/sub/real", root.join("abs")).expect("symlink");
        symlink("../../../outside", root.join("up")).expect("symlink");
        symlink("loop", root.join("loop")).expect("symlink");

        let got = follow(
            root,
            &["Dockerfile", "Dockerfile.dockerignore", "dockerfile"],
        );
        let want = [
            "Dockerfile",
            "Dockerfile.dockerignore",
            "dockerfile",
            "sub/real/Dockerfile",
        ];
        assert_eq!(got, Some(want.map(String::from).to_vec()));
        // A symlinked directory in the middle of the path; absolute targets are root-relative.
        assert_eq!(
            follow(root, &["abs/Dockerfile"]),
            Some(vec!["abs".into(), "sub/real/Dockerfile".into()])
        );
        // Targets never leave the root; cycles stop.
        assert_eq!(
            follow(root, &["up"]),
            Some(vec!["outside".into(), "up".into()])
        );
        assert_eq!(follow(root, &["loop"]), Some(vec!["loop".into()]));
        assert_eq!(
            follow(root, &["/Dockerfile.x"]),
            Some(vec!["Dockerfile.x".into()])
        );
        assert_eq!(follow(root, &["../x"]), Some(vec!["../x".into()]));
        assert_eq!(follow(root, &["a", "."]), None);
    }

    #[test]
    fn globs_resolve_matching_symlinks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::write(root.join("target.txt"), "x").expect("write");
        std::fs::write(root.join("Dockerfile.plain"), "x").expect("write");
        symlink("target.txt", root.join("Dockerfile.link")).expect("symlink");
        let got = follow(root, &["Dockerfile.*"]);
        // The glob itself stands for the link; the resolved target is added beside it.
        let want = ["Dockerfile.*", "target.txt"];
        assert_eq!(got, Some(want.map(String::from).to_vec()));
    }

    #[test]
    fn flat_tree_resolves_to_itself() {
        let tree = FlatTree(vec!["Dockerfile"]);
        let got = follow_links(&tree, &["./Dockerfile".into(), "x/y".into()]).expect("ok");
        assert_eq!(got, Some(vec!["Dockerfile".into(), "x/y".into()]));
    }
}
