//! The audit report (`AuditReport`, the contract's document) and its renderers: table, wide,
//! JSON, YAML and SARIF 2.1.0.
use std::collections::BTreeMap;

use comfy_table::{presets, Attribute, Cell, Color, ContentArrangement, Table};
use serde::Serialize;
use serde_json::{json, Value};

use crate::cli::{ReportOutput, Severity};
use crate::domain::reference::ImageReference;
use crate::domain::rules::{Finding, RULES};
use crate::error::Result;
use crate::output::{to_kubectl_json, to_yaml};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub complete: bool,
    pub summary: Summary,
    pub images: Vec<ImageEntry>,
    pub findings: Vec<Finding>,
    pub errors: Vec<ReportError>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub images: usize,
    pub workloads: usize,
    /// Unsuppressed findings per severity.
    pub findings: SeverityCounts,
    /// Findings exempted by `image-sec.io/ignore` (an extension of the contract).
    pub suppressed: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SeverityCounts {
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub info: usize,
}

impl SeverityCounts {
    fn add(&mut self, s: Severity) {
        match s {
            Severity::Critical => self.critical += 1,
            Severity::High => self.high += 1,
            Severity::Medium => self.medium += 1,
            Severity::Low => self.low += 1,
            Severity::Info => self.info += 1,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageEntry {
    pub image: String,
    pub reference: Option<ReferenceView>,
    pub workloads: Vec<WorkloadRef>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReferenceView {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub normalized: String,
}

impl From<&ImageReference> for ReferenceView {
    fn from(r: &ImageReference) -> Self {
        ReferenceView {
            registry: r.registry.clone(),
            repository: r.repository.clone(),
            tag: r.tag.clone(),
            digest: r.digest.clone(),
            normalized: r.normalized(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct WorkloadRef {
    pub context: String,
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub container: String,
    /// Pods folded into this workload (an extension: 1 for a bare Pod, 0 for a manifest).
    pub pods: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ReportError {
    /// The resource (plural, e.g. `statefulsets.apps`) or file that could not be read.
    pub resource: String,
    pub namespace: String,
    pub message: String,
    /// kubeconfig context (an extension; empty for manifests).
    pub context: String,
}

impl AuditReport {
    /// Builds the report: sorts findings (severity, then namespace, kind, name, container,
    /// rule) and images, and counts unsuppressed findings.
    pub fn new(
        workloads: usize,
        images: BTreeMap<String, Vec<WorkloadRef>>,
        findings: Vec<Finding>,
        mut errors: Vec<ReportError>,
    ) -> AuditReport {
        // A stable sort of indices, then one move per finding: sorting the findings themselves
        // moved whole structs at every step of the merge.
        let mut order: Vec<usize> = (0..findings.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&findings[a], &findings[b]);
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.namespace.cmp(&b.namespace))
                .then_with(|| a.kind.cmp(&b.kind))
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.container.cmp(&b.container))
                .then_with(|| a.rule.as_str().cmp(b.rule.as_str()))
                .then_with(|| a.context.cmp(&b.context))
                .then_with(|| a.message.cmp(&b.message))
        });
        let mut unsorted: Vec<Option<Finding>> = findings.into_iter().map(Some).collect();
        let findings: Vec<Finding> = order
            .into_iter()
            .map(|i| unsorted[i].take().expect("each finding once"))
            .collect();
        errors.sort();
        let mut counts = SeverityCounts::default();
        let mut suppressed = 0;
        for f in &findings {
            if f.suppressed {
                suppressed += 1;
            } else {
                counts.add(f.severity);
            }
        }
        let images: Vec<ImageEntry> = images
            .into_iter()
            .map(|(image, mut workloads)| {
                workloads.sort();
                workloads.dedup();
                ImageEntry {
                    reference: ImageReference::parse(&image).ok().as_ref().map(Into::into),
                    image,
                    workloads,
                }
            })
            .collect();
        AuditReport {
            api_version: "image-sec.io/v1",
            kind: "AuditReport",
            complete: errors.is_empty(),
            summary: Summary {
                images: images.len(),
                workloads,
                findings: counts,
                suppressed,
            },
            images,
            findings,
            errors,
        }
    }

    /// Whether an unsuppressed finding is at or above `fail_on`.
    pub fn fails(&self, fail_on: Severity) -> bool {
        self.findings
            .iter()
            .any(|f| !f.suppressed && f.severity >= fail_on)
    }

    /// `12 findings (2 critical, 5 high, ...) in 7 workloads, 9 images; 1 suppressed`.
    pub fn summary_line(&self) -> String {
        let c = &self.summary.findings;
        let total = c.critical + c.high + c.medium + c.low + c.info;
        let parts: Vec<String> = [
            (c.critical, "critical"),
            (c.high, "high"),
            (c.medium, "medium"),
            (c.low, "low"),
            (c.info, "info"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, s)| format!("{n} {s}"))
        .collect();
        let mut line = format!(
            "{total} finding{}{} in {} workload{}, {} image{}",
            plural(total),
            if parts.is_empty() {
                String::new()
            } else {
                format!(" ({})", parts.join(", "))
            },
            self.summary.workloads,
            plural(self.summary.workloads),
            self.summary.images,
            plural(self.summary.images),
        );
        if self.summary.suppressed > 0 {
            line.push_str(&format!("; {} suppressed", self.summary.suppressed));
        }
        if !self.complete {
            line.push_str(&format!(
                "; INCOMPLETE: {} read error{}",
                self.errors.len(),
                plural(self.errors.len())
            ));
        }
        line
    }

    pub fn render(&self, format: ReportOutput, colour: bool) -> Result<String> {
        match format {
            ReportOutput::Json => to_kubectl_json(self),
            ReportOutput::Yaml => to_yaml(self),
            ReportOutput::Table => Ok(self.table(false, colour)),
            ReportOutput::Wide => Ok(self.table(true, colour)),
            ReportOutput::Sarif => to_kubectl_json(&self.sarif()),
        }
    }

    fn table(&self, wide: bool, colour: bool) -> String {
        let mut out = String::new();
        if !self.findings.is_empty() {
            let mut t = Table::new();
            t.load_style(presets::NOTHING)
                .set_content_arrangement(ContentArrangement::Disabled);
            if colour {
                t.enforce_styling();
            } else {
                t.force_no_tty();
            }
            let mut header = vec![
                "SEVERITY",
                "WORKLOAD",
                "CONTAINER",
                "IMAGE",
                "RULE",
                "MESSAGE",
            ];
            if wide {
                header.push("REMEDIATION");
            }
            let multi_context = self
                .findings
                .iter()
                .any(|f| f.context != self.findings[0].context);
            t.set_header(header);
            for f in &self.findings {
                let mut sev = Cell::new(if f.suppressed {
                    format!("{} (suppressed)", f.severity.as_str())
                } else {
                    f.severity.as_str().to_string()
                });
                if colour && !f.suppressed {
                    sev = match f.severity {
                        Severity::Critical => sev.fg(Color::Red).add_attribute(Attribute::Bold),
                        Severity::High => sev.fg(Color::Red),
                        Severity::Medium => sev.fg(Color::Yellow),
                        Severity::Low => sev.fg(Color::Cyan),
                        Severity::Info => sev,
                    };
                }
                let mut workload =
                    format!("{}/{}/{}", f.namespace, f.kind.to_ascii_lowercase(), f.name);
                if multi_context {
                    workload = format!("{}:{workload}", f.context);
                }
                let mut rule = f.rule.as_str().to_string();
                if let Some(c) = f.cause {
                    rule.push_str(&format!(" ({})", c.as_str()));
                }
                let mut row = vec![
                    sev,
                    Cell::new(workload),
                    Cell::new(&f.container),
                    Cell::new(&f.image),
                    Cell::new(rule),
                    Cell::new(&f.message),
                ];
                if wide {
                    row.push(Cell::new(&f.remediation));
                }
                t.add_row(row);
            }
            for col in t.column_iter_mut() {
                col.set_padding((0, 3));
            }
            for line in t.to_string().lines() {
                out.push_str(line.trim_end());
                out.push('\n');
            }
        }
        for e in &self.errors {
            let ctx = if e.context.is_empty() {
                String::new()
            } else {
                format!("context {}: ", e.context)
            };
            let ns = if e.namespace.is_empty() {
                String::new()
            } else {
                format!(" in namespace {}", e.namespace)
            };
            out.push_str(&format!(
                "error: {ctx}cannot read {}{ns}: {}\n",
                e.resource, e.message
            ));
        }
        out.push_str(&self.summary_line());
        out.push('\n');
        out
    }

    /// SARIF 2.1.0: one rule per rule ID; results with the manifest file and line where known,
    /// a logical location (context/namespace/kind/name/container) for live audits.
    pub fn sarif(&self) -> Value {
        let rules: Vec<Value> = RULES
            .iter()
            .map(|r| {
                json!({
                    "id": r.name,
                    "name": r.name,
                    "shortDescription": { "text": r.description },
                    "fullDescription": { "text": r.description },
                    "helpUri": format!("https://github.com/image-sec/kubectl-image-sec/blob/main/docs/rules.md#{}", r.name),
                    "defaultConfiguration": { "level": sarif_level(r.severity) },
                    "properties": { "severity": r.severity.as_str() },
                })
            })
            .collect();
        let results: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                let index = RULES.iter().position(|r| r.id == f.rule).unwrap_or(0);
                let fqn = [f.context.as_str(), &f.namespace, &f.kind, &f.name, &f.container]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("/");
                let logical = json!([{
                    "fullyQualifiedName": fqn,
                    "name": f.container,
                    "kind": "resource",
                }]);
                let mut location = json!({ "logicalLocations": logical });
                if let Some(loc) = &f.location {
                    let mut physical = json!({ "artifactLocation": { "uri": sarif_uri(&loc.file) } });
                    if let Some(line) = loc.line {
                        physical["region"] = json!({ "startLine": line });
                    }
                    location["physicalLocation"] = physical;
                }
                let mut text = f.message.clone();
                if !f.remediation.is_empty() {
                    text.push_str(&format!(". Fix: {}", f.remediation));
                }
                let mut result = json!({
                    "ruleId": f.rule.as_str(),
                    "ruleIndex": index,
                    "level": sarif_level(f.severity),
                    "message": { "text": text },
                    "locations": [location],
                    "properties": { "severity": f.severity.as_str(), "image": f.image },
                });
                if f.suppressed {
                    result["suppressions"] = json!([{ "kind": "inSource", "justification": "image-sec.io/ignore annotation" }]);
                }
                if let Some(c) = f.cause {
                    result["properties"]["cause"] = json!(c.as_str());
                }
                result
            })
            .collect();
        let notifications: Vec<Value> = self
            .errors
            .iter()
            .map(|e| json!({ "level": "error", "message": { "text": format!("cannot read {} {}: {}", e.resource, e.namespace, e.message) } }))
            .collect();
        json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [{
                "tool": { "driver": {
                    "name": "kubectl-image-sec",
                    "informationUri": "https://github.com/image-sec/kubectl-image-sec",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                } },
                "invocations": [{ "executionSuccessful": self.complete, "toolExecutionNotifications": notifications }],
                "results": results,
            }],
        })
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// A path as a URI reference (forward slashes, no leading `./`). Every byte that RFC 3986 does
/// not allow in a path is percent-encoded (spaces, `%`, `#`, `?`, non-ASCII, and the `<` `>` of
/// `<stdin>`), so `artifactLocation.uri` passes the schema's `uri-reference` format.
fn sarif_uri(file: &str) -> String {
    let f = file.replace('\\', "/");
    let f = f.strip_prefix("./").unwrap_or(&f);
    let mut out = String::with_capacity(f.len());
    for b in f.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
