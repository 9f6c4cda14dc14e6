//! Text-preserving editing of `imagePullSecrets` in YAML and JSON manifests (`patch -f`).
//!
//! The manifests are parsed (serde-saphyr / serde_json) to decide what changes
//! (`domain::patch_plan`), then the change is made in the text itself: the pod spec is located
//! by indentation (YAML) or by a small span-keeping scanner (JSON), and only the added or
//! removed entries are written, so comments, key order, quoting, indentation and the other
//! documents stay byte-for-byte as they were. Every edit is verified by re-parsing the
//! document and comparing it with the intended object; a mismatch is an error, never output.
use serde_json::Value;

use crate::domain::patch_plan::{self, Plan};
use crate::manifests::{parse_document, split_documents};

/// The edited text and how many objects changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    pub text: String,
    pub changed: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(&'static str),
    Index(usize),
}

/// Patches every ServiceAccount and pod-bearing object in one source (a file's text).
pub fn patch_source(text: &str, secrets: &[String], remove: bool) -> Result<Edited, String> {
    let docs: Vec<(usize, usize, usize)> = split_documents(text)
        .iter()
        .map(|d| (d.offset, d.offset + d.text.len(), d.line))
        .collect();
    let mut out = text.to_string();
    let mut changed = 0;
    // Back to front, so earlier offsets stay valid.
    for (start, end, line) in docs.into_iter().rev() {
        let doc = &text[start..end];
        let (new_doc, n) = patch_document(doc, secrets, remove)
            .map_err(|e| format!("document at line {line}: {e}"))?;
        if n > 0 {
            out.replace_range(start..end, &new_doc);
            changed += n;
        }
    }
    Ok(Edited { text: out, changed })
}

fn is_json(doc: &str) -> bool {
    let t = doc.trim_start();
    (t.starts_with('{') || t.starts_with('[')) && serde_json::from_str::<Value>(doc).is_ok()
}

/// Patches one document; returns the new text and the number of objects changed.
pub fn patch_document(
    doc: &str,
    secrets: &[String],
    remove: bool,
) -> Result<(String, usize), String> {
    let value = parse_document(doc).map_err(|e| format!("invalid YAML/JSON: {e}"))?;
    let json = is_json(doc);
    let mut targets: Vec<(Vec<Seg>, Value)> = Vec::new();
    match &value {
        Value::Object(m)
            if m.get("items").is_some_and(Value::is_array)
                && m.get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.ends_with("List")) =>
        {
            for (i, item) in m["items"].as_array().unwrap().iter().enumerate() {
                targets.push((vec![Seg::Key("items"), Seg::Index(i)], item.clone()));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                targets.push((vec![Seg::Index(i)], item.clone()));
            }
        }
        Value::Object(_) => targets.push((vec![], value.clone())),
        _ => {}
    }
    let mut text = doc.to_string();
    let mut expected = value.clone();
    let mut changed = 0;
    for (prefix, obj) in targets.into_iter().rev() {
        let Some(kind) = obj.get("kind").and_then(Value::as_str) else {
            continue;
        };
        let Some(spec_path) = patch_plan::pod_spec_path(kind) else {
            continue;
        };
        let plan = match patch_plan::plan(&obj, kind, secrets, remove) {
            Ok(p) => p,
            Err(e) => {
                let name = obj
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                crate::output::warn(&format!("skipping {kind} {name:?}: {e}"));
                continue;
            }
        };
        if !plan.changed() {
            continue;
        }
        let mut path = prefix.clone();
        path.extend(spec_path.iter().map(|s| Seg::Key(s)));
        text = if json {
            json_edit(&text, &path, &plan)?
        } else {
            yaml_edit(&text, &path, &plan)?
        };
        set_at(&mut expected, &prefix, plan.apply(&obj));
        changed += 1;
    }
    if changed > 0 {
        let got = parse_document(&text).map_err(|e| {
            format!(
                "internal error: the edited document no longer parses ({e}); nothing was printed"
            )
        })?;
        if got != expected {
            return Err(
                "internal error: the edited document does not hold exactly the intended imagePullSecrets; nothing was printed (please report this with the manifest)"
                    .into(),
            );
        }
    }
    Ok((text, changed))
}

fn set_at(root: &mut Value, prefix: &[Seg], v: Value) {
    let mut cur = root;
    for s in prefix {
        cur = match s {
            Seg::Key(k) => &mut cur[*k],
            Seg::Index(i) => &mut cur[*i],
        };
    }
    *cur = v;
}

/// A name as a YAML plain scalar if that reads back as the same string, else double-quoted.
fn yaml_scalar(name: &str, quote: Option<char>) -> String {
    if let Some(q) = quote {
        return format!("{q}{name}{q}");
    }
    let plain_ok = serde_saphyr::from_str::<Value>(&format!("k: {name}\n"))
        .ok()
        .is_some_and(|v| v.get("k").and_then(Value::as_str) == Some(name));
    if plain_ok {
        name.to_string()
    } else {
        format!("\"{name}\"")
    }
}

// ---------------------------------------------------------------- YAML

#[derive(Debug, Clone)]
struct Line {
    start: usize,
    /// End of the text without the line break.
    end: usize,
    indent: usize,
    /// Not blank and not a comment.
    content: bool,
}

fn lines_of(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut pos = 0;
    for l in text.split_inclusive('\n') {
        let body = l.trim_end_matches('\n').trim_end_matches('\r');
        let indent = body.len() - body.trim_start_matches(' ').len();
        let t = body.trim();
        out.push(Line {
            start: pos,
            end: pos + body.len(),
            indent,
            content: !t.is_empty() && !t.starts_with('#'),
        });
        pos += l.len();
    }
    out
}

/// A block mapping: keys at column `col`; on `start` the first key begins at `col` (it may
/// follow a `- `).
#[derive(Debug, Clone, Copy)]
struct Region {
    start: usize,
    col: usize,
    end: usize,
}

#[derive(Debug, Clone, Copy)]
struct SeqRegion {
    dash: usize,
    start: usize,
    end: usize,
}

#[derive(Debug, Clone, Copy)]
enum Node {
    Map(Region),
    Seq(SeqRegion),
    /// A value on the key's line, starting at this byte offset of the text.
    Inline {
        at: usize,
    },
    /// No value (null).
    Empty,
}

struct Yaml<'a> {
    text: &'a str,
    lines: Vec<Line>,
}

fn is_dash(s: &str) -> bool {
    s == "-" || s.starts_with("- ")
}

/// Strips a trailing ` # comment` outside quotes; returns the value part (trimmed).
fn strip_comment(s: &str) -> &str {
    let mut in_s = false;
    let mut in_d = false;
    let b = s.as_bytes();
    for i in 0..b.len() {
        match b[i] {
            b'\'' if !in_d => in_s = !in_s,
            b'"' if !in_s => in_d = !in_d,
            b'#' if !in_s && !in_d && (i == 0 || b[i - 1] == b' ' || b[i - 1] == b'\t') => {
                return s[..i].trim_end();
            }
            _ => {}
        }
    }
    s.trim_end()
}

/// Parses `key: rest` at the start of `s`: the key (unquoted) and the offset of `rest`.
fn split_key(s: &str) -> Option<(String, usize)> {
    let (key, after) = if let Some(q @ ('"' | '\'')) = s.chars().next() {
        let close = s[1..].find(q)? + 1;
        (s[1..close].to_string(), close + 1)
    } else {
        let mut idx = None;
        let b = s.as_bytes();
        for i in 0..b.len() {
            if b[i] == b':' && (i + 1 == b.len() || b[i + 1] == b' ' || b[i + 1] == b'\t') {
                idx = Some(i);
                break;
            }
        }
        let i = idx?;
        (s[..i].trim_end().to_string(), i)
    };
    s[after..].strip_prefix(':')?;
    Some((key, after + 1))
}

impl<'a> Yaml<'a> {
    fn new(text: &'a str) -> Self {
        Yaml {
            text,
            lines: lines_of(text),
        }
    }
    fn body(&self, i: usize) -> &'a str {
        &self.text[self.lines[i].start..self.lines[i].end]
    }
    fn next_content(&self, from: usize, end: usize) -> Option<usize> {
        (from..end).find(|&i| self.lines[i].content)
    }
    fn last_content(&self, start: usize, end: usize) -> Option<usize> {
        (start..end).rev().find(|&i| self.lines[i].content)
    }
    fn root(&self) -> Result<Node, String> {
        let first = self
            .next_content(0, self.lines.len())
            .ok_or("empty document")?;
        let body = self.body(first);
        if is_dash(body.trim_start()) {
            return Ok(Node::Seq(SeqRegion {
                dash: self.lines[first].indent,
                start: first,
                end: self.lines.len(),
            }));
        }
        Ok(Node::Map(Region {
            start: first,
            col: self.lines[first].indent,
            end: self.lines.len(),
        }))
    }

    /// The end (exclusive) of a block whose lines are indented at least `col`, from `from`.
    fn block_end(
        &self,
        from: usize,
        end: usize,
        col: usize,
        allow_dash_at: Option<usize>,
    ) -> usize {
        let mut i = from;
        while i < end {
            let l = &self.lines[i];
            if l.content && l.indent < col {
                break;
            }
            if l.content && Some(l.indent) == allow_dash_at && !is_dash(self.body(i).trim_start()) {
                break;
            }
            i += 1;
        }
        i
    }

    /// Finds `key` in a mapping; returns the key's line and its value.
    fn find_key(&self, r: Region, key: &str) -> Result<Option<(usize, Node)>, String> {
        let mut i = r.start;
        while i < r.end {
            let l = &self.lines[i];
            let at_key = l.content
                && (i == r.start || (l.indent == r.col && !is_dash(self.body(i).trim_start())));
            if at_key {
                let s = &self.body(i)[r.col..];
                if let Some((k, rest_off)) = split_key(s) {
                    if k == key {
                        return self.value_of(r, i, r.col + rest_off).map(|n| Some((i, n)));
                    }
                }
            }
            i += 1;
        }
        Ok(None)
    }

    fn value_of(&self, r: Region, line: usize, rest_col: usize) -> Result<Node, String> {
        let rest = strip_comment(&self.body(line)[rest_col..]).trim();
        let only_props = rest
            .split_whitespace()
            .all(|t| t.starts_with('&') || t.starts_with('!'));
        if rest.starts_with('*') {
            return Err("the manifest uses a YAML alias (*name) here; edit it by hand".into());
        }
        if !rest.is_empty() && !only_props {
            let lead =
                self.body(line)[rest_col..].len() - self.body(line)[rest_col..].trim_start().len();
            return Ok(Node::Inline {
                at: self.lines[line].start + rest_col + lead,
            });
        }
        let Some(child) = self.next_content(line + 1, r.end) else {
            return Ok(Node::Empty);
        };
        let cl = &self.lines[child];
        let child_body = self.body(child).trim_start();
        if is_dash(child_body) && cl.indent >= r.col {
            let end = self.block_end(child, r.end, cl.indent, Some(cl.indent));
            return Ok(Node::Seq(SeqRegion {
                dash: cl.indent,
                start: child,
                end,
            }));
        }
        if cl.indent > r.col {
            let end = self.block_end(child, r.end, cl.indent, None);
            return Ok(Node::Map(Region {
                start: child,
                col: cl.indent,
                end,
            }));
        }
        Ok(Node::Empty)
    }

    /// The items of a block sequence: (dash line, end exclusive, content column or None when
    /// the item's content starts on a later line).
    fn items(&self, s: SeqRegion) -> Vec<(usize, usize)> {
        let starts: Vec<usize> = (s.start..s.end)
            .filter(|&i| {
                self.lines[i].content
                    && self.lines[i].indent == s.dash
                    && is_dash(self.body(i).trim_start())
            })
            .collect();
        starts
            .iter()
            .enumerate()
            .map(|(k, &st)| (st, starts.get(k + 1).copied().unwrap_or(s.end)))
            .collect()
    }

    fn item_node(&self, item: (usize, usize)) -> Result<Node, String> {
        let (st, end) = item;
        let body = self.body(st);
        let after_dash = &body[self.lines[st].indent + 1..];
        let t = after_dash.trim_start();
        if t.is_empty() || t.starts_with('#') {
            let child = self.next_content(st + 1, end).ok_or("empty list item")?;
            return Ok(Node::Map(Region {
                start: child,
                col: self.lines[child].indent,
                end,
            }));
        }
        let col = self.lines[st].indent + 1 + (after_dash.len() - t.len());
        if t.starts_with('{') || t.starts_with('[') {
            return Ok(Node::Inline {
                at: self.lines[st].start + col,
            });
        }
        if is_dash(t) {
            return Err("nested sequences are not supported here".into());
        }
        Ok(Node::Map(Region {
            start: st,
            col,
            end,
        }))
    }

    fn navigate(&self, path: &[Seg]) -> Result<Node, String> {
        let mut node = self.root()?;
        for (n, seg) in path.iter().enumerate() {
            let where_ = || {
                path[..=n]
                    .iter()
                    .map(|s| match s {
                        Seg::Key(k) => k.to_string(),
                        Seg::Index(i) => i.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(".")
            };
            node = match (seg, node) {
                (Seg::Key(k), Node::Map(r)) => match self.find_key(r, k)? {
                    Some((_, v)) => v,
                    None => return Err(format!("cannot find {} in the text", where_())),
                },
                (Seg::Index(i), Node::Seq(s)) => {
                    let items = self.items(s);
                    let item = *items.get(*i).ok_or_else(|| format!("cannot find {} in the text", where_()))?;
                    self.item_node(item)?
                }
                (_, Node::Inline { .. }) => {
                    return Err(format!(
                        "{} is written in flow style ({{...}}) in this manifest; only block style can be edited in place",
                        where_()
                    ))
                }
                _ => return Err(format!("unexpected structure at {}", where_())),
            };
        }
        Ok(node)
    }

    fn newline(&self) -> &'static str {
        if self.text.contains("\r\n") {
            "\r\n"
        } else {
            "\n"
        }
    }

    /// How far this document indents a sequence under its key (`containers:\n  - name`), 2 by default.
    fn seq_offset(&self) -> usize {
        for i in 0..self.lines.len() {
            let b = self.body(i).trim_end();
            if self.lines[i].content && b.ends_with(':') && !is_dash(b.trim_start()) {
                if let Some(n) = self.next_content(i + 1, self.lines.len()) {
                    if is_dash(self.body(n).trim_start())
                        && self.lines[n].indent >= self.lines[i].indent
                    {
                        return self.lines[n].indent - self.lines[i].indent;
                    }
                }
            }
        }
        2
    }

    /// Inserts `new_lines` (without line breaks) after line `after`.
    fn insert_after(&self, after: usize, new_lines: &[String]) -> String {
        let nl = self.newline();
        let l = &self.lines[after];
        let line_end_with_break = if l.end < self.text.len() {
            // position after the line break
            let rest = &self.text[l.end..];
            l.end + if rest.starts_with("\r\n") { 2 } else { 1 }
        } else {
            l.end
        };
        let mut out = String::with_capacity(self.text.len() + 64);
        if line_end_with_break == l.end {
            // Last line without a break.
            out.push_str(&self.text[..l.end]);
            for nlines in new_lines {
                out.push_str(nl);
                out.push_str(nlines);
            }
            out.push_str(&self.text[l.end..]);
        } else {
            out.push_str(&self.text[..line_end_with_break]);
            for nlines in new_lines {
                out.push_str(nlines);
                out.push_str(nl);
            }
            out.push_str(&self.text[line_end_with_break..]);
        }
        out
    }

    /// Removes whole lines `[from, to)`.
    fn remove_lines(&self, from: usize, to: usize) -> String {
        let start = self.lines[from].start;
        let end = if to < self.lines.len() {
            self.lines[to].start
        } else {
            self.text.len()
        };
        let mut out = String::new();
        out.push_str(&self.text[..start]);
        out.push_str(&self.text[end..]);
        if to >= self.lines.len()
            && from > 0
            && !self.text[..start].is_empty()
            && !self.text.ends_with('\n')
        {
            // The removed block was the unterminated last line: drop the break before it too.
            let trimmed = out.trim_end_matches(['\n', '\r']).len();
            out.truncate(trimmed);
        }
        out
    }
}

fn entry_line(name: &str, style: &EntryStyle) -> String {
    let v = yaml_scalar(name, style.quote);
    if style.flow {
        format!("{{name: {v}}}")
    } else {
        format!("name: {v}")
    }
}

#[derive(Debug, Default)]
struct EntryStyle {
    flow: bool,
    quote: Option<char>,
}

fn style_of(item_text: &str) -> EntryStyle {
    let t = item_text.trim_start();
    let flow = t.starts_with('{');
    let quote = t
        .split_once("name:")
        .map(|(_, v)| v.trim_start())
        .and_then(|v| v.chars().next())
        .filter(|c| *c == '"' || *c == '\'');
    EntryStyle { flow, quote }
}

/// For each entry before the change, whether it survives in `plan.after` (in order).
fn kept_entries(plan: &Plan) -> Vec<bool> {
    let mut remaining = plan.after.iter().peekable();
    plan.before
        .iter()
        .map(|e| {
            let kept = remaining.peek() == Some(&e);
            if kept {
                remaining.next();
            }
            kept
        })
        .collect()
}

fn yaml_edit(text: &str, path: &[Seg], plan: &Plan) -> Result<String, String> {
    let y = Yaml::new(text);
    let spec = y.navigate(path)?;
    let Node::Map(r) = spec else {
        return Err("the pod spec is not a block mapping in this manifest; only block style can be edited in place".into());
    };
    let names = |entries: &[Value]| -> Result<Vec<String>, String> {
        entries
            .iter()
            .map(|e| {
                patch_plan::entry_name(e)
                    .map(String::from)
                    .ok_or_else(|| "an imagePullSecrets entry has no name".to_string())
            })
            .collect()
    };
    let added: Vec<Value> = plan
        .after
        .iter()
        .filter(|e| !plan.before.contains(e))
        .cloned()
        .collect();
    let kept = kept_entries(plan);
    let pad = |n: usize| " ".repeat(n);
    match y.find_key(r, "imagePullSecrets")? {
        None | Some((_, Node::Empty)) if added.is_empty() => Ok(text.to_string()),
        None => {
            let last = y.last_content(r.start, r.end).ok_or("empty pod spec")?;
            let off = y.seq_offset();
            let mut new_lines = vec![format!("{}imagePullSecrets:", pad(r.col))];
            for n in names(&added)? {
                new_lines.push(format!(
                    "{}- {}",
                    pad(r.col + off),
                    entry_line(&n, &EntryStyle::default())
                ));
            }
            Ok(y.insert_after(last, &new_lines))
        }
        Some((key_line, Node::Empty)) => {
            let off = y.seq_offset();
            let new_lines: Vec<String> = names(&added)?
                .iter()
                .map(|n| {
                    format!(
                        "{}- {}",
                        pad(r.col + off),
                        entry_line(n, &EntryStyle::default())
                    )
                })
                .collect();
            Ok(y.insert_after(key_line, &new_lines))
        }
        Some((key_line, Node::Seq(s))) => {
            let items = y.items(s);
            if items.len() != plan.before.len() {
                return Err("could not match the imagePullSecrets entries in the text".into());
            }
            if !added.is_empty() {
                let first = &y.body(items[0].0)[s.dash + 1..];
                let style = style_of(first);
                let last = y.last_content(s.start, s.end).ok_or("empty list")?;
                let new_lines: Vec<String> = names(&added)?
                    .iter()
                    .map(|n| format!("{}- {}", pad(s.dash), entry_line(n, &style)))
                    .collect();
                return Ok(y.insert_after(last, &new_lines));
            }
            if plan.after.is_empty() {
                let last = y.last_content(s.start, s.end).ok_or("empty list")?;
                return Ok(y.remove_lines(key_line, last + 1));
            }
            // Remove dropped items, back to front.
            let mut out = text.to_string();
            for (idx, (st, end)) in items.iter().enumerate().rev() {
                if kept[idx] {
                    continue;
                }
                let end = if idx + 1 == items.len() {
                    y.last_content(*st, *end).map(|l| l + 1).unwrap_or(*end)
                } else {
                    *end
                };
                let yy = Yaml::new(&out);
                out = yy.remove_lines(*st, end);
            }
            Ok(out)
        }
        Some((key_line, Node::Inline { at, .. })) => {
            let line_end = y.lines[key_line].end;
            let raw = &text[at..line_end];
            let value = strip_comment(raw);
            let value_end = at + value.len();
            if value == "null" || value == "~" {
                if added.is_empty() {
                    return Ok(text.to_string());
                }
                let items: Vec<String> = names(&added)?
                    .iter()
                    .map(|n| {
                        entry_line(
                            n,
                            &EntryStyle {
                                flow: true,
                                quote: None,
                            },
                        )
                    })
                    .collect();
                return Ok(format!(
                    "{}[{}]{}",
                    &text[..at],
                    items.join(", "),
                    &text[value_end..]
                ));
            }
            if !(value.starts_with('[') && value.ends_with(']')) {
                return Err("imagePullSecrets is written across several lines in flow style; edit it by hand".into());
            }
            let inner = &value[1..value.len() - 1];
            let parts = split_flow(inner);
            let parts: Vec<&str> = parts
                .iter()
                .map(|p| p.trim())
                .filter(|p| !p.is_empty())
                .collect();
            if parts.len() != plan.before.len() {
                return Err("could not match the imagePullSecrets entries in the text".into());
            }
            if !added.is_empty() {
                let style = parts.first().map(|p| style_of(p)).unwrap_or(EntryStyle {
                    flow: true,
                    quote: None,
                });
                let style = EntryStyle {
                    flow: true,
                    ..style
                };
                let new: Vec<String> = names(&added)?
                    .iter()
                    .map(|n| entry_line(n, &style))
                    .collect();
                let close = at + value.len() - 1;
                let body_before_close = text[at + 1..close].trim_end();
                let sep = if body_before_close.is_empty() {
                    ""
                } else {
                    ", "
                };
                let insert_at = at + 1 + body_before_close.len();
                return Ok(format!(
                    "{}{sep}{}{}",
                    &text[..insert_at],
                    new.join(", "),
                    &text[insert_at..]
                ));
            }
            if plan.after.is_empty() {
                return Ok(y.remove_lines(key_line, key_line + 1));
            }
            let keep: Vec<&str> = parts
                .iter()
                .zip(&kept)
                .filter(|(_, k)| **k)
                .map(|(p, _)| *p)
                .collect();
            let sep = if inner.contains(", ") { ", " } else { "," };
            let lead = if inner.starts_with(' ') { " " } else { "" };
            let trail = if inner.ends_with(' ') { " " } else { "" };
            Ok(format!(
                "{}[{lead}{}{trail}]{}",
                &text[..at],
                keep.join(sep),
                &text[value_end..]
            ))
        }
        Some((_, Node::Map(_))) => Err("imagePullSecrets is not a list".into()),
    }
}

/// Splits flow-sequence content at top-level commas.
fn split_flow(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start, mut in_s, mut in_d) = (0i32, 0usize, false, false);
    for (i, c) in s.char_indices() {
        match c {
            '\'' if !in_d => in_s = !in_s,
            '"' if !in_s => in_d = !in_d,
            '{' | '[' if !in_s && !in_d => depth += 1,
            '}' | ']' if !in_s && !in_d => depth -= 1,
            ',' if depth == 0 && !in_s && !in_d => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

// ---------------------------------------------------------------- JSON

#[derive(Debug)]
enum J {
    Obj {
        start: usize,
        end: usize,
        members: Vec<(String, usize, J)>,
    },
    Arr {
        start: usize,
        end: usize,
        items: Vec<J>,
    },
    Scalar {
        start: usize,
        end: usize,
    },
}

impl J {
    fn span(&self) -> (usize, usize) {
        match self {
            J::Obj { start, end, .. } | J::Arr { start, end, .. } | J::Scalar { start, end } => {
                (*start, *end)
            }
        }
    }
}

struct JParser<'a> {
    b: &'a [u8],
    s: &'a str,
    i: usize,
}

impl JParser<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\n' | b'\r' | b'\t') {
            self.i += 1;
        }
    }
    fn string_end(&mut self) -> Result<usize, String> {
        // at '"'
        self.i += 1;
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    return Ok(self.i);
                }
                _ => self.i += 1,
            }
        }
        Err("unterminated JSON string".into())
    }
    fn value(&mut self) -> Result<J, String> {
        self.ws();
        let start = self.i;
        match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut members = Vec::new();
                loop {
                    self.ws();
                    if self.b.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        break;
                    }
                    let ks = self.i;
                    let ke = self.string_end()?;
                    let key: String =
                        serde_json::from_str(&self.s[ks..ke]).map_err(|e| e.to_string())?;
                    self.ws();
                    self.i += 1; // ':'
                    let v = self.value()?;
                    members.push((key, ks, v));
                    self.ws();
                    if self.b.get(self.i) == Some(&b',') {
                        self.i += 1;
                    }
                }
                Ok(J::Obj {
                    start,
                    end: self.i,
                    members,
                })
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.ws();
                    if self.b.get(self.i) == Some(&b']') {
                        self.i += 1;
                        break;
                    }
                    items.push(self.value()?);
                    self.ws();
                    if self.b.get(self.i) == Some(&b',') {
                        self.i += 1;
                    }
                }
                Ok(J::Arr {
                    start,
                    end: self.i,
                    items,
                })
            }
            Some(b'"') => {
                let end = self.string_end()?;
                Ok(J::Scalar { start, end })
            }
            Some(_) => {
                while self.i < self.b.len()
                    && !matches!(
                        self.b[self.i],
                        b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'
                    )
                {
                    self.i += 1;
                }
                Ok(J::Scalar { start, end: self.i })
            }
            None => Err("unexpected end of JSON".into()),
        }
    }
}

/// The indentation (spaces) of the line holding byte `pos`.
fn line_indent(text: &str, pos: usize) -> String {
    let ls = text[..pos].rfind('\n').map(|i| i + 1).unwrap_or(0);
    text[ls..]
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect()
}

fn json_edit(text: &str, path: &[Seg], plan: &Plan) -> Result<String, String> {
    let mut p = JParser {
        b: text.as_bytes(),
        s: text,
        i: 0,
    };
    let root = p.value()?;
    let mut node = &root;
    for seg in path {
        node = match (seg, node) {
            (Seg::Key(k), J::Obj { members, .. }) => members
                .iter()
                .find(|(n, _, _)| n == k)
                .map(|(_, _, v)| v)
                .ok_or_else(|| format!("cannot find {k} in the JSON text"))?,
            (Seg::Index(i), J::Arr { items, .. }) => items
                .get(*i)
                .ok_or("cannot find the list item in the JSON text")?,
            _ => return Err("unexpected JSON structure".into()),
        };
    }
    let J::Obj {
        start: obj_start,
        end: obj_end,
        members,
    } = node
    else {
        return Err("the pod spec is not a JSON object".into());
    };
    let added: Vec<&Value> = plan
        .after
        .iter()
        .filter(|e| !plan.before.contains(e))
        .collect();
    let multiline = text[*obj_start..*obj_end].contains('\n');
    let unit = {
        let outer = line_indent(text, *obj_start);
        match members.first() {
            Some((_, ks, _)) if multiline => {
                let inner = line_indent(text, *ks);
                inner.get(outer.len()..).unwrap_or("    ").to_string()
            }
            _ => "    ".to_string(),
        }
    };
    let colon = if text[*obj_start..*obj_end].contains("\": ") {
        ": "
    } else {
        ":"
    };
    let render_entry = |e: &Value, ind: &str| -> String {
        let name = serde_json::to_string(patch_plan::entry_name(e).unwrap_or("")).unwrap();
        if multiline {
            format!("{{\n{ind}{unit}\"name\"{colon}{name}\n{ind}}}")
        } else {
            format!("{{\"name\"{colon}{name}}}")
        }
    };
    let existing = members.iter().position(|(k, _, _)| k == "imagePullSecrets");
    match existing.map(|i| &members[i]) {
        None | Some((_, _, J::Scalar { .. })) if added.is_empty() => Ok(text.to_string()),
        None => {
            let key_ind = members
                .first()
                .map(|(_, ks, _)| line_indent(text, *ks))
                .unwrap_or_else(|| format!("{}{unit}", line_indent(text, *obj_start)));
            let item_ind = format!("{key_ind}{unit}");
            let items: Vec<String> = added.iter().map(|e| render_entry(e, &item_ind)).collect();
            let arr = if multiline {
                format!(
                    "[\n{item_ind}{}\n{key_ind}]",
                    items.join(&format!(",\n{item_ind}"))
                )
            } else {
                format!("[{}]", items.join(","))
            };
            let member = format!("\"imagePullSecrets\"{colon}{arr}");
            match members.last() {
                Some((_, _, v)) => {
                    let at = v.span().1;
                    let sep = if multiline {
                        format!(",\n{key_ind}")
                    } else {
                        ",".to_string()
                    };
                    Ok(format!("{}{sep}{member}{}", &text[..at], &text[at..]))
                }
                None => {
                    let at = obj_start + 1;
                    Ok(format!("{}{member}{}", &text[..at], &text[at..]))
                }
            }
        }
        Some((_, _, J::Scalar { start, end })) => {
            // null
            let items: Vec<String> = added.iter().map(|e| render_entry(e, "")).collect();
            Ok(format!(
                "{}[{}]{}",
                &text[..*start],
                items.join(", "),
                &text[*end..]
            ))
        }
        Some((_, _, J::Obj { .. })) => Err("imagePullSecrets is not a list".into()),
        Some((_, key_start, J::Arr { start, end, items })) => {
            if items.len() != plan.before.len() {
                return Err("could not match the imagePullSecrets entries in the JSON text".into());
            }
            if !added.is_empty() {
                let close = end - 1;
                if let Some(last) = items.last() {
                    let at = last.span().1;
                    let ind = line_indent(text, last.span().0);
                    let sep = if items.len() >= 2 {
                        text[items[items.len() - 2].span().1..last.span().0].to_string()
                    } else if text[*start..at].contains('\n') {
                        format!(",\n{ind}")
                    } else if text[*obj_start..*obj_end].contains(", ") {
                        ", ".to_string()
                    } else {
                        ",".to_string()
                    };
                    let first_text = &text[items[0].span().0..items[0].span().1];
                    let new: Vec<String> = added
                        .iter()
                        .map(|e| {
                            // Reuse an existing `{"name": ...}` item's own formatting when it has only a name.
                            match &items[0] {
                                J::Obj { members: m, .. } if m.len() == 1 && m[0].0 == "name" => {
                                    let (vs, ve) = m[0].2.span();
                                    let base = items[0].span().0;
                                    let name = serde_json::to_string(
                                        patch_plan::entry_name(e).unwrap_or(""),
                                    )
                                    .unwrap();
                                    format!(
                                        "{}{name}{}",
                                        &first_text[..vs - base],
                                        &first_text[ve - base..]
                                    )
                                }
                                _ => render_entry(e, &ind),
                            }
                        })
                        .collect();
                    let mut ins = String::new();
                    for n in new {
                        ins.push_str(&sep);
                        ins.push_str(&n);
                    }
                    Ok(format!("{}{ins}{}", &text[..at], &text[at..]))
                } else {
                    let new: Vec<String> = added.iter().map(|e| render_entry(e, "")).collect();
                    Ok(format!(
                        "{}{}{}",
                        &text[..close],
                        new.join(", "),
                        &text[close..]
                    ))
                }
            } else {
                let kept = kept_entries(plan);
                if plan.after.is_empty() {
                    // Remove the whole member with one adjacent comma.
                    let idx = existing.unwrap();
                    let (from, to) = if idx + 1 < members.len() {
                        (*key_start, members[idx + 1].1)
                    } else if idx > 0 {
                        (members[idx - 1].2.span().1, *end)
                    } else {
                        (*key_start, *end)
                    };
                    return Ok(format!("{}{}", &text[..from], &text[to..]));
                }
                let sep = if items.len() >= 2 {
                    text[items[0].span().1..items[1].span().0].to_string()
                } else {
                    ", ".into()
                };
                let lead = &text[start + 1..items[0].span().0];
                let trail = &text[items.last().unwrap().span().1..end - 1];
                let keep: Vec<&str> = items
                    .iter()
                    .zip(&kept)
                    .filter(|(_, k)| **k)
                    .map(|(it, _)| &text[it.span().0..it.span().1])
                    .collect();
                Ok(format!(
                    "{}[{lead}{}{trail}]{}",
                    &text[..*start],
                    keep.join(&sep),
                    &text[*end..]
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn add(text: &str, secrets: &[&str]) -> String {
        patch_source(text, &s(secrets), false).unwrap().text
    }
    fn rm(text: &str, secrets: &[&str]) -> String {
        patch_source(text, &s(secrets), true).unwrap().text
    }

    const DEPLOY: &str = "# top comment\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web   # the name\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: \"nginx:1\"\n      # trailing comment\n";

    #[test]
    fn inserts_a_new_key_at_the_pod_spec_indentation() {
        let out = add(DEPLOY, &["regcred"]);
        assert_eq!(
            out,
            DEPLOY.replace(
                "image: \"nginx:1\"\n",
                "image: \"nginx:1\"\n      imagePullSecrets:\n        - name: regcred\n"
            )
        );
        // Idempotent.
        assert_eq!(add(&out, &["regcred"]), out);
        // And removal brings back the original.
        assert_eq!(rm(&out, &["regcred"]), DEPLOY);
    }

    #[test]
    fn appends_to_block_and_flow_lists() {
        let block = "kind: ServiceAccount\napiVersion: v1\nmetadata:\n  name: default\nimagePullSecrets:\n- name: a # keep\n- name: \"b\"\nsecrets: []\n";
        assert_eq!(
            add(block, &["b", "c"]),
            block.replace("- name: \"b\"\n", "- name: \"b\"\n- name: c\n")
        );
        let flow = "kind: Pod\napiVersion: v1\nmetadata: {name: p}\nspec:\n  imagePullSecrets: [{name: a}, {name: b}]  # two\n  containers: [{name: c, image: x}]\n";
        assert_eq!(
            add(flow, &["c"]),
            flow.replace("{name: b}]", "{name: b}, {name: c}]")
        );
        assert_eq!(
            rm(flow, &["a"]),
            flow.replace("[{name: a}, {name: b}]", "[{name: b}]")
        );
        assert_eq!(
            rm(flow, &["a", "b"]),
            flow.replace("  imagePullSecrets: [{name: a}, {name: b}]  # two\n", "")
        );
        let empty = "kind: Pod\napiVersion: v1\nspec:\n  imagePullSecrets: []\n  containers: []\n";
        assert_eq!(
            add(empty, &["x"]),
            empty.replace("[]\n  c", "[{name: x}]\n  c")
        );
    }

    #[test]
    fn removes_block_items_and_whole_key() {
        let t = "kind: ServiceAccount\nimagePullSecrets:\n  - name: a\n  - name: b\n  - name: c\nautomount: true\n";
        assert_eq!(
            rm(t, &["b"]),
            "kind: ServiceAccount\nimagePullSecrets:\n  - name: a\n  - name: c\nautomount: true\n"
        );
        assert_eq!(
            rm(t, &["a", "b", "c"]),
            "kind: ServiceAccount\nautomount: true\n"
        );
        assert_eq!(rm(t, &["zz"]), t);
    }

    #[test]
    fn cronjob_list_and_multidoc_with_other_objects() {
        let t = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  spec: x\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: batch/v1\n  kind: CronJob\n  metadata:\n    name: nightly\n  spec:\n    schedule: '@daily'\n    jobTemplate:\n      spec:\n        template:\n          spec:\n            containers:\n            - name: a\n              image: b\n            restartPolicy: Never\n- apiVersion: v1\n  kind: ServiceAccount\n  metadata:\n    name: sa\n";
        let out = add(t, &["r"]);
        let expected = t
            .replace("            restartPolicy: Never\n", "            restartPolicy: Never\n            imagePullSecrets:\n            - name: r\n")
            .replace("    name: sa\n", "    name: sa\n  imagePullSecrets:\n  - name: r\n");
        assert_eq!(out, expected);
        assert_eq!(patch_source(t, &s(&["r"]), false).unwrap().changed, 2);
    }

    #[test]
    fn no_trailing_newline_and_crlf() {
        let t = "kind: ServiceAccount\nmetadata:\n  name: x";
        assert_eq!(
            add(t, &["a"]),
            "kind: ServiceAccount\nmetadata:\n  name: x\nimagePullSecrets:\n  - name: a"
        );
        let t = "kind: ServiceAccount\r\nmetadata:\r\n  name: x\r\n";
        assert_eq!(add(t, &["a"]), "kind: ServiceAccount\r\nmetadata:\r\n  name: x\r\nimagePullSecrets:\r\n  - name: a\r\n");
    }

    #[test]
    fn numeric_names_are_quoted() {
        let t = "kind: ServiceAccount\nmetadata:\n  name: x\n";
        assert!(add(t, &["1234"]).contains("- name: \"1234\"\n"));
    }

    #[test]
    fn json_pretty_and_compact() {
        let t = "{\n    \"apiVersion\": \"apps/v1\",\n    \"kind\": \"Deployment\",\n    \"spec\": {\n        \"template\": {\n            \"spec\": {\n                \"containers\": []\n            }\n        }\n    }\n}\n";
        let out = add(t, &["a"]);
        assert_eq!(out, t.replace("\"containers\": []\n", "\"containers\": [],\n                \"imagePullSecrets\": [\n                    {\n                        \"name\": \"a\"\n                    }\n                ]\n"));
        let out2 = add(&out, &["b"]);
        assert!(out2.contains("\"name\": \"a\"\n                    },\n                    {\n                        \"name\": \"b\"\n                    }\n                ]"), "{out2}");
        assert_eq!(rm(&out2, &["b"]), out);
        assert_eq!(rm(&out, &["a"]), t);
        let c = r#"{"kind":"ServiceAccount","apiVersion":"v1","metadata":{"name":"d"},"imagePullSecrets":[{"name":"x"}]}"#;
        assert_eq!(
            add(c, &["y"]),
            c.replace(r#"{"name":"x"}]"#, r#"{"name":"x"},{"name":"y"}]"#)
        );
    }

    #[test]
    fn flow_style_pod_spec_fails_loudly() {
        let t = "kind: Pod\nspec: {containers: []}\n";
        assert!(patch_source(t, &s(&["a"]), false).is_err());
    }
}
