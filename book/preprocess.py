#!/usr/bin/env python3
"""The site's mdBook preprocessor; it runs after mdBook's own {{#include}} ("links").

1. `{{#section FILE "Heading" [level=N] [from="text"] [to="text"]}}` includes the
   section of FILE (path relative to the page) under that heading, up to the next
   heading of the same or a higher level: the README stays the one place its guides are
   written, and a section is found by its heading, not by line numbers that move. The
   section's headings are shifted so that its own heading gets level N (default 1);
   `from` starts at the first line that begins with that text, `to` stops before the
   first later line that does. A heading or a marker that is not found fails the build.
2. Links. A page's links were written relative to the file they are in (a README, a
   file under docs/), not to the page that includes it. Each relative link is resolved
   against that file: a file the site carries becomes a link to its page (a README
   section to the page that includes it); a Rust source file of a published crate, to
   its page in the rustdoc source view; any other repository file to its path as code
   text (the project has no public URL to browse the repository at yet: a link to a
   clone-relative file would be a broken link on any server). Links to `api/` (the API
   docs scripts/docs copies in after this runs) are left for the link checker.
3. The contract. Every numbered item of a section gets an anchor of its number
   (`contract.html#7.5`, `#12.1`), every guarantee one of its name (`#G3`), every
   section one of its number (`#7`): the numbers the tests and transcripts cite are the
   site's addresses, whatever the headings say. References in the text of every page —
   `§7.5`, `§12`, `rule 9`, `rules 17, 18`, `G3` — become links to them; a reference to
   a number the contract does not have stays plain text and is reported.
4. `{{#kdoc}}` in api.md: a link to the KDoc when scripts/docs was given it (environment
   variable REAUTH_DOCS_KDOC, the index page's path in the site), else how to build it.

Anything left of an include that did not happen (a file that does not exist yet) fails
the build. With REAUTH_DOCS_STATS set, what was rewritten is written there as JSON for
scripts/docs' summary.
"""

import json
import os
import re
import sys
from pathlib import Path

# Rust crates whose sources the rustdoc source view carries (scripts/docs documents these).
CRATE_SOURCES = {
    "core/src": "reauth",
    "host/src": "reauth_host",
    "ffi/src": "reauth_ffi",
    "bindings/reqwest/src": "reauth_reqwest",
}
CONTRACT = "docs/contract.md"

SECTION = re.compile(r'\{\{#section\s+(\S+)\s+"([^"]+)"((?:\s+\w+=(?:"[^"]*"|\S+?))*)\s*\}\}')
OPTION = re.compile(r'(\w+)=(?:"([^"]*)"|(\S+))')
NATIVE_INCLUDE = re.compile(r"\{\{#include\s+([^\s}:]+)\s*\}\}")
LEFTOVER = re.compile(r"\{\{#(include|rustdoc_include|section|kdoc)\b[^}]*\}\}")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# What a line's text is cut into: code spans, links and images (text, target), HTML tags,
# autolinks; references are looked for only between them.
INLINE = re.compile(
    r"(?P<code>(`+).*?\2)"
    r"|(?P<link>!?\[(?P<text>(?:[^\[\]]|\[[^\]]*\])*)\]\((?P<target>[^)\s]*)(?P<title>\s+\"[^\"]*\")?\))"
    r"|(?P<tag><[^>\n]+>)"
)
REFDEF = re.compile(r"^(\s*\[[^\]]+\]:\s*)(\S+)(.*)$")
REFERENCE = re.compile(
    r"§(?P<sec>\d+(?:\.\d+)?)"
    r"|\b(?P<rules>[Rr]ules?)\s+(?P<nums>\d+(?:\.\d+)?(?:(?:,\s*|\s+and\s+|\s+or\s+|–|-)\d+(?:\.\d+)?)*)"
    r"|\b(?P<g>G\d{1,2})\b"
)
NUMBER = re.compile(r"\d+(?:\.\d+)?")


class Failure(Exception):
    pass


def slug(text):
    """mdBook's heading id (mdbook-html's id_from_content), after stripping markup."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.replace("`", "").replace("*", "")
    out = []
    for ch in text.strip().lower():
        if ch.isalnum() or ch in "_-":
            out.append(ch)
        elif ch.isspace():
            out.append("-")
    return "".join(out)


def rfc_section(context):
    """Whether a "§n" after this text of its paragraph is an RFC's section: the RFC was
    named after the last mention of the contract ("RFC 6749 §6, client authentication
    §2.3.1", "a size limit (§5)" in the same sentence)."""
    rfc = max((m.end() for m in re.finditer(r"RFC\s*\d+", context)), default=-1)
    contract = max((m.end() for m in re.finditer(r"\bcontract\b|\brules?\s+\d", context)), default=-1)
    return rfc > contract


def chapters(items):
    for item in items:
        if isinstance(item, dict) and "Chapter" in item:
            chapter = item["Chapter"]
            yield chapter
            yield from chapters(chapter["sub_items"])


def outside_code(lines):
    """(index, line, in_code) for each line; fenced blocks are code."""
    fence = None
    for i, line in enumerate(lines):
        m = FENCE.match(line)
        if fence is None:
            if m:
                fence = m.group(1)
                yield i, line, True
                continue
            yield i, line, False
        else:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip()[len(m.group(1)):].strip():
                fence = None
            yield i, line, True


class Site:
    def __init__(self, repo, src):
        self.repo = repo
        self.src = src
        self.file_page = {}  # repo path -> page (src-relative) that includes the whole file
        self.section_page = {}  # (repo path, heading slug) -> (page that shows it, with its anchor?)
        self.contract_page = None
        self.contract_ids = set()
        self.stats = {
            "links_to_pages": 0,
            "links_to_rustdoc_source": 0,
            "links_to_repository_paths": [],
            "contract_references": 0,
            "unknown_contract_references": [],
        }

    def repo_path(self, path):
        return Path(os.path.relpath(os.path.normpath(path), self.repo)).as_posix()

    # -- 1. what each page includes --------------------------------------------------------
    def survey(self, book):
        for chapter in chapters(book["items"]):
            if not chapter.get("source_path"):
                continue
            page = Path(chapter["path"]).as_posix()
            raw = (self.src / chapter["source_path"]).read_text(encoding="utf-8")
            here = (self.src / chapter["source_path"]).parent
            chapter["_bases"] = []
            for m in NATIVE_INCLUDE.finditer(raw):
                target = self.repo_path(here / m.group(1))
                chapter["_bases"].append((self.repo / target).parent)
                if target.endswith(".md"):
                    self.file_page.setdefault(target, page)
                if target == CONTRACT:
                    self.contract_page = page
            for m in SECTION.finditer(raw):
                target = self.repo_path(here / m.group(1))
                # Every heading the page shows (README.md#what-the-adapters-cost), first of all
                # the section's own; a page that shows only a part of a section is where the
                # section's heading leads when no page shows it (its top, not an anchor).
                body, _ = self.cut(here / m.group(1), m.group(1), m.group(2), self.options(m.group(3)))
                for _, line, code in outside_code(body):
                    h = None if code else HEADING.match(line)
                    key = h and (target, slug(h.group(2)))
                    if h and not self.section_page.get(key, (None, False))[1]:
                        self.section_page[key] = (page, True)
                self.section_page.setdefault((target, slug(m.group(2))), (page, False))
        if self.contract_page is None:
            raise Failure(f"no page includes {CONTRACT}")

    # -- 2. sections -----------------------------------------------------------------------
    @staticmethod
    def options(text):
        options = {o.group(1): o.group(2) if o.group(2) is not None else o.group(3) for o in OPTION.finditer(text)}
        unknown = set(options) - {"level", "from", "to"}
        if unknown:
            raise Failure(f"{{{{#section}}}}: unknown option {sorted(unknown)}")
        return options

    @staticmethod
    def cut(file, path, heading, options):
        """The lines of the section (as `{{#section}}` takes them) and its heading's level."""
        try:
            lines = Path(file).read_text(encoding="utf-8").split("\n")
        except OSError as e:
            raise Failure(f"{{{{#section {path}}}}}: {e}") from None
        start = level = None
        end = len(lines)
        for i, line, code in outside_code(lines):
            m = None if code else HEADING.match(line)
            if not m:
                continue
            if start is None:
                if m.group(2) == heading:
                    start, level = i, len(m.group(1))
            elif len(m.group(1)) <= level:
                end = i
                break
        if start is None:
            raise Failure(f'{path}: no heading "{heading}"')
        body = lines[start:end]
        for key, marker, first in (("from", options.get("from"), True), ("to", options.get("to"), False)):
            if marker is None:
                continue
            hits = [i for i, line in enumerate(body) if line.startswith(marker) and (first or i > 0)]
            if not hits:
                raise Failure(f'{path}, section "{heading}": no line starts with {key}="{marker}"')
            body = body[hits[0]:] if first else body[: hits[0]]
        return body, level

    def section(self, page_dir, here, path, heading, options):
        file = os.path.normpath(page_dir / path)
        body, level = self.cut(file, path, heading, options)
        shift = level - int(options.get("level", "1"))
        out = []
        for _, line, code in outside_code(body):
            m = None if code else HEADING.match(line)
            if m:
                line = "#" * max(1, len(m.group(1)) - shift) + line[len(m.group(1)):]
            out.append(line)
        text = "\n".join(out).strip("\n")
        return self.links(text, [Path(file).parent], page_dir, self.repo_path(file), here)

    def expand_sections(self, content, page_dir, here):
        def one(m):
            return self.section(page_dir, here, m.group(1), m.group(2), self.options(m.group(3)))

        return SECTION.sub(one, content)

    # -- links -----------------------------------------------------------------------------
    def resolve(self, target, bases, page_dir, source=None, here=None):
        """The link a target written in a file in one of `bases` becomes on a page in
        `page_dir`; None for "leave it", or ("code", path) for a repository path. `source`
        is the file (repository path) the text comes from when a section of it is included
        in the page `here`."""
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("/") or not target:
            return None
        path, _, fragment = target.partition("#")
        if not path:
            # A heading of the same file: on another page when a section of it is included.
            page, anchor = self.section_page.get((source, fragment), (None, False))
            if source is None or page is None or self.src / page == page_dir / here:
                return None
            return Path(os.path.relpath(self.src / page, page_dir)).as_posix() + (f"#{fragment}" if anchor else "")
        if path.startswith("api/") or (page_dir / path).exists() and (page_dir / path).resolve().is_relative_to(self.src):
            return None
        for base in bases:
            full = Path(os.path.normpath(base / path))
            if not full.exists() or not full.is_relative_to(self.repo):
                continue
            rel = self.repo_path(full)
            page = None
            if fragment and (rel, fragment) in self.section_page:
                page, anchor = self.section_page[(rel, fragment)]
                fragment = fragment if anchor else ""
            elif rel in self.file_page:
                page = self.file_page[rel]
            elif rel == "README.md":
                page = "index.md"
            if page is not None:
                self.stats["links_to_pages"] += 1
                href = os.path.relpath(self.src / page, page_dir)
                return Path(href).as_posix() + (f"#{fragment}" if fragment else "")
            for prefix, crate in CRATE_SOURCES.items():
                if rel.startswith(prefix + "/") and rel.endswith(".rs"):
                    self.stats["links_to_rustdoc_source"] += 1
                    view = f"api/rust/src/{crate}/{rel[len(prefix) + 1:]}.html"
                    href = os.path.relpath(self.src / view, page_dir)
                    return Path(href).as_posix()
            self.stats["links_to_repository_paths"].append(rel)
            return ("code", rel + (f"#{fragment}" if fragment else ""))
        return None

    def links(self, text, bases, page_dir, source=None, here=None):
        lines = text.split("\n")
        for i, line, code in outside_code(lines):
            if code:
                continue
            m = REFDEF.match(line)
            if m:
                new = self.resolve(m.group(2), bases, page_dir, source, here)
                if isinstance(new, str):
                    lines[i] = m.group(1) + new + m.group(3)
                continue

            def one(m):
                if not m.group("link"):
                    return m.group(0)
                new = self.resolve(m.group("target"), bases, page_dir, source, here)
                if new is None:
                    return m.group(0)
                link = m.group("link")
                if isinstance(new, tuple):
                    text = m.group("text")
                    path = new[1]
                    return text if path in text else f"{text} (`{path}`)"
                prefix = link[: link.index("](") + 2]
                return prefix + new + (m.group("title") or "") + ")"

            lines[i] = INLINE.sub(one, line)
        return "\n".join(lines)

    # -- 3. the contract -------------------------------------------------------------------
    def anchor_contract(self, content):
        lines = content.split("\n")
        section = None
        for i, line, code in outside_code(lines):
            if code:
                continue
            m = re.match(r"^##\s+(\d+)\.\s", line)
            if m:
                section = m.group(1)
                self.contract_ids.add(section)
                lines[i] = f'{line[: m.end(1) - len(section)]}<span id="{section}"></span>{line[m.end(1) - len(section):]}'
                continue
            if line.startswith("#"):
                continue
            m = re.match(r"^(\d+)\.(\s+)", line)
            if m and section is not None:
                ident = f"{section}.{m.group(1)}"
                self.contract_ids.add(ident)
                lines[i] = f'{m.group(0)}<span id="{ident}"></span>{line[m.end():]}'
                continue
            m = re.match(r"^(-\s+\*\*)(G\d+)\b", line)
            if m:
                self.contract_ids.add(m.group(2))
                lines[i] = f'- <span id="{m.group(2)}"></span>{line[2:]}'
        return "\n".join(lines)

    def link_references(self, content, page_dir, own):
        contract = Path(os.path.relpath(self.src / self.contract_page, page_dir)).as_posix()

        def href(ident, skip):
            if ident in skip:
                return None
            if ident not in self.contract_ids:
                self.stats["unknown_contract_references"].append(ident)
                return None
            self.stats["contract_references"] += 1
            return f"#{ident}" if own else f"{contract}#{ident}"

        def text(segment, before, skip):
            def one(m):
                context = before + segment[: m.start()]
                if m.group("sec"):
                    if rfc_section(context):
                        return m.group(0)
                    h = href(m.group("sec"), skip)
                    return f"[{m.group(0)}]({h})" if h else m.group(0)
                if m.group("g"):
                    h = href(m.group("g"), skip)
                    return f"[{m.group(0)}]({h})" if h else m.group(0)
                if "RFC" in context[-24:]:
                    return m.group(0)

                def number(n):
                    ident = n.group(0) if "." in n.group(0) else f"7.{n.group(0)}"
                    h = href(ident, skip)
                    return f"[{n.group(0)}]({h})" if h else n.group(0)

                return f"{m.group('rules')} " + NUMBER.sub(number, m.group("nums"))

            return REFERENCE.sub(one, segment)

        lines = content.split("\n")
        paragraph = ""  # the lines of the paragraph so far: what a "§n" refers to
        for i, line, code in outside_code(lines):
            if re.match(r"^\s*(\d+\.|[-*+])\s", line):
                paragraph = ""  # a list item starts a paragraph of its own
            before = paragraph
            paragraph = "" if code or not line.strip() else paragraph + line + " "
            if code or HEADING.match(line):
                continue
            # An item does not link to itself (`- <span id="G6"></span>**G6 logout is final**`).
            skip = set(re.findall(r'<span id="([^"]+)"></span>', line)) if own else set()
            out, pos = [], 0
            for m in INLINE.finditer(line):
                out.append(text(line[pos : m.start()], before + line[:pos], skip))
                out.append(m.group(0))
                pos = m.end()
            out.append(text(line[pos:], before + line[:pos], skip))
            lines[i] = "".join(out)
        return "\n".join(lines)

    # -- 4. the KDoc -----------------------------------------------------------------------
    @staticmethod
    def kdoc(page_dir, src):
        where = os.environ.get("REAUTH_DOCS_KDOC")
        if where:
            href = Path(os.path.relpath(src / where, page_dir)).as_posix()
            return (
                f"[The `dev.reauth` packages]({href}) (Dokka): the OkHttp adapter "
                "(`dev.reauth.okhttp`), the stores and the generated coordinator API."
            )
        return (
            "Not in this build: scripts/docs was run without `--kdoc`. Build the KDoc with "
            "Dokka from the Kotlin package's Maven build (`bindings/kotlin/pom.xml`), then "
            "pass its output folder: `scripts/docs --kdoc DIR` copies it into the site under "
            "`api/kotlin/` and links it here."
        )

    # -- the whole book --------------------------------------------------------------------
    def run(self, book):
        self.survey(book)
        pages = [c for c in chapters(book["items"]) if c.get("source_path")]
        for chapter in pages:
            page_dir = (self.src / chapter["path"]).parent
            content = self.expand_sections(chapter["content"], page_dir, Path(chapter["path"]).name)
            content = content.replace("{{#kdoc}}", self.kdoc(page_dir, self.src))
            content = self.links(content, chapter.pop("_bases") + [page_dir], page_dir)
            left = LEFTOVER.search(content)
            if left:
                raise Failure(f"{chapter['source_path']}: {left.group(0)} was not expanded (does the file exist?)")
            if Path(chapter["path"]).as_posix() == self.contract_page:
                content = self.anchor_contract(content)
            chapter["content"] = content
        for chapter in pages:
            page_dir = (self.src / chapter["path"]).parent
            own = Path(chapter["path"]).as_posix() == self.contract_page
            chapter["content"] = self.link_references(chapter["content"], page_dir, own)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "supports":
        sys.exit(0 if sys.argv[2] == "html" else 1)
    context, book = json.load(sys.stdin)
    root = Path(context["root"]).resolve()
    src = root / context["config"]["book"].get("src", "src")
    site = Site(root.parent, src)
    try:
        site.run(book)
    except Failure as e:
        print(f"book/preprocess.py: {e}", file=sys.stderr)
        sys.exit(1)
    stats = os.environ.get("REAUTH_DOCS_STATS")
    if stats:
        Path(stats).write_text(json.dumps(site.stats, indent=1) + "\n", encoding="utf-8")
    json.dump(book, sys.stdout)


if __name__ == "__main__":
    main()
