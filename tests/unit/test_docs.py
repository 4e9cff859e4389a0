"""README.md and docs/ hold to what the snippet test cannot see (docs/operations.md, "How the docs
are tested"): every route the app serves is in the API guide with its method, every block not run
says why, snippets use no GNU-only forms, and no link leads outside the repository."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from urllib.parse import unquote

from fastapi.routing import APIRoute, APIWebSocketRoute

from badges.api import routes as route_modules
from badges.api.app import create_app
from tests.conftest import make_settings
from tests.snippets import ROOT, blocks, documents, unmatched

API_GUIDE = ROOT / "docs" / "api"
# Written beside this work (deploying on a Temporal cluster or Cloud): linked before it lands.
DEPLOYMENT = ROOT / "docs" / "deployment.md"
PLACEHOLDER = re.compile(r"\{[^}]*\}")
ROUTE = re.compile(r"(?<![\w/.-])(/[A-Za-z0-9._\-/{}]*[A-Za-z0-9_}\-]|/)(?![\w{])")
LINK = re.compile(r"\]\(([^)\s]+)\)")

# What a Linux or macOS shell does not both have: (pattern, why).
NOT_PORTABLE = [
    (re.compile(r"\bdate\b[^\n|;]*\s-d\b"), "`date -d` is GNU only (macOS: -v); compute dates with python3"),
    (re.compile(r"\bdate\b[^\n|;]*\+%[FT]"), "`%F`/`%T` are not in every date(1): spell out %Y-%m-%dT%H:%M:%SZ"),
    (re.compile(r"\bsed\s+-i\s+(?!['\"]?\.)"), "`sed -i` without a suffix is GNU only"),
    (re.compile(r"\bgrep\s+(-\w*P|--perl)"), "`grep -P` is GNU only"),
    (re.compile(r"\breadlink\s+-f\b"), "`readlink -f` is not on older macOS"),
    (re.compile(r"(^|[;&|]\s*|\$\()timeout\s"), "`timeout` is GNU coreutils"),
    (re.compile(r"\bkill\s+%"), "job specs need job control; use $!"),
]


def normalise(path: str) -> str:
    return PLACEHOLDER.sub("{}", path)


def served_routes() -> set[tuple[str, str]]:
    """(method, path) for every operation in the OpenAPI document and every route outside it."""
    app = create_app(make_settings("postgresql://docs@127.0.0.1:1/docs"))
    found = {(method.upper(), path) for path, operations in app.openapi()["paths"].items() for method in operations}
    for module_info in pkgutil.iter_modules(route_modules.__path__):
        module = importlib.import_module(f"{route_modules.__name__}.{module_info.name}")
        router = getattr(module, "router", None)
        for route in getattr(router, "routes", []):
            if isinstance(route, APIWebSocketRoute):
                found.add(("WS", route.path))
            elif isinstance(route, APIRoute):
                found.update((method, route.path) for method in route.methods if method != "HEAD")
    return found


def documented_routes() -> set[tuple[str, str]]:
    """(method, path) for each route a line of the API guide names beside a method word."""
    found: set[tuple[str, str]] = set()
    for page in sorted(API_GUIDE.glob("*.md")):
        for line in page.read_text().splitlines():
            methods = set(re.findall(r"\b(GET|POST|PUT|PATCH|DELETE|WS)\b", line))
            for path in ROUTE.findall(line.replace("`", " ").replace("…", " ")):
                found.update((method, normalise(path.split("?")[0])) for method in methods)
    return found


def test_every_route_the_app_serves_is_in_the_api_guide_with_its_method() -> None:
    documented = documented_routes()
    missing = sorted(
        f"{method} {path}" for method, path in served_routes() if (method, normalise(path)) not in documented
    )
    assert not missing, f"name these in docs/api/ (a line with the method and the path): {missing}"


def test_every_route_the_docs_name_is_served() -> None:
    """A route renamed or gone leaves no page naming the old one (a concrete path such as
    `/v1/me/badges/calculator-explorer/credentials/1` matches its route's template)."""
    templates = [
        re.compile("".join("[^/]+" if part == "{}" else re.escape(part) for part in re.split(r"(\{\})", path)))
        for path in {normalise(path) for _, path in served_routes()}
    ]
    unknown = set()
    for document in documents():
        for path in re.findall(r"(/v1/[A-Za-z0-9._\-/{}]*[A-Za-z0-9_}])", document.read_text().replace("…", " ")):
            path = normalise(path.split("?")[0])
            if not any(
                template.fullmatch(path) or template.pattern.startswith(re.escape(path + "/")) for template in templates
            ):
                unknown.add(f"{document.relative_to(ROOT)}: {path}")
    assert not unknown, sorted(unknown)


def test_the_route_check_sees_a_route_left_out() -> None:
    assert ("GET", "/v1/me/badges/{}/credentials/{}") in documented_routes()
    assert ("GET", "/v1/no-such-route") not in documented_routes()


def test_every_block_not_run_says_why_and_every_other_block_is_run() -> None:
    for document in documents():
        for block in blocks(document):
            if block.no_run is not None:
                assert block.no_run, f"{block.where}: say why the block is not run"
                assert block.language is not None, f"{block.where}: only runnable blocks need a no-run mark"


def test_every_block_is_either_run_or_an_illustration() -> None:
    """`console`, `shell`, `py`… would slip past the snippet test: a block is `sh`, `bash` or
    `python` (run), or `json`, `text` or unmarked (an illustration: output, a diagram)."""
    unknown = [
        f"{block.where}: ```{block.info}"
        for document in documents()
        for block in blocks(document)
        if block.language is None and block.info.split()[:1] not in ([], ["json"], ["text"])
    ]
    assert not unknown, "\n".join(unknown)


def test_the_snippets_use_no_gnu_only_forms() -> None:
    found = []
    for document in documents():
        for block in blocks(document):
            if block.language != "sh":
                continue
            for pattern, why in NOT_PORTABLE:
                if pattern.search(block.text):
                    found.append(f"{block.where}: {why}")
    assert not found, "\n".join(found)


def test_the_portability_check_finds_what_it_looks_for() -> None:
    bad = [
        "date -u -d '+89 days'",
        "date -u +%FT%TZ",
        "sed -i 's/a/b/' f",
        "grep -P '\\d'",
        "readlink -f x",
        "timeout 5 curl x",
    ]
    for text in bad:
        assert any(pattern.search(text) for pattern, _ in NOT_PORTABLE), text
    good = ["date -u +%Y-%m-%dT%H:%M:%SZ", "sed -i.bak 's/a/b/' f", "grep -c x"]
    for text in good:
        assert not any(pattern.search(text) for pattern, _ in NOT_PORTABLE), text


def test_no_link_leads_outside_the_repository() -> None:
    bad = []
    for document in documents():
        for target in LINK.findall(document.read_text()):
            where = f"{document.relative_to(ROOT)}: {target}"
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                bad.append(f"{where} (a link out of the repository)")
                continue
            path = unquote(target.split("#")[0])
            if not path:
                continue
            resolved = (document.parent / path).resolve()
            if not resolved.is_relative_to(ROOT) or "shared" in Path(path).parts:
                bad.append(f"{where} (outside the repository)")
            elif not resolved.exists() and resolved != DEPLOYMENT:
                bad.append(f"{where} (no such file)")
    bad += [
        f"{document.relative_to(ROOT)} mentions ../shared/"
        for document in documents()
        if "../shared" in document.read_text()
    ]
    assert not bad, "\n".join(bad)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", document.read_text(), flags=re.MULTILINE | re.DOTALL)
    return {slug(match) for match in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


def test_every_link_to_a_section_finds_its_heading() -> None:
    bad = []
    for document in documents():
        for target in LINK.findall(document.read_text()):
            path, _, fragment = target.partition("#")
            if not fragment or re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue
            linked = (document.parent / unquote(path)).resolve() if path else document
            if linked.suffix == ".md" and linked.exists() and fragment not in anchors(linked):
                bad.append(f"{document.relative_to(ROOT)}: {target}")
    assert not bad, "\n".join(bad)


def test_documented_answers_match_in_order_whitespace_aside() -> None:
    output = '{"status":"accepted","id":"calc-1"}\nid: 4\nevent: award\ndata: {"badgeId": "x"}'
    assert unmatched(['{"status": "accepted", "id": "calc-1"}', 'event: award … "badgeId":"x"'], output) is None
    assert unmatched(["event: award", '{"status": "accepted"'], output) == '{"status": "accepted"'
    assert unmatched(['{"status": "duplicate", …}'], output) == '{"status": "duplicate", …}'
