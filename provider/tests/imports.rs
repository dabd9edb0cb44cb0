//! The provider's import graph (DESIGN §2): which top-level modules of `provider/src` use which, read
//! from the source text (`crate::<module>` paths and `use crate::{a, b}` groups; `super::` stays inside
//! a module and does not count). Fails on an import circle between top-level modules that is not in
//! [`KNOWN_CIRCLES`], and on a dependency that points the wrong way (planning crates on the provider,
//! the request path on the control loop, the control loop on the HTTP layer: `api`, `proxy`,
//! actix-web's request and response types). Prints the graph when it
//! fails. Reads files only: no build of the provider, no sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The import circles still to break, each as `a -> b -> … -> a` starting at its smallest module.
///
/// **This list may only shrink.** A new circle fails the test; a listed circle that no longer exists
/// fails it too, so that the entry is removed and the circle cannot come back unnoticed.
const KNOWN_CIRCLES: &[&str] = &[];

/// The files of the request path (the proxy, the DAG runner in `proxy/runner.rs`, and the DAG registry
/// and live statistics it writes), relative to `src/` (a trailing `/`:
/// everything under it). They may not use `crate::control`.
const REQUEST_PATH: &[&str] = &["proxy.rs", "proxy/", "dag/"];

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The provider crate's root (this test's `CARGO_MANIFEST_DIR`).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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

/// The first segments after every `crate::` in `code` (comment-free): `crate::a::X` gives `a`, and
/// `crate::{a::X, b, c::{Y, Z}}` gives `a`, `b`, `c`. `self`/`super` inside a group are skipped.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let b = code.as_bytes();
    let mut out = BTreeSet::new();
    let mut from = 0;
    while let Some(p) = code[from..].find("crate") {
        let at = from + p;
        from = at + 5;
        if at > 0 && is_ident(b[at - 1]) {
            continue;
        }
        let mut j = skip_ws(b, at + 5);
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

/// A source file of the provider's library: its path relative to `src/`, its top-level module, and
/// its code with comments and literals blanked.
struct Source {
    rel: String,
    module: String,
    code: String,
}

fn sources() -> (BTreeSet<String>, Vec<Source>) {
    let src = root().join("src");
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
                rel,
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
        for used in crate_paths(&f.code) {
            if used != f.module && tops.contains(&used) {
                g.get_mut(&f.module).unwrap().insert(used);
            }
        }
    }
    g
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

/// The wrong-way dependencies of the provider's files (DESIGN §2–§3).
fn wrong_way(files: &[Source]) -> Vec<String> {
    let mut bad = Vec::new();
    for f in files {
        let used = crate_paths(&f.code);
        if REQUEST_PATH
            .iter()
            .any(|p| f.rel == *p || (p.ends_with('/') && f.rel.starts_with(p)))
            && used.contains("control")
        {
            bad.push(format!("{}: the request path uses crate::control", f.rel));
        }
        if f.module == "control" {
            for http in ["proxy", "api"] {
                if used.contains(http) {
                    bad.push(format!("{}: the control loop uses crate::{http}", f.rel));
                }
            }
            for ty in ["HttpRequest", "HttpResponse"] {
                if has_ident(&f.code, ty) {
                    bad.push(format!("{}: the control loop uses actix_web::{ty}", f.rel));
                }
            }
        }
    }
    bad
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
fn module_graph_has_no_new_circles_and_points_one_way() {
    let (tops, files) = sources();
    let g = graph(&tops, &files);
    let found = cycles(&g);
    let known: BTreeSet<&str> = KNOWN_CIRCLES.iter().copied().collect();
    let mut problems = Vec::new();
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
    problems.extend(wrong_way(&files));
    let workspace = root().join("..");
    for krate in ["optimizer", "predictor"] {
        let manifest = std::fs::read_to_string(workspace.join(krate).join("Cargo.toml")).unwrap();
        if depends_on(&manifest, "provider") {
            problems.push(format!("{krate}/Cargo.toml depends on provider"));
        }
    }
    println!(
        "module graph (module -> the crate:: modules it uses):\n{}",
        render(&g)
    );
    println!("circles: {found:#?}");
    assert!(
        problems.is_empty(),
        "{}\n\nmodule graph (module -> the crate:: modules it uses):\n{}\ncircles found: {found:#?}",
        problems.join("\n"),
        render(&g)
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
    let got: Vec<String> = crate_paths(&code_only(src)).into_iter().collect();
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
