//! What is inside an image: merging layer listings (whiteouts), resolving links, and classifying
//! the executables an application image should not carry (shells, package managers, network
//! tools, editors).
//!
//! Pure: the registry module turns layer tarballs into [`FsEntry`] lists; everything here works on
//! those lists and is unit-tested without I/O.
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Type of a tar entry, reduced to what classification needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Other,
}

/// One entry of a layer (or of the merged filesystem). `path` is absolute and normalised
/// (`/usr/bin/sh`, no trailing slash, no `.`/`..`); hardlink targets are normalised the same way,
/// symlink targets are kept verbatim (relative targets resolve against the link's directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsEntry {
    #[serde(rename = "p")]
    pub path: String,
    #[serde(rename = "k")]
    pub kind: EntryKind,
    #[serde(rename = "m")]
    pub mode: u32,
    #[serde(rename = "s", default)]
    pub size: u64,
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// Normalise a path found in a tar header (`./usr/bin/sh`, `usr/bin/`, `/bin//sh`) to
/// `/usr/bin/sh`. `..` pops a component but never climbs above the root, like the runtimes do when
/// they extract layers.
pub fn normalize_path(raw: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// The filesystem an image's layers produce, after whiteouts, keyed by absolute path.
pub type MergedFs = BTreeMap<String, FsEntry>;

/// Apply layers bottom-up the way overlay-based runtimes do: in each layer, `.wh.NAME` deletes
/// NAME (and everything below it) from the lower layers, `.wh..wh..opq` hides everything the lower
/// layers put in that directory; then the layer's own entries are added. Whiteouts only affect
/// lower layers, so their position inside the tar does not matter.
pub fn merge_layers<'a, I>(layers: I) -> MergedFs
where
    I: IntoIterator<Item = &'a [FsEntry]>,
{
    let mut fs = MergedFs::new();
    for layer in layers {
        for e in layer {
            let name = file_name(&e.path);
            let dir = parent_of(&e.path);
            if name == OPAQUE_MARKER {
                remove_below(&mut fs, dir);
            } else if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
                let target = if dir == "/" {
                    format!("/{hidden}")
                } else {
                    format!("{dir}/{hidden}")
                };
                fs.remove(&target);
                remove_below(&mut fs, &target);
            }
        }
        for e in layer {
            let name = file_name(&e.path);
            if name.starts_with(WHITEOUT_PREFIX) {
                continue;
            }
            // A non-directory replacing a directory hides what the lower layers had below it.
            if e.kind != EntryKind::Dir {
                if let Some(old) = fs.get(&e.path) {
                    if old.kind == EntryKind::Dir {
                        remove_below(&mut fs, &e.path.clone());
                    }
                }
            }
            fs.insert(e.path.clone(), e.clone());
        }
    }
    fs
}

fn remove_below(fs: &mut MergedFs, dir: &str) {
    let prefix = if dir == "/" {
        "/".to_string()
    } else {
        format!("{dir}/")
    };
    let doomed: Vec<String> = fs
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for k in doomed {
        fs.remove(&k);
    }
}

/// Linux's limit on symlinks followed while resolving one path.
const MAX_SYMLINKS: usize = 40;

/// Resolve `path` through symlinks (in the final component and in any parent directory) and
/// hardlinks, returning the real entry's path. `None` when it dangles or loops.
pub fn resolve(fs: &MergedFs, path: &str) -> Option<String> {
    let mut budget = MAX_SYMLINKS;
    let real = resolve_inner(fs, path, &mut budget, true)?;
    Some(real)
}

fn resolve_inner(
    fs: &MergedFs,
    path: &str,
    budget: &mut usize,
    follow_last: bool,
) -> Option<String> {
    // Components still to walk, in reverse order so we can push a symlink's target in front.
    let mut pending: Vec<String> = normalize_components(path).into_iter().rev().collect();
    let mut current = String::from("/");
    while let Some(comp) = pending.pop() {
        if comp == ".." {
            current = parent_of(&current).to_string();
            continue;
        }
        let candidate = if current == "/" {
            format!("/{comp}")
        } else {
            format!("{current}/{comp}")
        };
        let is_last = pending.is_empty();
        match fs.get(&candidate) {
            Some(e) if e.kind == EntryKind::Symlink && (!is_last || follow_last) => {
                if *budget == 0 {
                    return None;
                }
                *budget -= 1;
                let target = e.link.as_deref().unwrap_or("");
                if target.starts_with('/') {
                    current = "/".to_string();
                }
                for c in target.split('/').rev() {
                    if !c.is_empty() && c != "." {
                        pending.push(c.to_string());
                    }
                }
            }
            Some(e) if e.kind == EntryKind::Hardlink && is_last => {
                if *budget == 0 {
                    return None;
                }
                *budget -= 1;
                let target = e.link.clone().unwrap_or_default();
                return resolve_inner(fs, &target, budget, true);
            }
            Some(_) => current = candidate,
            // A parent directory that no tar entry created explicitly still exists on disk
            // (tar extraction creates it), so only the last component must be present.
            None if !is_last => current = candidate,
            None => return None,
        }
    }
    Some(current)
}

/// Split into components, keeping `..` (it must be applied after symlink substitution).
fn normalize_components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

/// The kinds of tools an application image should not ship.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    Shell,
    PackageManager,
    NetworkTool,
    Editor,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::Shell,
        Category::PackageManager,
        Category::NetworkTool,
        Category::Editor,
    ];

    /// The audit rule this category maps to.
    pub fn rule_id(self) -> &'static str {
        match self {
            Category::Shell => "contains-shell",
            Category::PackageManager => "contains-package-manager",
            Category::NetworkTool => "contains-network-tool",
            Category::Editor => "contains-editor",
        }
    }

    /// Contract default severity of [`Category::rule_id`].
    pub fn default_severity(self) -> &'static str {
        match self {
            Category::Shell | Category::PackageManager => "high",
            Category::NetworkTool => "medium",
            Category::Editor => "low",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Shell => "shell",
            Category::PackageManager => "package-manager",
            Category::NetworkTool => "network-tool",
            Category::Editor => "editor",
        }
    }

    /// Executable names (after [`tool_stem`]) in this category.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Category::Shell => &[
                "sh", "bash", "rbash", "ash", "dash", "zsh", "ksh", "ksh93", "mksh", "pdksh",
                "lksh", "oksh", "csh", "tcsh", "fish", "yash", "busybox", "toybox", "elvish",
                "xonsh",
            ],
            Category::PackageManager => &[
                "apt",
                "apt-get",
                "apt-cache",
                "aptitude",
                "dpkg",
                "dpkg-deb",
                "yum",
                "dnf",
                "tdnf",
                "microdnf",
                "rpm",
                "apk",
                "zypper",
                "pacman",
                "emerge",
                "opkg",
                "xbps-install",
                "nix",
                "nix-env",
                "brew",
                "pip",
                "pipx",
                "easy_install",
                "conda",
                "mamba",
                "micromamba",
                "npm",
                "npx",
                "yarn",
                "pnpm",
                "gem",
                "bundle",
                "bundler",
                "composer",
                "cpan",
                "cpanm",
            ],
            Category::NetworkTool => &[
                "curl",
                "wget",
                "nc",
                "ncat",
                "netcat",
                "telnet",
                "ssh",
                "scp",
                "sftp",
                "ftp",
                "tftp",
                "nmap",
                "socat",
                "rsync",
                "aria2c",
                "lftp",
                "dig",
                "nslookup",
                "traceroute",
                "tcpdump",
            ],
            Category::Editor => &[
                "vi", "vim", "nvim", "vimdiff", "nano", "pico", "emacs", "ed", "joe", "jed",
                "micro", "kak", "hx", "mcedit",
            ],
        }
    }
}

/// Reduce an executable name to the tool it is: Debian alternatives and versioned names
/// (`vim.basic`, `nc.openbsd`, `pip3.12`, `python3` style) count as the tool they provide.
pub fn tool_stem(name: &str) -> &str {
    let base = match name.find('.') {
        Some(0) | None => name,
        Some(i) => &name[..i],
    };
    let trimmed = base.trim_end_matches(|c: char| c.is_ascii_digit());
    if trimmed.is_empty() {
        base
    } else {
        trimmed
    }
}

/// Which category (if any) an executable name belongs to. Exact names win over stems so that e.g.
/// `ksh93` or `apt-get` are matched directly.
pub fn categorize_name(name: &str) -> Option<Category> {
    let lookup = |n: &str| Category::ALL.into_iter().find(|c| c.names().contains(&n));
    lookup(name).or_else(|| {
        let stem = tool_stem(name);
        if stem != name {
            lookup(stem)
        } else {
            None
        }
    })
}

/// Directories a shell's `PATH` covers in practically every image.
pub const STANDARD_BIN_DIRS: [&str; 6] = [
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
];

/// The directories to search: the standard ones plus every absolute directory in the image
/// config's `PATH` (that is how `distroless:debug`'s `/busybox` gets covered — the image itself
/// says commands are looked up there).
pub fn bin_dirs_from_env(env: &[String]) -> Vec<String> {
    let mut dirs: Vec<String> = STANDARD_BIN_DIRS.iter().map(|s| s.to_string()).collect();
    for kv in env {
        if let Some(path) = kv.strip_prefix("PATH=") {
            for d in path.split(':') {
                if d.starts_with('/') {
                    let n = normalize_path(d);
                    if !dirs.contains(&n) {
                        dirs.push(n);
                    }
                }
            }
        }
    }
    dirs
}

/// One forbidden executable found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContentFinding {
    pub category: Category,
    /// The name that matched (`sh`).
    pub name: String,
    /// Where it is (`/bin/sh`).
    pub path: String,
    /// The real file it resolves to, when that differs (`/bin/busybox`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Find executables of the forbidden categories in the given bin directories of a merged
/// filesystem. An entry counts when its name matches a category and it is (or links to) a regular
/// file with an execute bit. Sorted by category, then path.
pub fn classify(fs: &MergedFs, bin_dirs: &[String]) -> Vec<ContentFinding> {
    // Resolve each bin dir first: on merged-/usr systems /bin is a symlink to usr/bin, and the
    // files live under the real directory.
    let real_dirs: BTreeSet<String> = bin_dirs
        .iter()
        .filter_map(|d| resolve(fs, d).or_else(|| Some(normalize_path(d))))
        .collect();
    let mut out = Vec::new();
    for (path, entry) in fs {
        if entry.kind == EntryKind::Dir {
            continue;
        }
        let name = file_name(path);
        let Some(category) = categorize_name(name) else {
            continue;
        };
        let mut budget = MAX_SYMLINKS;
        let dir_real = resolve_inner(fs, parent_of(path), &mut budget, true)
            .unwrap_or_else(|| parent_of(path).to_string());
        if !real_dirs.contains(&dir_real) {
            continue;
        }
        let Some(real) = resolve(fs, path) else {
            continue;
        };
        let Some(target) = fs.get(&real) else {
            continue;
        };
        if target.kind != EntryKind::File || target.mode & 0o111 == 0 {
            continue;
        }
        out.push(ContentFinding {
            category,
            name: name.to_string(),
            path: path.clone(),
            target: (real != *path).then_some(real),
        });
    }
    out.sort();
    out
}

/// Findings grouped by category, each list sorted by path; categories without findings omitted.
pub fn group_by_category(findings: &[ContentFinding]) -> BTreeMap<Category, Vec<ContentFinding>> {
    let mut m: BTreeMap<Category, Vec<ContentFinding>> = BTreeMap::new();
    for f in findings {
        m.entry(f.category).or_default().push(f.clone());
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &str) -> FsEntry {
        FsEntry {
            path: p.into(),
            kind: EntryKind::File,
            mode: 0o755,
            size: 1,
            link: None,
        }
    }
    fn data(p: &str) -> FsEntry {
        FsEntry {
            mode: 0o644,
            ..file(p)
        }
    }
    fn dir(p: &str) -> FsEntry {
        FsEntry {
            kind: EntryKind::Dir,
            ..file(p)
        }
    }
    fn sym(p: &str, t: &str) -> FsEntry {
        FsEntry {
            kind: EntryKind::Symlink,
            link: Some(t.into()),
            ..file(p)
        }
    }
    fn hard(p: &str, t: &str) -> FsEntry {
        FsEntry {
            kind: EntryKind::Hardlink,
            link: Some(t.into()),
            ..file(p)
        }
    }
    fn std_dirs() -> Vec<String> {
        bin_dirs_from_env(&[])
    }
    fn paths(fs: &MergedFs) -> Vec<(Category, String, Option<String>)> {
        classify(fs, &std_dirs())
            .into_iter()
            .map(|f| (f.category, f.path, f.target))
            .collect()
    }

    #[test]
    fn normalizes_tar_paths() {
        assert_eq!(normalize_path("./usr/bin/sh"), "/usr/bin/sh");
        assert_eq!(normalize_path("usr/bin/"), "/usr/bin");
        assert_eq!(normalize_path("/bin//sh"), "/bin/sh");
        assert_eq!(normalize_path("../../etc"), "/etc");
        assert_eq!(normalize_path("./"), "/");
    }

    #[test]
    fn tool_stems() {
        assert_eq!(tool_stem("vim.basic"), "vim");
        assert_eq!(tool_stem("nc.openbsd"), "nc");
        assert_eq!(tool_stem("pip3.12"), "pip");
        assert_eq!(tool_stem("pip3"), "pip");
        assert_eq!(tool_stem("apt-get"), "apt-get");
        assert_eq!(categorize_name("ksh93"), Some(Category::Shell));
        assert_eq!(categorize_name("python3"), None);
        assert_eq!(categorize_name("sed"), None);
        assert_eq!(categorize_name("ed"), Some(Category::Editor));
        assert_eq!(categorize_name("sh.distrib"), Some(Category::Shell));
        assert_eq!(categorize_name(".wh.sh"), None);
    }

    #[test]
    fn busybox_symlinks_resolve_and_count() {
        let layer = vec![
            dir("/bin"),
            file("/bin/busybox"),
            sym("/bin/sh", "busybox"),
            sym("/bin/vi", "/bin/busybox"),
            sym("/bin/wget", "../bin/busybox"),
            file("/app/server"),
        ];
        let fs = merge_layers([layer.as_slice()]);
        assert_eq!(
            paths(&fs),
            vec![
                (Category::Shell, "/bin/busybox".into(), None),
                (
                    Category::Shell,
                    "/bin/sh".into(),
                    Some("/bin/busybox".into())
                ),
                (
                    Category::NetworkTool,
                    "/bin/wget".into(),
                    Some("/bin/busybox".into())
                ),
                (
                    Category::Editor,
                    "/bin/vi".into(),
                    Some("/bin/busybox".into())
                ),
            ]
        );
    }

    #[test]
    fn whiteout_removes_lower_file_and_directories() {
        let base = vec![
            file("/bin/sh"),
            file("/usr/bin/curl"),
            file("/usr/local/bin/vim"),
        ];
        let top = vec![
            data("/bin/.wh.sh"),
            data("/usr/.wh.bin"),
            data("/usr/local/bin/.wh..wh..opq"),
            file("/usr/local/bin/app"),
        ];
        let fs = merge_layers([base.as_slice(), top.as_slice()]);
        assert!(paths(&fs).is_empty(), "{:?}", paths(&fs));
        assert!(fs.contains_key("/usr/local/bin/app"));
        assert!(!fs.contains_key("/bin/.wh.sh"));
    }

    #[test]
    fn opaque_dir_keeps_same_layer_entries_regardless_of_order() {
        let base = vec![file("/bin/bash")];
        let top = vec![file("/bin/dash"), data("/bin/.wh..wh..opq")];
        let fs = merge_layers([base.as_slice(), top.as_slice()]);
        assert_eq!(
            paths(&fs),
            vec![(Category::Shell, "/bin/dash".into(), None)]
        );
    }

    #[test]
    fn file_readded_after_whiteout_counts() {
        let l1 = vec![file("/bin/sh")];
        let l2 = vec![data("/bin/.wh.sh")];
        let l3 = vec![file("/bin/sh")];
        let fs = merge_layers([l1.as_slice(), l2.as_slice(), l3.as_slice()]);
        assert_eq!(paths(&fs).len(), 1);
    }

    #[test]
    fn merged_usr_and_alternatives() {
        // Debian bookworm: /bin -> usr/bin, vi -> /etc/alternatives/vi -> /usr/bin/vim.basic.
        let layer = vec![
            sym("/bin", "usr/bin"),
            file("/usr/bin/bash"),
            sym("/usr/bin/sh", "dash"),
            file("/usr/bin/dash"),
            sym("/etc/alternatives/vi", "/usr/bin/vim.basic"),
            sym("/usr/bin/vi", "/etc/alternatives/vi"),
            file("/usr/bin/vim.basic"),
            hard("/usr/bin/apt-get", "/usr/bin/apt"),
            file("/usr/bin/apt"),
        ];
        let fs = merge_layers([layer.as_slice()]);
        let got: Vec<String> = classify(&fs, &std_dirs())
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(
            got,
            vec![
                "/usr/bin/bash",
                "/usr/bin/dash",
                "/usr/bin/sh",
                "/usr/bin/apt",
                "/usr/bin/apt-get",
                "/usr/bin/vi",
                "/usr/bin/vim.basic",
            ]
        );
    }

    #[test]
    fn non_executable_dangling_looping_and_outside_bin_do_not_count() {
        let layer = vec![
            data("/bin/sh"),
            sym("/bin/bash", "/nowhere/bash"),
            sym("/bin/zsh", "/bin/zsh2"),
            sym("/bin/zsh2", "/bin/zsh"),
            file("/opt/tools/curl"),
            file("/usr/share/doc/vim"),
            dir("/usr/bin/nano"),
        ];
        let fs = merge_layers([layer.as_slice()]);
        assert!(paths(&fs).is_empty(), "{:?}", paths(&fs));
    }

    #[test]
    fn symlink_to_executable_outside_bin_counts() {
        let layer = vec![
            file("/opt/busybox/busybox"),
            sym("/usr/bin/sh", "/opt/busybox/busybox"),
        ];
        let fs = merge_layers([layer.as_slice()]);
        assert_eq!(
            paths(&fs),
            vec![(
                Category::Shell,
                "/usr/bin/sh".into(),
                Some("/opt/busybox/busybox".into())
            )]
        );
    }

    #[test]
    fn path_env_adds_directories() {
        let layer = vec![file("/busybox/busybox"), sym("/busybox/sh", "busybox")];
        let fs = merge_layers([layer.as_slice()]);
        assert!(classify(&fs, &std_dirs()).is_empty());
        let dirs = bin_dirs_from_env(&["PATH=/usr/bin:/busybox/".to_string(), "X=1".into()]);
        assert_eq!(classify(&fs, &dirs).len(), 2);
    }

    #[test]
    fn file_replacing_directory_hides_its_children() {
        let l1 = vec![dir("/usr/local/bin"), file("/usr/local/bin/nc")];
        let l2 = vec![data("/usr/local/bin")];
        let fs = merge_layers([l1.as_slice(), l2.as_slice()]);
        assert!(!fs.contains_key("/usr/local/bin/nc"));
    }

    #[test]
    fn rule_ids_and_severities() {
        assert_eq!(Category::Shell.rule_id(), "contains-shell");
        assert_eq!(Category::PackageManager.default_severity(), "high");
        assert_eq!(Category::NetworkTool.default_severity(), "medium");
        assert_eq!(Category::Editor.rule_id(), "contains-editor");
        assert_eq!(Category::Editor.default_severity(), "low");
    }
}
