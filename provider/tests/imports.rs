//! The workspace's dependency graph (DESIGN §2, docs/architecture.md), read from the source text and
//! the manifests: no build, no sockets.
//!
//! - **Crates point one way**: each workspace crate may depend only on the workspace crates listed for
//!   it in [`CRATES`] (a layer below it), and every workspace member must be listed, so a new crate
//!   states its place.
//! - **No import circles inside a crate**: between the top-level modules of each crate's library
//!   (`crate::<module>` paths and `use crate::{a, b}` groups; `super::` stays inside a module).
//! - **The control loop stays off the HTTP layer**: `control` uses neither `contract::api` nor
//!   `contract::proxy`, nor actix-web (the request path reports to it through `contract::events`; it
//!   cannot import the control loop at all, since `contract` sits below `control`).
//!
//! Prints the graphs when it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Every workspace crate (its directory) and the workspace crates it may depend on, lowest layer first.
const CRATES: &[(&str, &[&str])] = &[
    ("optimizer", &[]),
    ("predictor", &[]),
    ("function-kit", &["optimizer"]),
    ("contract", &["optimizer", "function-kit"]),
    (
        "control",
        &["optimizer", "predictor", "contract", "function-kit"],
    ),
    ("backend-local", &["contract", "function-kit"]),
    ("backend-kube", &["optimizer", "contract", "function-kit"]),
    ("profiler", &["optimizer", "contract", "function-kit"]),
    (
        "provider",
        &[
            "optimizer",
            "predictor",
            "function-kit",
            "contract",
            "control",
            "backend-local",
            "backend-kube",
            "profiler",
        ],
    ),
];

/// The import circles still to break, each as `crate: a -> b -> … -> a` starting at its smallest module.
///
/// **This list may only shrink.** A new circle fails the test; a listed circle that no longer exists
/// fails it too, so that the entry is removed and the circle cannot come back unnoticed.
const KNOWN_CIRCLES: &[&str] = &[];

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The workspace root (this test's crate is `provider/`).
fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir`, recursively, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The source with comments, string and char literals blanked out (newlines kept), so that a path in
/// a doc comment or a message does not count as an import.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |out: &mut String, s: &[u8]| {
        for &c in s {
            out.push(if c == b'\n' { '\n' } else { ' ' });
        }
    };
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest.starts_with(b"/*") {
            let mut depth = 0usize;
            let mut j = 0;
            while j < rest.len() {
                if rest[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &rest[..j]);
            i += j;
        } else if let Some(hashes) = raw_string_start(b, i) {
            // r"…", r#"…"#, br"…": ends at `"` followed by the same number of `#`.
            let open = rest.iter().position(|&c| c == b'"').unwrap() + 1;
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let end = rest[open..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(rest.len(), |p| open + p + close.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest[0] == b'\'' {
            // A char literal ('x', '\n', '\u{..}') — not a lifetime ('a without a closing quote).
            let end = if rest.get(1) == Some(&b'\\') {
                rest.iter().skip(2).position(|&c| c == b'\'').map(|p| p + 3)
            } else {
                let len = std::str::from_utf8(&rest[1..])
                    .ok()
                    .and_then(|s| s.chars().next())
                    .map_or(1, char::len_utf8);
                (rest.get(1 + len) == Some(&b'\'')).then_some(len + 2)
            };
            let end = end.unwrap_or(1);
            if end == 1 {
                out.push('\'');
            } else {
                blank(&mut out, &rest[..end]);
            }
            i += end;
        } else {
            let len = src[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&src[i..i + len]);
            i += len;
        }
    }
    out
}

/// The number of `#` of a raw string literal starting at `i` (`r"`, `r#"`, `br"`), if one does.
fn raw_string_start(b: &[u8], i: usize) -> Option<usize> {
    if i > 0 && is_ident(b[i - 1]) {
        return None;
    }
    let mut j = i;
    if b.get(j) == Some(&b'b') {
        j += 1;
    }
    if b.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = b[j..].iter().take_while(|&&c| c == b'#').count();
    (b.get(j + hashes) == Some(&b'"')).then_some(hashes)
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The first segments after every `<prefix>::` in `code` (comment-free), e.g. with `crate`: `crate::a::X` gives `a`, and
/// `crate::{a::X, b, c::{Y, Z}}` gives `a`, `b`, `c`. `self`/`super` inside a group are skipped.
fn crate_paths(code: &str, prefix: &str) -> BTreeSet<String> {
    let b = code.as_bytes();
    let mut out = BTreeSet::new();
    let mut from = 0;
    while let Some(p) = code[from..].find(prefix) {
        let at = from + p;
        from = at + prefix.len();
        if at > 0 && is_ident(b[at - 1]) {
            continue;
        }
        let mut j = skip_ws(b, at + prefix.len());
        if !b[j..].starts_with(b"::") {
            continue;
        }
        j = skip_ws(b, j + 2);
        if b.get(j) == Some(&b'{') {
            // A group: the first identifier of each item at depth 1.
            let mut depth = 1;
            let mut item_start = true;
            j += 1;
            while j < b.len() && depth > 0 {
                match b[j] {
                    b'{' => depth += 1,
                    b'}' => depth -= 1,
                    b',' if depth == 1 => item_start = true,
                    c if c.is_ascii_whitespace() => {}
                    c if is_ident(c) && depth == 1 && item_start => {
                        let end = j + b[j..].iter().take_while(|&&c| is_ident(c)).count();
                        out.insert(code[j..end].to_owned());
                        item_start = false;
                        j = end;
                        continue;
                    }
                    _ => item_start = false,
                }
                j += 1;
            }
        } else {
            let end = j + b[j..].iter().take_while(|&&c| is_ident(c)).count();
            if end > j {
                out.insert(code[j..end].to_owned());
            }
        }
    }
    out.retain(|m| m != "self" && m != "super");
    out
}

fn skip_ws(b: &[u8], mut j: usize) -> usize {
    while j < b.len() && b[j].is_ascii_whitespace() {
        j += 1;
    }
    j
}

/// The top-level modules declared in `lib.rs` (`mod x;` / `pub mod x;`).
fn top_modules(lib: &str) -> BTreeSet<String> {
    code_only(lib)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(|m| m.trim().to_owned())
        })
        .collect()
}

/// A source file of a crate's library: its top-level module and its code with comments and literals
/// blanked.
struct Source {
    module: String,
    code: String,
}

/// The library sources of the crate in directory `dir`, and its top-level modules.
fn sources(dir: &str) -> (BTreeSet<String>, Vec<Source>) {
    let src = workspace().join(dir).join("src");
    let tops = top_modules(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let files = rust_files(&src)
        .into_iter()
        .filter_map(|path| {
            let rel = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let first = rel.split('/').next().unwrap();
            let module = first.strip_suffix(".rs").unwrap_or(first).to_owned();
            // lib.rs, main.rs and bin/ are not modules of the library.
            tops.contains(&module).then(|| Source {
                code: code_only(&std::fs::read_to_string(&path).unwrap()),
                module,
            })
        })
        .collect();
    (tops, files)
}

/// The module graph: each top-level module → the other top-level modules its files use.
fn graph(tops: &BTreeSet<String>, files: &[Source]) -> Graph {
    let mut g: Graph = tops.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for f in files {
        for used in crate_paths(&f.code, "crate") {
            if used != f.module && tops.contains(&used) {
                g.get_mut(&f.module).unwrap().insert(used);
            }
        }
    }
    g
}

/// The workspace members named in the root manifest's `members = [...]`.
fn members() -> BTreeSet<String> {
    let root = std::fs::read_to_string(workspace().join("Cargo.toml")).unwrap();
    let list = root.split("members").nth(1).unwrap();
    let list = &list[list.find('[').unwrap() + 1..list.find(']').unwrap()];
    list.split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

/// The dependencies between crates that are not allowed by [`CRATES`], and members missing from it.
fn crate_problems() -> Vec<String> {
    let mut bad = Vec::new();
    let listed: BTreeSet<String> = CRATES.iter().map(|(c, _)| (*c).to_owned()).collect();
    for m in members() {
        if !listed.contains(&m) {
            bad.push(format!(
                "workspace member {m} is not in CRATES: give it a layer"
            ));
        }
    }
    for (krate, allowed) in CRATES {
        let manifest = std::fs::read_to_string(workspace().join(krate).join("Cargo.toml")).unwrap();
        for (other, _) in CRATES {
            if other != krate && !allowed.contains(other) && depends_on(&manifest, other) {
                bad.push(format!(
                    "{krate}/Cargo.toml depends on {other}: points the wrong way"
                ));
            }
        }
    }
    bad
}

/// The control loop's uses of the HTTP layer.
fn control_uses_http() -> Vec<String> {
    let mut bad = Vec::new();
    let manifest = std::fs::read_to_string(workspace().join("control/Cargo.toml")).unwrap();
    if depends_on(&manifest, "actix-web") {
        bad.push("control/Cargo.toml depends on actix-web".to_owned());
    }
    let src = workspace().join("control/src");
    for path in rust_files(&src) {
        let code = code_only(&std::fs::read_to_string(&path).unwrap());
        let used = crate_paths(&code, "contract");
        for http in ["api", "proxy"] {
            if used.contains(http) {
                bad.push(format!(
                    "{}: the control loop uses contract::{http}",
                    path.display()
                ));
            }
        }
        for ty in ["HttpRequest", "HttpResponse"] {
            if has_ident(&code, ty) {
                bad.push(format!(
                    "{}: the control loop uses actix_web::{ty}",
                    path.display()
                ));
            }
        }
    }
    bad
}

/// Every elementary cycle of `g`, each as `a -> b -> … -> a` starting at its smallest node (so each
/// cycle is listed once), sorted.
fn cycles(g: &Graph) -> Vec<String> {
    fn walk(
        g: &Graph,
        start: &str,
        node: &str,
        path: &mut Vec<String>,
        out: &mut BTreeSet<String>,
    ) {
        for next in g.get(node).into_iter().flatten() {
            if next == start {
                let mut c = path.join(" -> ");
                write!(c, " -> {start}").unwrap();
                out.insert(c);
            } else if next.as_str() > start && !path.contains(next) {
                path.push(next.clone());
                walk(g, start, next, path, out);
                path.pop();
            }
        }
    }
    let mut out = BTreeSet::new();
    for start in g.keys() {
        walk(g, start, start, &mut vec![start.clone()], &mut out);
    }
    out.into_iter().collect()
}

fn render(g: &Graph) -> String {
    let mut s = String::new();
    for (m, deps) in g {
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        writeln!(s, "  {m} -> {}", deps.join(" ")).unwrap();
    }
    s
}

fn has_ident(code: &str, ident: &str) -> bool {
    let b = code.as_bytes();
    code.match_indices(ident).any(|(at, _)| {
        (at == 0 || !is_ident(b[at - 1])) && b.get(at + ident.len()).is_none_or(|&c| !is_ident(c))
    })
}

/// Whether a Cargo.toml names `dep` in any dependency table.
fn depends_on(manifest: &str, dep: &str) -> bool {
    let mut in_deps = false;
    for line in manifest.lines() {
        let line = line.split('#').next().unwrap().trim();
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_matches(|c| c == '[' || c == ']').trim();
            if header.split('.').any(|part| part.trim() == dep) && header.contains("dependencies") {
                return true;
            }
            in_deps = header.ends_with("dependencies");
        } else if in_deps {
            let key = line
                .split(['=', '.'])
                .next()
                .unwrap()
                .trim()
                .trim_matches('"');
            if key == dep {
                return true;
            }
        }
    }
    false
}

#[test]
fn crates_point_one_way_and_modules_have_no_circles() {
    let mut problems = crate_problems();
    problems.extend(control_uses_http());
    let mut found = Vec::new();
    let mut rendered = String::new();
    for (krate, _) in CRATES {
        let (tops, files) = sources(krate);
        let g = graph(&tops, &files);
        found.extend(cycles(&g).into_iter().map(|c| format!("{krate}: {c}")));
        writeln!(rendered, "{krate}:\n{}", render(&g)).unwrap();
    }
    let known: BTreeSet<&str> = KNOWN_CIRCLES.iter().copied().collect();
    for c in &found {
        if !known.contains(c.as_str()) {
            problems.push(format!("new import circle: {c}"));
        }
    }
    for c in &known {
        if !found.iter().any(|f| f == c) {
            problems.push(format!(
                "circle {c} is gone: remove it from KNOWN_CIRCLES (the list may only shrink)"
            ));
        }
    }
    println!("module graphs (module -> the crate:: modules it uses):\n{rendered}");
    println!("circles: {found:#?}");
    assert!(
        problems.is_empty(),
        "{}\n\nmodule graphs (module -> the crate:: modules it uses):\n{rendered}\ncircles found: {found:#?}",
        problems.join("\n"),
    );
}

fn hand_made(edges: &[(&str, &str)]) -> Graph {
    let mut g = Graph::new();
    for (a, b) in edges {
        g.entry((*a).into()).or_default().insert((*b).into());
        g.entry((*b).into()).or_default();
    }
    g
}

#[test]
fn the_cycle_finder_finds_cycles_and_only_cycles() {
    let g = hand_made(&[
        ("a", "b"),
        ("b", "c"),
        ("c", "a"),
        ("c", "d"),
        ("d", "c"),
        ("e", "a"),
    ]);
    assert_eq!(cycles(&g), ["a -> b -> c -> a", "c -> d -> c"]);
    let dag = hand_made(&[("a", "b"), ("b", "c"), ("a", "c"), ("e", "a")]);
    assert!(cycles(&dag).is_empty());
    // A cycle is found whichever node it is entered from, and listed from its smallest node.
    let g = hand_made(&[("z", "y"), ("y", "x"), ("x", "z")]);
    assert_eq!(cycles(&g), ["x -> z -> y -> x"]);
}

#[test]
fn the_scanner_reads_paths_groups_and_skips_comments_strings_and_super() {
    let src = r##"
        //! Links to [`crate::doc_only`] do not count.
        use crate::a::X;
        use crate::{
            b::{Y, Z},
            c, self,
        };
        use super::d;
        fn f() -> crate :: e::T { crate::f::g(); let s = "crate::g"; let r = r#"crate::h"#; 'x' }
        /* crate::i */
        fn l<'a>(x: &'a str) -> &'a str { let _: pub_crate::j = 1; crate::k::m(x) }
    "##;
    let got: Vec<String> = crate_paths(&code_only(src), "crate").into_iter().collect();
    assert_eq!(got, ["a", "b", "c", "e", "f", "k"]);
    assert!(depends_on(
        "[dependencies]\nprovider.workspace = true\n",
        "provider"
    ));
    assert!(depends_on(
        "[dev-dependencies]\nprovider = { path = \"../p\" }\n",
        "provider"
    ));
    assert!(depends_on(
        "[dependencies.provider]\npath = \"../p\"\n",
        "provider"
    ));
    assert!(!depends_on(
        "[package]\nname = \"provider\"\n[dependencies]\nx = 1\n",
        "provider"
    ));
}
