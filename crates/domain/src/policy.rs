//! The audit policy file (`--policy`, YAML): registries allowed, denied and public, trusted
//! Docker Hub publishers, mutable tags, digest pinning, severities, disabled rules and the
//! `--deep` limits. Unknown keys and bad values are errors naming the file and the key.
use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::reference::ImageReference;
use crate::registry_pattern::RegistryPattern;
use crate::rules::{RuleId, RULES};
use crate::severity::Severity;

/// Registries whose images anyone can pull (no pull secret expected).
pub const DEFAULT_PUBLIC_REGISTRIES: [&str; 7] = [
    "docker.io",
    "ghcr.io",
    "quay.io",
    "registry.k8s.io",
    "gcr.io",
    "public.ecr.aws",
    "mcr.microsoft.com",
];

const KEYS: [&str; 12] = [
    "apiVersion",
    "kind",
    "allowedRegistries",
    "deniedRegistries",
    "publicRegistries",
    "trustedPublishers",
    "mutableTags",
    "requireDigest",
    "severities",
    "disabledRules",
    "maxImageBytes",
    "maxImageAgeDays",
];

/// A trusted Docker Hub publisher: an account name (`bitnami`) or a pattern (`docker.io/bitnami`).
#[derive(Debug, Clone)]
pub enum Publisher {
    Account(String),
    Pattern(RegistryPattern),
}

#[derive(Debug, Clone)]
pub struct Policy {
    /// `None`: every registry is allowed.
    pub allowed_registries: Option<Vec<RegistryPattern>>,
    pub denied_registries: Vec<RegistryPattern>,
    pub public_registries: Vec<RegistryPattern>,
    pub trusted_publishers: Vec<Publisher>,
    pub mutable_tags: Vec<String>,
    pub require_digest: bool,
    pub severities: BTreeMap<RuleId, Severity>,
    pub disabled_rules: BTreeSet<RuleId>,
    pub max_image_bytes: Option<u64>,
    pub max_image_age_days: Option<u64>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allowed_registries: None,
            denied_registries: Vec::new(),
            public_registries: DEFAULT_PUBLIC_REGISTRIES
                .iter()
                .map(|p| RegistryPattern::parse(p).expect("default patterns are valid"))
                .collect(),
            trusted_publishers: Vec::new(),
            mutable_tags: vec!["latest".into()],
            require_digest: false,
            severities: BTreeMap::new(),
            disabled_rules: BTreeSet::new(),
            max_image_bytes: None,
            max_image_age_days: None,
        }
    }
}

impl Policy {
    /// The severity a rule reports with, or None when it is off.
    pub fn severity(&self, rule: RuleId) -> Option<Severity> {
        if self.disabled_rules.contains(&rule) {
            return None;
        }
        if rule == RuleId::MissingDigest && !self.require_digest {
            return None;
        }
        if !rule.info().on_by_default && rule != RuleId::MissingDigest {
            return None;
        }
        Some(
            self.severities
                .get(&rule)
                .copied()
                .unwrap_or(rule.info().severity),
        )
    }

    pub fn is_trusted_publisher(&self, r: &ImageReference) -> bool {
        self.trusted_publishers.iter().any(|p| match p {
            Publisher::Account(a) => r.is_docker_hub() && r.account() == Some(a.as_str()),
            Publisher::Pattern(p) => p.matches(r),
        })
    }

    /// Reads a policy file; `file` names it in errors.
    pub fn from_yaml(text: &str, file: &str) -> Result<Policy, String> {
        let doc: Value = if text.trim().is_empty() {
            Value::Object(Default::default())
        } else {
            serde_saphyr::from_str(text).map_err(|e| {
                format!(
                    "{file}: invalid YAML: {}",
                    e.to_string().lines().next().unwrap_or("")
                )
            })?
        };
        let map = match doc {
            Value::Object(m) => m,
            Value::Null => Default::default(),
            _ => {
                return Err(format!(
                    "{file}: a policy is a YAML mapping of keys such as allowedRegistries"
                ))
            }
        };
        let mut p = Policy::default();
        for (key, value) in &map {
            let bad = |what: &str| format!("{file}: {key}: {what}");
            match key.as_str() {
                "apiVersion" | "kind" => {}
                "allowedRegistries" => p.allowed_registries = Some(patterns(value, &bad)?),
                "deniedRegistries" => p.denied_registries = patterns(value, &bad)?,
                "publicRegistries" => p.public_registries = patterns(value, &bad)?,
                "trustedPublishers" => {
                    p.trusted_publishers = strings(value, &bad)?
                        .into_iter()
                        .map(|s| {
                            if s.contains('/') || s.contains('.') {
                                RegistryPattern::parse(&s)
                                    .map(Publisher::Pattern)
                                    .map_err(|e| bad(&e.to_string()))
                            } else if s.is_empty() {
                                Err(bad("empty publisher name"))
                            } else {
                                Ok(Publisher::Account(s))
                            }
                        })
                        .collect::<Result<_, _>>()?
                }
                "mutableTags" => p.mutable_tags = strings(value, &bad)?,
                "requireDigest" => {
                    p.require_digest = value
                        .as_bool()
                        .ok_or_else(|| bad("must be true or false"))?
                }
                "severities" => {
                    let m = value.as_object().ok_or_else(|| {
                        bad("must map rule IDs to severities (critical, high, medium, low, info)")
                    })?;
                    for (rule, sev) in m {
                        let id = rule_id(rule).map_err(|e| bad(&e))?;
                        let s = sev
                            .as_str()
                            .and_then(parse_severity)
                            .ok_or_else(|| {
                                bad(&format!(
                                    "{rule}: {sev} is not a severity (critical, high, medium, low, info)"
                                ))
                            })?;
                        p.severities.insert(id, s);
                    }
                }
                "disabledRules" => {
                    for rule in strings(value, &bad)? {
                        p.disabled_rules
                            .insert(rule_id(&rule).map_err(|e| bad(&e))?);
                    }
                }
                "maxImageBytes" => p.max_image_bytes = Some(positive(value, &bad)?),
                "maxImageAgeDays" => p.max_image_age_days = Some(positive(value, &bad)?),
                other => {
                    let hint = closest(other, &KEYS)
                        .map(|k| format!("; did you mean {k:?}?"))
                        .unwrap_or_else(|| format!("; known keys: {}", KEYS[2..].join(", ")));
                    return Err(format!("unknown key {other:?} in {file}{hint}"));
                }
            }
        }
        Ok(p)
    }
}

fn strings(v: &Value, bad: &dyn Fn(&str) -> String) -> Result<Vec<String>, String> {
    let list = v
        .as_array()
        .ok_or_else(|| bad("must be a list of strings"))?;
    list.iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(&format!("{x} is not a string")))
        })
        .collect()
}

fn patterns(v: &Value, bad: &dyn Fn(&str) -> String) -> Result<Vec<RegistryPattern>, String> {
    strings(v, bad)?
        .iter()
        .map(|s| RegistryPattern::parse(s).map_err(|e| bad(&e.to_string())))
        .collect()
}

fn positive(v: &Value, bad: &dyn Fn(&str) -> String) -> Result<u64, String> {
    v.as_u64()
        .filter(|n| *n > 0)
        .ok_or_else(|| bad("must be a positive whole number"))
}

fn parse_severity(s: &str) -> Option<Severity> {
    Some(match s {
        "critical" => Severity::Critical,
        "high" => Severity::High,
        "medium" => Severity::Medium,
        "low" => Severity::Low,
        "info" => Severity::Info,
        _ => return None,
    })
}

fn rule_id(name: &str) -> Result<RuleId, String> {
    RuleId::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = RULES.iter().map(|r| r.name).collect();
        match closest(name, &names) {
            Some(c) => format!("unknown rule {name:?}; did you mean {c:?}?"),
            None => format!("unknown rule {name:?}"),
        }
    })
}

/// The candidate within a small edit distance, for "did you mean".
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (levenshtein(&w, &c.to_ascii_lowercase()), *c))
        .filter(|(d, c)| *d <= 3.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_key() {
        let p = Policy::from_yaml(
            "allowedRegistries: [registry.example.com, '*.corp.example']\ndeniedRegistries: [docker.io]\npublicRegistries: [quay.io]\ntrustedPublishers: [bitnami, docker.io/mycompany]\nmutableTags: [latest, main]\nrequireDigest: true\nseverities: {missing-account: high}\ndisabledRules: [writable-root-filesystem]\nmaxImageBytes: 100\nmaxImageAgeDays: 30\n",
            "p.yaml",
        )
        .unwrap();
        assert_eq!(p.allowed_registries.as_ref().unwrap().len(), 2);
        assert_eq!(p.severity(RuleId::MissingAccount), Some(Severity::High));
        assert_eq!(p.severity(RuleId::WritableRootFilesystem), None);
        assert_eq!(p.severity(RuleId::MissingDigest), Some(Severity::Medium));
        assert_eq!(Policy::default().severity(RuleId::MissingDigest), None);
        assert_eq!(p.mutable_tags, ["latest", "main"]);
    }

    #[test]
    fn errors_name_file_and_key() {
        let e = Policy::from_yaml("allowedRegistry: [x]\n", "policy.yaml").unwrap_err();
        assert_eq!(
            e,
            "unknown key \"allowedRegistry\" in policy.yaml; did you mean \"allowedRegistries\"?"
        );
        let e = Policy::from_yaml("disabledRules: [mising-tag]\n", "p.yaml").unwrap_err();
        assert!(e.contains("did you mean \"missing-tag\""), "{e}");
        let e = Policy::from_yaml("severities: {missing-tag: urgent}\n", "p.yaml").unwrap_err();
        assert!(e.starts_with("p.yaml: severities: missing-tag"), "{e}");
        let e = Policy::from_yaml("deniedRegistries: ['https://x']\n", "p.yaml").unwrap_err();
        assert!(e.starts_with("p.yaml: deniedRegistries: "), "{e}");
        assert!(Policy::from_yaml("requireDigest: yes please\n", "p.yaml").is_err());
    }

    /// The same inputs as the `policy_loader` fuzz target, in the normal suite.
    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn check(text: &str) -> Result<(), TestCaseError> {
            if let Err(e) = Policy::from_yaml(text, "f.yaml") {
                prop_assert!(e.contains("f.yaml"), "names the file: {}", e);
                prop_assert!(!e.contains('\n'), "one line: {:?}", e);
            }
            Ok(())
        }

        fn key() -> impl Strategy<Value = String> {
            prop_oneof![
                prop::sample::select(KEYS.to_vec()).prop_map(str::to_string),
                "[a-zA-Z]{1,16}",
            ]
        }

        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("[]".to_string()),
                Just("{}".to_string()),
                Just("null".to_string()),
                Just("true".to_string()),
                Just("-1".to_string()),
                Just("18446744073709551616".to_string()),
                Just("[docker.io, '*.corp.example', 'ghcr.io/org']".to_string()),
                Just("{missing-tag: low, bogus: high}".to_string()),
                Just("[missing-tag, writable-root-filesystem]".to_string()),
                "[a-z0-9.*/:@\\[\\]{}, -]{0,24}",
                "\\PC{0,12}",
            ]
        }

        proptest! {
            #[test]
            fn never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
                check(&text)?;
            }

            #[test]
            fn never_panics_on_policy_shaped_text(entries in prop::collection::vec((key(), value()), 0..6)) {
                let text: String = entries.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
                check(&text)?;
            }

            #[test]
            fn severities_and_disabled_rules_are_applied(
                picks in prop::collection::vec((0..RULES.len(), 0..5usize, any::<bool>()), 0..6),
            ) {
                let names = ["critical", "high", "medium", "low", "info"];
                let mut severities = serde_json::Map::new();
                let mut disabled = Vec::new();
                for (rule, sev, off) in &picks {
                    let id = RULES[*rule].name;
                    if *off { disabled.push(id.to_string()); } else { severities.insert(id.into(), names[*sev].into()); }
                }
                let doc = serde_json::json!({"severities": severities, "disabledRules": disabled, "requireDigest": true});
                let p = Policy::from_yaml(&doc.to_string(), "f.yaml").map_err(TestCaseError::fail)?;
                for info in RULES.iter() {
                    let id = info.name;
                    let got = p.severity(info.id);
                    if disabled.iter().any(|d| d == id) {
                        prop_assert_eq!(got, None);
                    } else if let Some(s) = severities.get(id) {
                        if info.on_by_default || info.id == RuleId::MissingDigest {
                            prop_assert_eq!(got.map(|s| format!("{s:?}").to_lowercase()), Some(s.as_str().unwrap().to_string()));
                        }
                    }
                }
            }
        }
    }
}
