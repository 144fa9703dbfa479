//! Sections for `include/tern.h`, so the header reads like a manual: each concept's
//! types, constants and functions together, under a one-paragraph section comment, in
//! the order a reader learns them. Used by build.rs on cbindgen's output.
//!
//! cbindgen writes items by kind (every constant, then every type, then every function);
//! it knows nothing of concepts. The concepts are the files of `src/ffi/` (one file per
//! concept), so the sections come from there:
//!
//! - The order is the order of the `mod` lines in `src/ffi/mod.rs`.
//! - A file's items belong to its section, whose title and paragraph are written in the
//!   file as a comment block: a line `// tern.h: TITLE`, then `// ` lines (the
//!   paragraph), up to the first line that is not a `//` comment. A file may hold
//!   several such blocks (src/ffi/http.rs: messages, server, client, static files);
//!   each item goes to the section of the last block above it, and a block naming a
//!   title already seen (without a paragraph) goes back to that section.
//! - A file without a block gets one section, titled by its file name, with the first
//!   paragraph of its `//!` module comment: a new file in src/ffi/ is never left out.
//! - An item cbindgen writes that no file declares (none today) goes into a last
//!   section, "Other", and build.rs warns.
//!
//! Within a section the items keep cbindgen's order. The whole body sits inside one
//! `extern "C"` block for C++. Each section only uses types of its own or earlier
//! sections (the mod order in src/ffi/mod.rs keeps it so); the C and C++ tests compile
//! the result.

use std::collections::HashMap;
use std::path::Path;

/// One section of the header: its title, its paragraph and the items it holds.
struct Section {
    title: String,
    text: Vec<String>,
    items: Vec<String>,
}

/// The section titles in reading order, and which section each exported name is in.
struct Plan {
    sections: Vec<Section>,
    by_name: HashMap<String, usize>,
}

/// Reads src/ffi/mod.rs and every module it names.
fn plan(ffi_dir: &Path) -> Plan {
    let mut plan = Plan { sections: Vec::new(), by_name: HashMap::new() };
    let modules = std::fs::read_to_string(ffi_dir.join("mod.rs")).expect("read src/ffi/mod.rs");
    for line in modules.lines() {
        let Some(name) = line.trim().strip_prefix("pub mod ").and_then(|r| r.strip_suffix(';')) else {
            continue;
        };
        let source = std::fs::read_to_string(ffi_dir.join(format!("{name}.rs"))).expect("read a module of src/ffi");
        read_module(&mut plan, name, &source);
    }
    plan
}

/// Adds one module's sections and item names to the plan.
fn read_module(plan: &mut Plan, module: &str, source: &str) {
    let mut current: Option<usize> = None;
    let mut in_block = false;
    for line in source.lines() {
        let t = line.trim_start();
        if let Some(title) = t.strip_prefix("// tern.h: ") {
            current = Some(section_index(plan, title.trim()));
            in_block = true;
            continue;
        }
        if in_block {
            if let Some(text) = t.strip_prefix("//").filter(|_| !t.starts_with("///")) {
                let idx = current.expect("a block has a section");
                plan.sections[idx].text.push(text.strip_prefix(' ').unwrap_or(text).to_string());
                continue;
            }
            in_block = false;
        }
        if let Some(name) = exported_name(t) {
            let idx = *current.get_or_insert_with(|| module_section(plan, module, source));
            plan.by_name.insert(name, idx);
        }
    }
}

/// The section called `title`, created (empty) if it is new.
fn section_index(plan: &mut Plan, title: &str) -> usize {
    if let Some(i) = plan.sections.iter().position(|s| s.title == title) {
        return i;
    }
    plan.sections.push(Section { title: title.to_string(), text: Vec::new(), items: Vec::new() });
    plan.sections.len() - 1
}

/// A section for a module that has no `// tern.h:` block: its `//!` first paragraph.
fn module_section(plan: &mut Plan, module: &str, source: &str) -> usize {
    let idx = section_index(plan, module);
    if plan.sections[idx].text.is_empty() {
        plan.sections[idx].text = source
            .lines()
            .map_while(|l| l.strip_prefix("//!"))
            .map(|l| l.trim().to_string())
            .take_while(|l| !l.is_empty())
            .collect();
    }
    idx
}

/// The C name a line of Rust exports, if it declares one (`pub extern "C" fn NAME`,
/// `pub const NAME`, `pub struct NAME`, `pub type NAME`).
fn exported_name(line: &str) -> Option<String> {
    let rest = ["pub extern \"C\" fn ", "pub unsafe extern \"C\" fn ", "pub const ", "pub struct ", "pub type "]
        .iter()
        .find_map(|p| line.strip_prefix(p))?;
    let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (name.starts_with("tern_") || name.starts_with("TERN_")).then_some(name)
}

/// The name a chunk of cbindgen's C output declares (a #define, a typedef, a function).
fn declared_name(chunk: &str) -> Option<String> {
    let decl: Vec<&str> = chunk.lines().filter(|l| !l.starts_with("/*") && !l.starts_with(" *")).collect();
    let first = decl.first()?;
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    if let Some(rest) = first.strip_prefix("#define ") {
        return Some(ident(rest));
    }
    let last = decl.last()?.trim_end_matches(';');
    if let Some(i) = last.find("(*") {
        return Some(ident(&last[i + 2..])); // typedef R (*NAME)(...)
    }
    if first.starts_with("typedef") {
        // typedef struct X X; / typedef uint64_t X; / typedef struct { ... } X;
        return last.rsplit([' ', '}']).next().map(ident);
    }
    let head = decl.join(" ");
    let open = head.find('(')?;
    head[..open].rsplit([' ', '*']).next().map(ident)
}

/// The list of sections, as a comment wrapped at 88 columns.
fn contents(sections: &[Section]) -> String {
    let titles: Vec<&str> = sections.iter().filter(|s| !s.items.is_empty()).map(|s| s.title.as_str()).collect();
    let mut out = String::from("/* Sections, in reading order:");
    let mut width = out.len();
    for (i, t) in titles.iter().enumerate() {
        let word = format!(" {t}{}", if i + 1 == titles.len() { ". */" } else { ";" });
        if width + word.len() > 88 {
            out.push_str("\n *");
            width = 2;
        }
        out.push_str(&word);
        width += word.len();
    }
    out.push_str("\n\n");
    out
}

/// Rewrites cbindgen's header into sections. `header` is its whole output.
pub fn sectioned(header: &str, ffi_dir: &Path) -> String {
    let mut plan = plan(ffi_dir);
    // cbindgen's layout: a prologue (guard, includes, the overview comment), then
    // items separated by blank lines, the functions inside `extern "C"`, then the end.
    let body_start = header.find("\n/**\n").expect("cbindgen wrote documented items") + 1;
    let prologue = &header[..body_start];
    let end = header.rfind("#endif  /* TERN_H */").expect("cbindgen wrote the include guard");
    let body = header[body_start..end].replace("#ifdef __cplusplus\nextern \"C\" {\n#endif // __cplusplus\n", "");
    let body = body.replace("#ifdef __cplusplus\n}  // extern \"C\"\n#endif  // __cplusplus\n", "");
    let mut other = Vec::new();
    for chunk in body.split("\n\n").map(str::trim).filter(|c| !c.is_empty()) {
        match declared_name(chunk).and_then(|n| plan.by_name.get(&n).copied()) {
            Some(i) => plan.sections[i].items.push(chunk.to_string()),
            None => other.push(chunk.to_string()),
        }
    }
    if !other.is_empty() {
        println!("cargo:warning=tern.h: {} item(s) declared outside src/ffi/ go to the section \"Other\"", other.len());
        plan.sections.push(Section {
            title: "Other".into(),
            text: vec!["Items not declared in a file of src/ffi/.".into()],
            items: other,
        });
    }

    let mut out = String::from(prologue);
    out.push_str(&contents(&plan.sections));
    out.push_str("#ifdef __cplusplus\nextern \"C\" {\n#endif\n");
    for s in plan.sections.iter().filter(|s| !s.items.is_empty()) {
        out.push_str("\n/* ");
        out.push_str(&"=".repeat(77));
        out.push_str("\n * ");
        out.push_str(&s.title);
        out.push_str("\n *");
        for line in &s.text {
            out.push_str(if line.is_empty() { "\n *" } else { "\n * " });
            out.push_str(line);
        }
        out.push_str("\n * ");
        out.push_str(&"=".repeat(77));
        out.push_str(" */\n");
        for item in &s.items {
            out.push('\n');
            out.push_str(item);
            out.push('\n');
        }
    }
    out.push_str("\n#ifdef __cplusplus\n}  /* extern \"C\" */\n#endif\n\n#endif  /* TERN_H */\n");
    out
}
