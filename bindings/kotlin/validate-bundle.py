#!/usr/bin/env python3
"""Checks a Maven Central bundle (a zip in the repository layout) against Central's
published requirements (central.sonatype.org/publish/requirements) and prints one line
per file:

    python3 bindings/kotlin/validate-bundle.py reauth-0.1.0-bundle.zip

- the POM: coordinates (matching the path, no SNAPSHOT), name, description, url,
  licenses (each with name and url), developers (each with a name), scm with connection,
  developerConnection and url — every one present, non-empty and with no unresolved
  ${...} expression; url and scm url absolute http(s) URLs;
- the files: the jar, -sources.jar and -javadoc.jar beside the .pom; every file has an
  .asc that gpg verifies (with the keyring of GNUPGHOME), and .md5 and .sha1 (.sha256
  and .sha512 where present) that match it; nothing else in the bundle;
- the jars: the sources jar holds sources, the javadoc jar an index.html at its root, the
  jar its classes, the license files in META-INF/ and the native libraries its manifest
  (Reauth-Native-Platforms) and dev/reauth/native.properties name.

Exit 0 when every check passes, 1 with every failure listed, 2 for a file that is not a
bundle.
"""

import hashlib
import io
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zipfile

NS = {"m": "http://maven.apache.org/POM/4.0.0"}
SUMS = ("md5", "sha1", "sha256", "sha512")
REQUIRED_SUMS = ("md5", "sha1")


class Checks:
    def __init__(self):
        self.failures = []

    def need(self, ok, failure):
        if not ok:
            self.failures.append(failure)
        return ok


def text(root, path):
    value = root.findtext(path, namespaces=NS)
    return value.strip() if value else ""


def check_pom(data, where, checks):
    """The POM elements Central requires; returns (coordinates, what passed)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        checks.need(False, f"{where}: not XML ({e})")
        return None, []
    passed = []

    def element(label, path, url=False):
        value = text(root, path)
        ok = checks.need(value != "", f"{where}: <{label}> is missing or empty")
        ok = ok and checks.need("${" not in value, f"{where}: <{label}> has an unresolved expression: {value}")
        if ok and url:
            ok = checks.need(re.fullmatch(r"https?://[^\s]+", value) is not None, f"{where}: <{label}> is not an http(s) URL: {value}")
        return ok

    coordinates = tuple(text(root, f"m:{k}") for k in ("groupId", "artifactId", "version"))
    if all(element(k, f"m:{k}") for k in ("groupId", "artifactId", "version")):
        checks.need(not coordinates[2].endswith("-SNAPSHOT"), f"{where}: version {coordinates[2]} is a SNAPSHOT")
        passed.append("coordinates")
    if all([element("name", "m:name"), element("description", "m:description"), element("url", "m:url", url=True)]):
        passed.append("name, description, url")
    licenses = root.findall("m:licenses/m:license", NS)
    checks.need(licenses, f"{where}: no <licenses><license>")
    if licenses and all(
        [element(f"license {i} name", f"m:licenses/m:license[{i}]/m:name") and element(f"license {i} url", f"m:licenses/m:license[{i}]/m:url", url=True)
         for i in range(1, len(licenses) + 1)]
    ):
        passed.append(f"licenses ({', '.join(text(lic, 'm:name') for lic in licenses)})")
    developers = root.findall("m:developers/m:developer", NS)
    checks.need(developers, f"{where}: no <developers><developer>")
    if developers and all([element(f"developer {i} name", f"m:developers/m:developer[{i}]/m:name") for i in range(1, len(developers) + 1)]):
        passed.append(f"developers ({len(developers)})")
    if all([element("scm/connection", "m:scm/m:connection"), element("scm/developerConnection", "m:scm/m:developerConnection"),
            element("scm/url", "m:scm/m:url", url=True)]):
        passed.append("scm (connection, developerConnection, url)")
    return coordinates, passed


def check_jar(name, data, kind, checks):
    """What a jar must hold; returns what passed."""
    try:
        jar = zipfile.ZipFile(io.BytesIO(data))
        names = jar.namelist()
    except zipfile.BadZipFile:
        checks.need(False, f"{name}: not a jar")
        return []
    files = [n for n in names if not n.endswith("/") and not n.startswith("META-INF/")]
    if kind == "sources":
        sources = [n for n in files if n.endswith((".kt", ".java"))]
        return [f"{len(sources)} sources"] if checks.need(sources, f"{name}: no .kt or .java sources") else []
    if kind == "javadoc":
        ok = checks.need("index.html" in names, f"{name}: no index.html at its root")
        return [f"index.html, {len(files)} files"] if ok else []
    passed = []
    classes = [n for n in files if n.endswith(".class")]
    if checks.need(classes, f"{name}: no classes"):
        passed.append(f"{len(classes)} classes")
    licenses = [n for n in ("META-INF/LICENSE-MIT", "META-INF/LICENSE-APACHE") if n in names]
    if checks.need(len(licenses) == 2, f"{name}: META-INF/LICENSE-MIT and META-INF/LICENSE-APACHE expected, found {licenses}"):
        passed.append("META-INF/LICENSE-MIT, LICENSE-APACHE")
    manifest = jar.read("META-INF/MANIFEST.MF").decode() if "META-INF/MANIFEST.MF" in names else ""
    stated = re.search(r"^Reauth-Native-Platforms: (.*?)\r?$", manifest, re.M)
    stated = sorted(stated.group(1).split()) if stated else []
    listed = []
    if "dev/reauth/native.properties" in names:
        found = re.search(r"^platforms=(.*)$", jar.read("dev/reauth/native.properties").decode(), re.M)
        listed = sorted(found.group(1).split()) if found else []
    held = sorted(n.split("/")[0] for n in names if re.fullmatch(r"[^/]+/libreauth_uniffi\.so", n))
    if checks.need(stated and stated == listed == held,
                   f"{name}: Reauth-Native-Platforms {stated}, native.properties {listed}, libraries {held}: not one list"):
        passed.append(f"platforms {' '.join(stated)}")
    return passed


def verify_signature(name, data, signature, checks):
    with tempfile.TemporaryDirectory() as tmp:
        path, asc = os.path.join(tmp, "file"), os.path.join(tmp, "file.asc")
        with open(path, "wb") as f:
            f.write(data)
        with open(asc, "wb") as f:
            f.write(signature)
        result = subprocess.run(["gpg", "--batch", "--status-fd", "1", "--verify", asc, path], capture_output=True, text=True)
    good = result.returncode == 0 and "[GNUPG:] GOODSIG" in result.stdout and "[GNUPG:] VALIDSIG" in result.stdout
    return checks.need(good, f"{name}.asc: gpg does not verify it: {(result.stderr.strip().splitlines() or [f'exit {result.returncode}'])[-1]}")


def main():
    if len(sys.argv) != 2:
        print("usage: validate-bundle.py BUNDLE.zip", file=sys.stderr)
        return 2
    try:
        bundle = zipfile.ZipFile(sys.argv[1])
    except (OSError, zipfile.BadZipFile) as e:
        print(f"{sys.argv[1]}: not a bundle ({e})", file=sys.stderr)
        return 2
    entries = {n: bundle.read(n) for n in bundle.namelist() if not n.endswith("/")}
    checks = Checks()
    poms = [n for n in entries if n.endswith(".pom")]
    if len(poms) != 1:
        print(f"{sys.argv[1]}: one .pom expected, found {poms}", file=sys.stderr)
        return 2
    pom = poms[0]
    coordinates, pom_passed = check_pom(entries[pom], pom, checks)
    if coordinates is None:
        print("\n".join(checks.failures), file=sys.stderr)
        return 1
    group, artifact, version = coordinates
    checks.need(pom == f"{group.replace('.', '/')}/{artifact}/{version}/{artifact}-{version}.pom",
                f"{pom}: the path does not match the coordinates {group}:{artifact}:{version}")
    base = pom[: -len(".pom")]  # the artifacts are named as the POM is
    main_files = {f"{base}.pom": "pom", f"{base}.jar": "jar", f"{base}-sources.jar": "sources", f"{base}-javadoc.jar": "javadoc"}
    for name in main_files:
        checks.need(name in entries, f"{name}: missing")
    expected = {n + s for n in main_files for s in [""] + [f".{x}" for x in SUMS] + [".asc"]}
    for name in sorted(set(entries) - expected):
        checks.need(False, f"{name}: not one of the artifacts, their signatures or checksums")

    rows = []
    for name, kind in main_files.items():
        if name not in entries:
            continue
        data = entries[name]
        passed = list(pom_passed) if kind == "pom" else check_jar(name, data, kind, checks)
        checks.need(len(data) > 0, f"{name}: empty")
        status = []
        if checks.need(f"{name}.asc" in entries, f"{name}.asc: missing (every file must be signed)"):
            if verify_signature(name, data, entries[f"{name}.asc"], checks):
                status.append("signature verified by gpg")
        sums = []
        for sum_kind in SUMS:
            sum_name = f"{name}.{sum_kind}"
            if sum_name not in entries:
                checks.need(sum_kind not in REQUIRED_SUMS, f"{sum_name}: missing ({', '.join(REQUIRED_SUMS)} are required)")
                continue
            stated = entries[sum_name].decode(errors="replace").split()
            actual = hashlib.new(sum_kind, data).hexdigest()
            if checks.need(stated[:1] == [actual], f"{sum_name}: does not match the file"):
                sums.append(sum_kind)
        if sums:
            status.append(" ".join(sums) + " match")
        passed = status + passed
        rows.append((name, len(data), passed))

    width = max((len(n) for n, _, _ in rows), default=0)
    for name, size, passed in rows:
        print(f"{name:<{width}}  {size:>9} B  {'; '.join(passed)}")
    if checks.failures:
        print(f"{sys.argv[1]}: {len(checks.failures)} failed:", file=sys.stderr)
        for failure in checks.failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    print(f"{os.path.basename(sys.argv[1])}: {len(entries)} files, {sum(len(d) for d in entries.values())} bytes; "
          "every Central requirement checked passes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
