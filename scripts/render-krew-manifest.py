#!/usr/bin/env python3
"""Render krew-manifest/image-sec.yaml into a krew Plugin manifest.

usage: render-krew-manifest.py TAG DIST_DIR [TEMPLATE] > plugin.yaml

Every archive the template names must be in DIST_DIR: its sha256 is computed from the file,
never invented. Fails (exit 1) when one is missing.
"""
import hashlib
import os
import re
import sys


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    tag, dist = sys.argv[1], sys.argv[2]
    template_path = sys.argv[3] if len(sys.argv) > 3 else os.path.join(
        os.path.dirname(__file__), "..", "krew-manifest", "image-sec.yaml")
    if not re.fullmatch(r"v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", tag):
        print(f"error: tag {tag!r} is not a semantic version like v0.1.0", file=sys.stderr)
        return 1
    text = open(template_path, encoding="utf-8").read()
    text = "\n".join(l for l in text.splitlines() if not l.startswith("#")) + "\n"

    def uri_and_sha(match: "re.Match[str]") -> str:
        indent, url = match.group(1), match.group(2).replace("{{ .TagName }}", tag)
        archive = os.path.join(dist, url.rsplit("/", 1)[1])
        if not os.path.isfile(archive):
            raise SystemExit(f"error: {archive} is missing; build every platform's archive first")
        digest = hashlib.sha256(open(archive, "rb").read()).hexdigest()
        return f"{indent}uri: {url}\n{indent}sha256: {digest}"

    text = re.sub(r'^( *)\{\{addURIAndSha "([^"]+)" \.TagName \}\}', uri_and_sha, text, flags=re.M)
    text = text.replace("{{ .TagName }}", tag)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
