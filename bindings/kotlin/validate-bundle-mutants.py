#!/usr/bin/env python3
"""The bundle check's own check: breaks a good bundle one way at a time — each broken file
re-signed with KEYID and its checksums rewritten, so that only the check aimed at the
break can see it — and requires validate-bundle.py to refuse every one, naming the break.

    python3 bindings/kotlin/validate-bundle-mutants.py BUNDLE.zip KEYID [--show]

(--show prints what the check said about each broken bundle.)

Run by release.sh with its throwaway key. Exit 0 when every break is caught, 1 otherwise.
"""

import hashlib
import io
import os
import re
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SUMS = ("md5", "sha1", "sha256", "sha512")


def sign(data, key):
    result = subprocess.run(["gpg", "--batch", "--yes", "--local-user", key, "--armor", "--detach-sign", "--output", "-"],
                            input=data, capture_output=True, check=True)
    return result.stdout


def rewrite(entries, name, data, key):
    """`name` with new content, signed and summed again."""
    entries[name] = data
    entries[f"{name}.asc"] = sign(data, key)
    for kind in SUMS:
        entries[f"{name}.{kind}"] = hashlib.new(kind, data).hexdigest().encode()


def rejar(data, drop=(), replace=None):
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            if any(re.fullmatch(d, item.filename) for d in drop):
                continue
            content = src.read(item.filename)
            if replace and item.filename in replace:
                content = replace[item.filename](content)
            dst.writestr(item, content)
    return out.getvalue()


def main():
    if len(sys.argv) not in (3, 4) or sys.argv[3:] not in ([], ["--show"]):
        print("usage: validate-bundle-mutants.py BUNDLE.zip KEYID [--show]", file=sys.stderr)
        return 2
    bundle, key, show = sys.argv[1], sys.argv[2], sys.argv[3:] == ["--show"]
    with zipfile.ZipFile(bundle) as z:
        good = {n: z.read(n) for n in z.namelist()}
    pom = next(n for n in good if n.endswith(".pom"))
    base = pom[: -len(".pom")]
    jar, sources, javadoc = f"{base}.jar", f"{base}-sources.jar", f"{base}-javadoc.jar"

    def pom_edit(pattern, replacement):
        return lambda e: rewrite(e, pom, re.sub(pattern, replacement, e[pom].decode(), count=1, flags=re.S).encode(), key)

    mutants = [
        ("a signature left out", lambda e: e.pop(f"{sources}.asc"), "sources.jar.asc: missing"),
        ("a signature of another file", lambda e: e.update({f"{jar}.asc": e[f"{sources}.asc"]}), ".jar.asc: gpg does not verify"),
        ("a .sha1 that does not match", lambda e: e.update({f"{jar}.sha1": b"0" * 40}), ".jar.sha1: does not match"),
        ("an .md5 left out", lambda e: e.pop(f"{javadoc}.md5"), "javadoc.jar.md5: missing"),
        ("scm url blank", pom_edit(r"(<scm>.*?<url>)[^<]*(</url>)", r"\1\2"), "<scm/url> is missing or empty"),
        ("scm left out", pom_edit(r"<scm>.*?</scm>", ""), "<scm/connection> is missing or empty"),
        ("developers left out", pom_edit(r"<developers>.*?</developers>", ""), "no <developers><developer>"),
        ("a license without its url", pom_edit(r"(<license>\s*<name>[^<]*</name>\s*)<url>[^<]*</url>", r"\1"),
         "<license 1 url> is missing or empty"),
        ("description blank", pom_edit(r"<description>[^<]*</description>", "<description> </description>"),
         "<description> is missing or empty"),
        ("url unresolved", pom_edit(r"(</description>\s*)<url>[^<]*</url>", r"\1<url>${reauth.home}</url>"),
         "<url> has an unresolved expression"),
        ("a SNAPSHOT version", pom_edit(r"(</artifactId>\s*<version>)([^<]*)(</version>)", r"\1\2-SNAPSHOT\3"), "is a SNAPSHOT"),
        ("the javadoc jar without its index", lambda e: rewrite(e, javadoc, rejar(e[javadoc], drop=[r"index\.html"]), key),
         "javadoc.jar: no index.html"),
        ("the sources jar without sources", lambda e: rewrite(e, sources, rejar(e[sources], drop=[r".*\.kt"]), key),
         "sources.jar: no .kt or .java sources"),
        ("a platform's library missing from the jar", lambda e: rewrite(e, jar, rejar(e[jar], drop=[r"linux-aarch64/.*"]), key),
         "not one list"),
        ("the manifest not stating the platforms",
         lambda e: rewrite(e, jar, rejar(e[jar], replace={"META-INF/MANIFEST.MF": lambda m: re.sub(rb"Reauth-Native-Platforms: [^\r\n]*\r?\n", b"", m)}), key),
         "Reauth-Native-Platforms []"),
        ("the license files missing from the jar", lambda e: rewrite(e, jar, rejar(e[jar], drop=[r"META-INF/LICENSE-MIT"]), key),
         "META-INF/LICENSE-MIT and META-INF/LICENSE-APACHE expected"),
        ("the sources jar missing", lambda e: [e.pop(n) for n in list(e) if n.startswith(sources)], "sources.jar: missing"),
        ("a stray file", lambda e: e.update({os.path.dirname(pom) + "/maven-metadata.xml": b"<metadata/>"}),
         "maven-metadata.xml: not one of the artifacts"),
    ]
    control = subprocess.run([sys.executable, os.path.join(HERE, "validate-bundle.py"), bundle], capture_output=True, text=True)
    if control.returncode != 0:
        print(f"bundle check: the unbroken bundle does not pass (exit {control.returncode}):\n{control.stderr}", file=sys.stderr)
        return 1
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for label, mutate, expected in mutants:
            entries = dict(good)
            mutate(entries)
            path = os.path.join(tmp, "mutant.zip")
            with zipfile.ZipFile(path, "w") as z:
                for name, data in entries.items():
                    z.writestr(name, data)
            result = subprocess.run([sys.executable, os.path.join(HERE, "validate-bundle.py"), path], capture_output=True, text=True)
            caught = result.returncode == 1 and expected in result.stderr
            if show:
                print(f"{label}: exit {result.returncode}\n{result.stderr}")
            if not caught:
                failed += 1
                print(f"bundle check MISSED {label}: exit {result.returncode}, expected '{expected}' in:\n{result.stderr}", file=sys.stderr)
    print(f"bundle check: {len(mutants) - failed} of {len(mutants)} broken bundles refused, each naming its break "
          "(signature left out or of another file, checksums, scm, developers, license url, description, unresolved url, "
          "SNAPSHOT, javadoc index, sources, platforms, manifest, licenses, a missing jar, a stray file)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
