#!/usr/bin/env python3
"""What linkchecker leaves to scripts/docs, and the summary's counts.

    check-site.py SITE LINKCHECKER_CSV PREPROCESSOR_STATS

1. print.html: every chapter on one page, its links rewritten by mdBook to anchors on
   that page (or to files beside it). Each must name an id of the page or a file that
   exists (linkchecker does not follow this page: see book/linkcheckerrc).
2. Reads linkchecker's CSV log (--verbose: every URL it checked) and prints the failures
   readably.
3. Counts pages, internal links checked and external links (not checked: no network),
   and says what book/preprocess.py rewrote.

Exit status 1 when a link is broken.
"""

import csv
import json
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        for key in ("href", "src"):
            if attrs.get(key):
                self.links.append(attrs[key])


def parse(path):
    page = Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def external(link):
    return urlsplit(link).scheme in ("http", "https")


def main():
    site, log, stats = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(Path(sys.argv[3]).read_text())
    broken = []

    # 1. print.html
    printed = site / "print.html"
    page = parse(printed)
    print_checked = 0
    for link in page.links:
        parts = urlsplit(link)
        if parts.scheme or link.startswith("//"):
            continue
        print_checked += 1
        if not parts.path:
            if unquote(parts.fragment) not in page.ids:
                broken.append(f"print.html: no id for {link}")
        elif not (site / unquote(parts.path)).exists():
            broken.append(f"print.html: no file for {link}")

    # 2. linkchecker's log
    internal = 0
    with log.open(encoding="utf-8") as f:
        # Its comments start with "# "; a same-page link ("#7.5") starts with "#" too.
        rows = csv.DictReader((line for line in f if not line.startswith("# ")), delimiter=";")
        for row in rows:
            url = row.get("url") or row.get("urlname") or ""
            if external(url):
                continue
            internal += 1
            if row.get("valid") != "True" or row.get("warningstring"):
                parent = (row.get("parentname") or "").replace(f"file://{site.resolve()}/", "")
                problem = row.get("warningstring") or row.get("result")
                if len(problem) > 300:
                    problem = problem[:300] + " …"
                broken.append(f"{parent}:{row.get('line')}: {row.get('urlname')} -> {problem}")

    # 3. counts
    book_pages = sorted(p for p in site.glob("*.html") if p.name not in ("print.html", "toc.html"))
    api_pages = {d.name: sum(1 for _ in d.rglob("*.html")) for d in sorted((site / "api").glob("*")) if d.is_dir()}
    external_book = {link for p in book_pages + [printed] for link in parse(p).links if external(link)}
    external_api = set()
    for p in (site / "api").rglob("*.html"):
        external_api.update(link for link in parse(p).links if external(link))

    if broken:
        print(f"{len(broken)} broken links:", file=sys.stderr)
        for line in broken:
            print(f"  {line}", file=sys.stderr)
    print(f"pages: {len(book_pages)} in the book (and print.html), API docs: "
          + ", ".join(f"{name} {n}" for name, n in api_pages.items()))
    print(f"internal links checked: {internal} distinct links and anchors of the book's pages (linkchecker), "
          f"{print_checked} links of print.html")
    print(f"external links, not checked (no network): {len(external_book)} in the book, "
          f"{len(external_api)} distinct in the API docs")
    paths = stats["links_to_repository_paths"]
    print(f"links rewritten: {stats['links_to_pages']} to the site's pages, {stats['links_to_rustdoc_source']} "
          f"to rustdoc's source view, {len(paths)} to repository paths shown as code"
          + (f" ({', '.join(paths)})" if paths else "")
          + f"; {stats['contract_references']} references to the contract linked")
    if stats["unknown_contract_references"]:
        print("references to numbers the contract does not have (left as text): "
              + ", ".join(sorted(set(stats["unknown_contract_references"]))))
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
