//! Why an image pull fails: from a waiting container's reason and message and the pod's events
//! (containerd, CRI-O and kubelet wording), cross-checked with what the static rules found for
//! the same workload, with the one command that fixes it. Pure.
use crate::reference::ImageReference;
use crate::rules::{copy_secret_command, set_image_command, Cause, Finding, RuleId};
use crate::workload::{PullFailure, Workload};

/// Names the cause the runtime reports, from the waiting reason and the texts (status message
/// and event messages). Order matters: transport problems hide behind generic "failed to pull".
pub fn runtime_cause(reason: &str, texts: &[&str]) -> Cause {
    match reason {
        "InvalidImageName" => return Cause::InvalidReference,
        "ErrImageNeverPull" => return Cause::NeverPull,
        _ => {}
    }
    let all = texts.join("\n").to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| all.contains(n));
    if has(&[
        "couldn't parse image reference",
        "invalid reference format",
        "failed to parse image name",
    ]) {
        Cause::InvalidReference
    } else if has(&["errimageneverpull", "imagepullpolicy is set to never"]) {
        Cause::NeverPull
    } else if has(&[
        "x509:",
        "tls: failed to verify",
        "tls: ",
        "certificate signed by unknown authority",
        "certificate is not valid",
        "server gave http response to https client",
    ]) {
        Cause::Tls
    } else if has(&["toomanyrequests", "429 too many requests", "rate limit"]) {
        Cause::RateLimited
    } else if has(&[
        "dial tcp",
        "i/o timeout",
        "no such host",
        "connection refused",
        "network is unreachable",
        "connection reset by peer",
        "no route to host",
        "tls handshake timeout",
    ]) {
        Cause::Network
    } else if has(&[
        "401 unauthorized",
        "unauthorized",
        "pull access denied",
        "authorization failed",
        "authentication required",
        "403 forbidden",
        "denied: ",
        "insufficient_scope",
    ]) {
        Cause::Unauthorized
    } else if has(&[
        "manifest unknown",
        "not found",
        "name unknown",
        "404 ",
        "does not exist",
    ]) {
        Cause::NotFound
    } else {
        Cause::Unknown
    }
}

/// What the static rules found that explains a pull failure, most specific first.
fn static_cause<'a>(findings: &'a [Finding], container: &str) -> Option<(Cause, &'a Finding)> {
    let pick = |rule: RuleId, per_container: bool| {
        findings
            .iter()
            .find(|f| f.rule == rule && (!per_container || f.container == container))
    };
    pick(RuleId::PullSecretNotFound, false)
        .map(|f| (Cause::PullSecretNotFound, f))
        .or_else(|| pick(RuleId::PullSecretInvalid, false).map(|f| (Cause::PullSecretInvalid, f)))
        .or_else(|| pick(RuleId::MissingPullSecret, true).map(|f| (Cause::MissingPullSecret, f)))
}

/// The diagnosis of one failing container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub cause: Cause,
    pub message: String,
    pub remediation: String,
}

/// Diagnoses a failure. `events`: messages of the pod's warning events. `static_findings`: the
/// static findings of the same workload (suppressed or not: they are evidence either way).
/// `elsewhere`: for a missing secret, namespaces holding a secret of that name.
pub fn diagnose(
    w: &Workload,
    f: &PullFailure,
    events: &[&str],
    static_findings: &[Finding],
    elsewhere: &dyn Fn(&str) -> Vec<String>,
) -> Diagnosis {
    let mut texts = vec![f.message.as_str()];
    texts.extend_from_slice(events);
    let runtime = runtime_cause(&f.reason, &texts);
    // Authorization failures and "not found" (private repositories look absent to anonymous
    // clients) are explained by a missing or unusable pull secret when the static rules found one.
    let (cause, evidence) = match runtime {
        Cause::Unauthorized | Cause::NotFound | Cause::Unknown => {
            match static_cause(static_findings, &f.container) {
                Some((c, ev)) => (c, Some(ev)),
                None => (runtime, None),
            }
        }
        other => (other, None),
    };
    let container = w.containers.iter().find(|c| c.name == f.container);
    let parsed = ImageReference::parse(&f.image).ok();
    let registry = parsed
        .as_ref()
        .map(|r| r.registry.clone())
        .unwrap_or_else(|| "REGISTRY".into());
    let ns = &w.namespace;
    let runtime_said = first_line(if f.message.is_empty() {
        events.first().copied().unwrap_or("")
    } else {
        &f.message
    });
    let mut message = format!("pod {} cannot pull {:?} ({}): ", f.pod, f.image, f.reason);
    let remediation = match cause {
        Cause::InvalidReference => {
            message.push_str("the image is not a valid reference");
            match container {
                Some(c) => set_image_command(w, c, "REGISTRY/ACCOUNT/REPOSITORY:TAG"),
                None => format!("kubectl describe pod {} -n {ns}", f.pod),
            }
        }
        Cause::NeverPull => {
            message.push_str("imagePullPolicy is Never and the image is not on the node");
            match container {
                Some(c) => format!(
                    "kubectl patch {} -n {ns} --type=json -p '[{{\"op\":\"replace\",\"path\":\"{}/imagePullPolicy\",\"value\":\"IfNotPresent\"}}]'",
                    w.kind_name(),
                    w.container_pointer(c)
                ),
                None => format!("kubectl describe pod {} -n {ns}", f.pod),
            }
        }
        Cause::PullSecretNotFound | Cause::PullSecretInvalid | Cause::MissingPullSecret => {
            let ev = evidence.expect("static causes carry their finding");
            message.push_str(&ev.message);
            if cause == Cause::PullSecretNotFound {
                // Name the secret from the finding's remediation target.
                let name = secret_name(&ev.message);
                match elsewhere(&name).first() {
                    Some(other) => {
                        message.push_str(&format!(
                            "; a secret named {name:?} exists in namespace {other:?}"
                        ));
                        copy_secret_command(&name, other, ns)
                    }
                    None => format!(
                        "kubectl image-sec create-secret {name} --docker-server={registry} --docker-username=USER --password-stdin -n {ns}"
                    ),
                }
            } else if cause == Cause::PullSecretInvalid {
                let name = secret_name(&ev.message);
                format!(
                    "kubectl image-sec create-secret {name} --docker-server={registry} --docker-username=USER --password-stdin --overwrite --verify -n {ns}"
                )
            } else {
                format!(
                    "kubectl image-sec create-secret regcred --docker-server={registry} --docker-username=USER --password-stdin --verify -n {ns} --attach-to={}",
                    w.kind_name()
                )
            }
        }
        Cause::Unauthorized => {
            message.push_str(&format!(
                "the registry rejected the credentials (runtime: {runtime_said})"
            ));
            let secret = w
                .pull_secrets
                .first()
                .map(String::as_str)
                .unwrap_or("regcred");
            format!(
                "kubectl image-sec create-secret {secret} --docker-server={registry} --docker-username=USER --password-stdin --overwrite --verify -n {ns}"
            )
        }
        Cause::NotFound => {
            message.push_str(&format!(
                "the registry has no such image or tag (runtime: {runtime_said})"
            ));
            let name = parsed.as_ref().map(|r| r.name()).unwrap_or_default();
            match container {
                Some(c) => format!(
                    "{} (check with kubectl image-sec inspect {} -n {ns})",
                    set_image_command(w, c, format_args!("{name}:EXISTING-TAG")),
                    f.image
                ),
                None => format!("kubectl image-sec inspect {} -n {ns}", f.image),
            }
        }
        Cause::Tls => {
            message.push_str(&format!(
                "the node does not trust the registry's certificate (runtime: {runtime_said})"
            ));
            format!(
                "install the registry CA on every node for the runtime (containerd: /etc/containerd/certs.d/{registry}/ca.crt), then kubectl delete pod {} -n {ns}",
                f.pod
            )
        }
        Cause::Network => {
            message.push_str(&format!(
                "the node cannot reach the registry (runtime: {runtime_said})"
            ));
            format!(
                "check DNS, proxy and egress rules from the nodes to {registry}, e.g. kubectl debug node/NODE -it --image=busybox:1.36 -- nslookup {registry}"
            )
        }
        Cause::RateLimited => {
            message.push_str(&format!(
                "the registry is rate limiting anonymous pulls (runtime: {runtime_said})"
            ));
            format!(
                "kubectl image-sec create-secret {registry}-pull --docker-server={registry} --docker-username=USER --password-stdin -n {ns} --attach-to={}",
                w.kind_name()
            )
        }
        Cause::Unknown => {
            message.push_str(&format!("runtime: {runtime_said}"));
            format!("kubectl describe pod {} -n {ns}", f.pod)
        }
    };
    Diagnosis {
        cause,
        message,
        remediation,
    }
}

/// The first quoted name in a pull-secret finding's message (`imagePullSecret "regcred" ...`).
fn secret_name(message: &str) -> String {
    message.split('"').nth(1).unwrap_or("regcred").to_string()
}

fn first_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or("").trim();
    if l.chars().count() > 300 {
        format!("{}...", l.chars().take(300).collect::<String>())
    } else {
        l.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_messages_name_the_cause() {
        for (reason, msg, cause) in [
            ("InvalidImageName", "Failed to apply default image tag", Cause::InvalidReference),
            ("ErrImageNeverPull", "Container image \"x\" is not present with pull policy of Never", Cause::NeverPull),
            ("ErrImagePull", "failed to pull and unpack image \"r.io/a/b:1\": failed to resolve reference \"r.io/a/b:1\": failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized", Cause::Unauthorized),
            ("ErrImagePull", "Error response from daemon: pull access denied for foo, repository does not exist or may require 'docker login'", Cause::Unauthorized),
            ("ErrImagePull", "rpc error: code = NotFound desc = failed to pull and unpack image \"docker.io/library/nginx:nope\": failed to resolve reference: docker.io/library/nginx:nope: not found", Cause::NotFound),
            ("ErrImagePull", "reading manifest 9 in quay.io/a/b: manifest unknown", Cause::NotFound),
            ("ErrImagePull", "failed to do request: Head \"https://r.io/v2/a/b/manifests/1\": tls: failed to verify certificate: x509: certificate signed by unknown authority", Cause::Tls),
            ("ErrImagePull", "failed to do request: Head \"https://r.io/v2/\": dial tcp: lookup r.io on 10.0.0.10:53: no such host", Cause::Network),
            ("ErrImagePull", "dial tcp 10.1.2.3:443: i/o timeout", Cause::Network),
            ("ErrImagePull", "429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit", Cause::RateLimited),
            ("ImagePullBackOff", "Back-off pulling image \"x\"", Cause::Unknown),
            ("ErrImagePull", "couldn't parse image reference \"Nginx\": invalid reference format: repository name must be lowercase", Cause::InvalidReference),
        ] {
            assert_eq!(runtime_cause(reason, &[msg]), cause, "{msg}");
        }
    }
}
