//! Parsing Kubernetes manifests: YAML (multi-document) or JSON, `List` kinds expanded, each object
//! with the file and line it came from.
//!
//! Both `audit -f` (which reads objects) and `patch -f` (which edits the text in place) start
//! from the main crate's `read_sources` (files, directories, stdin) and [`split_documents`].
use serde_json::Value;

/// One input file (or stdin) with its text.
#[derive(Debug, Clone)]
pub struct Source {
    /// The path as given or found (`-` shows as `<stdin>`).
    pub name: String,
    pub text: String,
}

/// One document of a source: its text and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document<'a> {
    pub text: &'a str,
    /// Byte offset of `text` within the source.
    pub offset: usize,
    pub line: usize,
}

/// A Kubernetes object read from a manifest.
#[derive(Debug, Clone)]
pub struct ManifestObject {
    pub value: Value,
    pub file: String,
    /// 1-based line where the object's document starts.
    pub line: usize,
    /// The document's text, for locating fields (SARIF lines).
    pub document_text: std::sync::Arc<str>,
    pub document_line: usize,
}

/// Something that could not be read; reported, not fatal for the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProblem {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Splits a source into documents at `---` lines (YAML) — a JSON source is one document.
pub fn split_documents(text: &str) -> Vec<Document<'_>> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        let is_separator = trimmed == "---"
            || trimmed.starts_with("--- ")
            || trimmed.starts_with("---\t")
            || trimmed == "...";
        if is_separator {
            if offset > start {
                docs.push(Document {
                    text: &text[start..offset],
                    offset: start,
                    line: start_line,
                });
            }
            start = offset + line.len();
            start_line = i + 2;
        }
        offset += line.len();
    }
    if text.len() > start {
        docs.push(Document {
            text: &text[start..],
            offset: start,
            line: start_line,
        });
    }
    docs.retain(|d| !is_blank_document(d.text));
    docs
}

fn is_blank_document(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#')
    })
}

/// Parses one document (YAML or JSON) into a value.
pub fn parse_document(text: &str) -> std::result::Result<Value, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Value>(text) {
            return Ok(v);
        }
    }
    serde_saphyr::from_str::<Value>(text).map_err(|e| first_line(&e.to_string()))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// Loads every object from the sources: `List` kinds expanded, null documents skipped,
/// unparsable documents reported as problems.
pub fn load_objects(sources: &[Source]) -> (Vec<ManifestObject>, Vec<LoadProblem>) {
    let mut objects = Vec::new();
    let mut problems = Vec::new();
    for source in sources {
        for doc in split_documents(&source.text) {
            let value = match parse_document(doc.text) {
                Ok(Value::Null) => continue,
                Ok(v) => v,
                Err(message) => {
                    problems.push(LoadProblem {
                        file: source.name.clone(),
                        line: doc.line,
                        message: format!("invalid YAML/JSON: {message}"),
                    });
                    continue;
                }
            };
            let document_text: std::sync::Arc<str> = doc.text.into();
            let mut push = |value: Value| {
                objects.push(ManifestObject {
                    value,
                    file: source.name.clone(),
                    line: doc.line,
                    document_text: document_text.clone(),
                    document_line: doc.line,
                });
            };
            match value {
                Value::Object(ref m) if is_list_kind(m) => {
                    if let Some(Value::Array(items)) = m.get("items") {
                        for item in items {
                            push(item.clone());
                        }
                    }
                }
                Value::Array(items) => items.into_iter().for_each(&mut push),
                Value::Object(_) => push(value),
                _ => problems.push(LoadProblem {
                    file: source.name.clone(),
                    line: doc.line,
                    message:
                        "not a Kubernetes object (expected a mapping with apiVersion and kind)"
                            .into(),
                }),
            }
        }
    }
    (objects, problems)
}

fn is_list_kind(m: &serde_json::Map<String, Value>) -> bool {
    m.get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k == "List" || k.ends_with("List"))
        && m.get("items").is_some()
}

/// The 1-based line within a document of the first `image:` field holding `image` (for SARIF).
pub fn find_image_line(doc_text: &str, doc_line: usize, image: &str) -> Option<usize> {
    doc_text.lines().enumerate().find_map(|(i, l)| {
        let t = l.trim_start().trim_start_matches("- ");
        let rest = t
            .strip_prefix("image:")
            .or_else(|| t.strip_prefix("\"image\":"))?;
        let v = rest
            .trim()
            .trim_end_matches(',')
            .trim_matches(|c| c == '"' || c == '\'');
        (v == image).then_some(doc_line + i)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_yaml_documents_with_lines() {
        let text = "a: 1\n---\n# only a comment\n---\nb: 2\nc: 3\n--- \nd: 4\n";
        let docs = split_documents(text);
        assert_eq!(docs.len(), 3);
        assert_eq!((docs[0].line, docs[1].line, docs[2].line), (1, 5, 8));
        assert_eq!(docs[1].text, "b: 2\nc: 3\n");
        assert_eq!(&text[docs[2].offset..], "d: 4\n");
    }

    #[test]
    fn loads_lists_json_and_reports_bad_documents() {
        let src = Source {
            name: "m.yaml".into(),
            text: "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n  metadata: {name: a}\n- kind: Pod\n  metadata: {name: b}\n---\nkind: [unclosed\n---\n".into(),
        };
        let json = Source {
            name: "m.json".into(),
            text: "{\"kind\":\"Secret\",\"metadata\":{\"name\":\"s\"}}".into(),
        };
        let (objs, problems) = load_objects(&[src, json]);
        let names: Vec<_> = objs
            .iter()
            .map(|o| o.value["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["a", "b", "s"]);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 9);
    }

    #[test]
    fn finds_image_lines() {
        let doc = "kind: Pod\nspec:\n  containers:\n  - name: a\n    image: nginx:1\n  - image: \"redis\"\n";
        assert_eq!(find_image_line(doc, 10, "nginx:1"), Some(14));
        assert_eq!(find_image_line(doc, 1, "redis"), Some(6));
        assert_eq!(find_image_line(doc, 1, "busybox"), None);
    }

    /// The same inputs as the `manifest_loader` fuzz target, in the normal suite.
    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// Text made of YAML's structural pieces, so documents, separators and errors all occur.
        fn yamlish() -> impl Strategy<Value = String> {
            prop::collection::vec(
                prop_oneof![
                    Just("---\n".to_string()),
                    Just("--- \n".to_string()),
                    Just("...\n".to_string()),
                    Just("# c\n".to_string()),
                    Just("\n".to_string()),
                    Just("\r\n".to_string()),
                    Just("kind: List\nitems:\n- kind: Pod\n".to_string()),
                    Just("apiVersion: v1\nkind: Pod\n".to_string()),
                    Just("a: &x [1, 2]\nb: *x\n".to_string()),
                    Just("{\"kind\": \"Pod\"}".to_string()),
                    Just("[1, {\"a\": 2}]".to_string()),
                    "[ a-z:{}\\[\\],&*!|>'\"#-]{0,12}",
                    "\\PC{0,8}",
                ],
                0..12,
            )
            .prop_map(|parts| parts.concat())
        }

        fn check(text: &str) -> std::result::Result<(), TestCaseError> {
            let docs = split_documents(text);
            let mut end = 0;
            for d in &docs {
                prop_assert!(d.offset >= end, "documents in order, not overlapping");
                end = d.offset + d.text.len();
                prop_assert!(end <= text.len());
                prop_assert_eq!(&text[d.offset..end], d.text);
                prop_assert_eq!(d.line, 1 + text[..d.offset].matches('\n').count());
                prop_assert!(!is_blank_document(d.text));
                let _ = parse_document(d.text);
            }
            let source = Source {
                name: "p.yaml".into(),
                text: text.to_string(),
            };
            let (objects, problems) = load_objects(&[source]);
            for o in &objects {
                prop_assert_eq!(&o.file, "p.yaml");
                prop_assert!(o.line >= 1 && o.line <= text.lines().count().max(1));
            }
            for p in &problems {
                prop_assert_eq!(&p.file, "p.yaml");
                prop_assert!(
                    !p.message.contains('\n'),
                    "one-line problem: {:?}",
                    p.message
                );
            }
            Ok(())
        }

        proptest! {
            #[test]
            fn loader_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
                check(&text)?;
            }

            #[test]
            fn loader_never_panics_on_yaml_like_text(text in yamlish()) {
                check(&text)?;
            }

            #[test]
            fn loader_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
                check(&String::from_utf8_lossy(&bytes))?;
            }

            #[test]
            fn objects_round_trip_in_order(names in prop::collection::vec("[a-z][a-z0-9-]{0,20}", 1..8), json in any::<bool>()) {
                let text = names
                    .iter()
                    .map(|n| {
                        let v = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": n}});
                        if json { v.to_string() } else { format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: '{n}'\n") }
                    })
                    .collect::<Vec<_>>()
                    .join("\n---\n");
                let (objects, problems) = load_objects(&[Source { name: "r.yaml".into(), text }]);
                prop_assert!(problems.is_empty(), "{:?}", problems);
                let got: Vec<&str> = objects.iter().map(|o| o.value["metadata"]["name"].as_str().unwrap()).collect();
                prop_assert_eq!(got, names.iter().map(String::as_str).collect::<Vec<_>>());
            }
        }
    }
}
