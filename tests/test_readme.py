"""The README's results are the pipeline's: its tables are copied verbatim from reports/results.md."""
import pytest

from tests.helpers import ROOT


def _tables(markdown: str) -> list[list[str]]:
    tables, current = [], []
    for line in markdown.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def test_readme_results_tables_match_the_report():
    results = (ROOT / "reports/results.md").read_text()
    readme = (ROOT / "README.md").read_text()
    main = _tables(results)[0]   # mean ± std per arm (the per-domain table stays in results.md, linked)
    text = results.partition("# Results: text track")[2]
    checked = [main] + ([_tables(text)[0]] if text else [])   # the text track's main table
    for table in checked:
        for line in table:
            assert line in readme, f"README.md is stale: copy the tables of reports/results.md (missing: {line[:80]})"


@pytest.mark.parametrize("page", ["reports/erosion.md", "reports/text/erosion.md"])
def test_readme_erosion_table_matches_the_study(page):
    study = (ROOT / page).read_text()
    readme = (ROOT / "README.md").read_text()
    for line in _tables(study)[0]:   # the teacher against FT per candidate
        assert line in readme, f"README.md is stale: copy the first table of {page} (missing: {line[:80]})"
    choice = next(line for line in study.splitlines() if line.startswith("**Choice:**"))
    assert choice in readme, f"README.md is stale: copy the choice line of {page}"

