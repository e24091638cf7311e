"""One contract per method (issue 23): every registered method name has a module-level class named after it
(``cross_self`` -> ``CrossSelfMethod``, case aside) and a page under ``docs/methods/`` that ``docs/methods/README.md``
links the name to."""

import re
import sys
from pathlib import Path

import pytest

from mmib.methods.registry import get_method_class, method_names

DOCS = Path(__file__).resolve().parents[2] / "docs" / "methods"


def class_name_of(name: str) -> str:
    """The class name a registered name asks for, compared without case: ``omib_svdd`` -> ``omibsvddmethod``."""
    return name.replace("_", "").lower() + "method"


def readme_links() -> dict[str, str]:
    """``{method name: linked page}`` from the index tables of docs/methods/README.md: a row's first cell names the
    methods (in backticks), its second cell links their page."""
    links: dict[str, str] = {}
    for line in (DOCS / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not line.lstrip().startswith("|"):
            continue
        page = re.search(r"\]\(([^)#]+)(?:#[^)]*)?\)", cells[1])
        if page:
            for n in re.findall(r"`([a-z0-9_]+)`", cells[0]):
                links.setdefault(n, page.group(1))
    return links


def test_the_rule_reads_names_as_the_issue_does():
    assert class_name_of("cross_self") == "CrossSelfMethod".lower()
    assert class_name_of("cox_erm") == "COXERMMethod".lower()
    assert class_name_of("vib") != "DeepVIBMethod".lower()


@pytest.mark.parametrize("name", method_names())
def test_registered_name_has_a_module_level_class_named_after_it(name):
    cls = get_method_class(name)
    assert cls.__name__.lower() == class_name_of(name), f"'{name}' is registered on {cls.__name__}"
    assert cls.__qualname__ == cls.__name__, f"{cls.__qualname__} is not defined at module level"
    assert getattr(sys.modules[cls.__module__], cls.__name__) is cls


@pytest.mark.parametrize("name", method_names())
def test_registered_name_has_a_docs_page_reachable_from_the_index(name):
    links = readme_links()
    assert name in links, f"docs/methods/README.md links no page to '{name}'"
    page = DOCS / links[name]
    assert page.is_file(), f"docs/methods/README.md links '{name}' to a missing page {links[name]}"
    assert f"`{name}`" in page.read_text(), f"{page.name} does not mention `{name}`"


def test_the_index_links_no_unregistered_name():
    assert sorted(set(readme_links()) - set(method_names())) == []
